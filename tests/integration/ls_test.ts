/**
 * `docker-image-pusher ls` against real archives (`../shared/real-archives/`), the test fixtures
 * and a real containerd store: names, platforms, digests and sizes agree with what the archive's
 * own metadata says (read back with GNU tar, not with this tool's reader) and with what `ctr`
 * shows; the digest `ls` prints is the digest push pushes (checked against the real Distribution
 * registry and skopeo); `--json` is one parseable document; a file that is no image archive is
 * one error line and exit 3; and the refusal of an ambiguous archive or namespace names an `ls`
 * command that lists it. `push --containerd-root` lands in the registry with the store's digest.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { EXIT_CODES } from "../../lib/errors.ts";
import { familiarName } from "../../lib/image/image_select.ts";
import { listArchiveImages } from "../../lib/image/archive_listing.ts";
import { runPusher } from "../helpers/cli.ts";
import { startContainerd } from "../helpers/containerd.ts";
import { type FixtureInfo, LAYOUT_NAMES, sharedFixtures } from "../helpers/fixtures.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const ARCHIVES = fileURLToPath(new URL("../../../shared/real-archives/", import.meta.url));
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

/** An image as `ls --json` prints it. */
interface ListedImage {
  names: string[];
  platforms: string[];
  skippedPlatforms: string[];
  digest: string | null;
  mediaType: string | null;
  configDigest: string | null;
  size: number;
  uncompressedLayers: number;
  omittedLayers: string[];
  problem: string | null;
}

/** The JSON document of `ls --json`. */
interface Listing {
  archive?: string;
  containerdRoot?: string;
  namespace?: string;
  images: ListedImage[];
}

type Json = Record<string, unknown>;

async function ls(args: string[], env: Record<string, string> = {}): Promise<Listing> {
  const run = await runPusher(["ls", ...args, "--json"], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  return JSON.parse(run.stdout) as Listing;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function readJson(path: string): Promise<Json> {
  return JSON.parse(await Deno.readTextFile(path)) as Json;
}

/** An archive unpacked by GNU tar, read without this tool's reader. */
interface Unpacked {
  dir: string;
  blob(digest: string): string;
}

async function unpack(file: string, into: string): Promise<Unpacked> {
  const output = await new Deno.Command("tar", { args: ["-xf", file, "-C", into] }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return { dir: into, blob: (digest) => `${into}/blobs/sha256/${digest.slice(7)}` };
}

/** Sizes of config and layers that docker's `manifest.json` entry names, as files (links followed). */
async function dockerStoredSize(unpacked: Unpacked, item: Json): Promise<number> {
  const paths = [item["Config"], ...(item["Layers"] as unknown[])] as string[];
  const sizes = new Map<string, number>();
  for (const path of paths) {
    const real = await Deno.realPath(`${unpacked.dir}/${path}`);
    sizes.set(real, (await Deno.stat(real)).size);
  }
  return [...sizes.values()].reduce((a, b) => a + b, 0);
}

/** Config and layer sizes the OCI manifests name, each blob once. */
async function ociStoredSize(unpacked: Unpacked, manifests: string[]): Promise<number> {
  const sizes = new Map<string, number>();
  for (const digest of manifests) {
    const manifest = await readJson(unpacked.blob(digest));
    for (const descriptor of [manifest["config"], ...(manifest["layers"] as unknown[])]) {
      const { digest: blob, size } = descriptor as { digest: string; size: number };
      sizes.set(blob, size);
    }
  }
  return [...sizes.values()].reduce((a, b) => a + b, 0);
}

/** What docker's `manifest.json` says, one image per entry. */
async function dockerExpectation(unpacked: Unpacked): Promise<Partial<ListedImage>[]> {
  const items = JSON.parse(await Deno.readTextFile(`${unpacked.dir}/manifest.json`)) as Json[];
  const expected: Partial<ListedImage>[] = [];
  for (const item of items) {
    const configBytes = await Deno.readFile(`${unpacked.dir}/${item["Config"]}`);
    const config = JSON.parse(new TextDecoder().decode(configBytes)) as Json;
    expected.push({
      names: (item["RepoTags"] as string[] | null) ?? [],
      platforms: [`${config["os"]}/${config["architecture"]}`],
      skippedPlatforms: [],
      digest: null,
      configDigest: sha256(configBytes),
      size: await dockerStoredSize(unpacked, item),
      uncompressedLayers: new Set(item["Layers"] as string[]).size,
      problem: null,
    });
  }
  return expected;
}

function pick<T extends object>(value: T, keys: readonly (keyof T)[]): Partial<T> {
  return Object.fromEntries(keys.map((key) => [key, value[key]])) as Partial<T>;
}

Deno.test("ls lists real archives as their own metadata says", async (t) => {
  await using temp = await tempDir("ls-real-");
  const open = async (file: string): Promise<{ unpacked: Unpacked; listing: Listing }> => {
    const dir = `${temp.path}/${file}`;
    await Deno.mkdir(dir);
    const listing = await ls([`${ARCHIVES}${file}`]);
    assert.equal(listing.archive, `${ARCHIVES}${file}`);
    return { unpacked: await unpack(`${ARCHIVES}${file}`, dir), listing };
  };

  for (
    const file of [
      "dive-test-docker-image.tar",
      "ggcr-test_link.tar",
      "trivy-alpine-310.tar.gz",
    ]
  ) {
    await t.step(`docker save: ${file}`, async () => {
      const { unpacked, listing } = await open(file);
      const expected = await dockerExpectation(unpacked);
      const keys = Object.keys(expected[0] ?? {}) as (keyof ListedImage)[];
      assert.deepEqual(listing.images.map((image) => pick(image, keys)), expected);
    });
  }

  await t.step("OCI layout with a bare-tag ref name (trivy)", async () => {
    const { unpacked, listing } = await open("trivy-test_image_tag-oci-layout.tar");
    const index = await readJson(`${unpacked.dir}/index.json`);
    const [entry] = index["manifests"] as Json[];
    const digest = entry?.["digest"] as string;
    const manifest = await readJson(unpacked.blob(digest));
    assert.deepEqual(listing.images, [{
      names: ["0.0.1"],
      platforms: ["linux/amd64"],
      skippedPlatforms: [],
      digest,
      mediaType: entry?.["mediaType"],
      configDigest: (manifest["config"] as Json)["digest"],
      size: await ociStoredSize(unpacked, [digest]),
      uncompressedLayers: 0,
      omittedLayers: [],
      problem: null,
    }]);
  });

  await t.step("containerd export naming 11 platforms, holding one (oras)", async () => {
    const { unpacked, listing } = await open("oras-hello-world.tar");
    const index = await readJson(`${unpacked.dir}/index.json`);
    const list = await readJson(
      unpacked.blob((index["manifests"] as Json[])[0]?.["digest"] as string),
    );
    const children = list["manifests"] as Json[];
    const present = children.filter((child) => {
      try {
        Deno.statSync(unpacked.blob(child["digest"] as string));
        return true;
      } catch {
        return false;
      }
    });
    assert.equal(present.length, 1);
    const name = (child: Json): string => {
      const platform = child["platform"] as Json;
      return [platform["os"], platform["architecture"], platform["variant"]]
        .filter((part) => part !== undefined).join("/");
    };
    const amd64 = present[0] as Json;
    const [image] = listing.images;
    assert.deepEqual(image?.names, ["docker.io/library/hello-world:latest"]);
    assert.deepEqual(image?.platforms, [name(amd64)]);
    assert.deepEqual(
      image?.skippedPlatforms,
      children.filter((child) => child !== amd64).map(name),
    );
    assert.equal(image?.digest, amd64["digest"]);
    assert.equal(image?.size, await ociStoredSize(unpacked, [amd64["digest"] as string]));
  });

  await t.step(
    "a multi-image layout with indexes, attestations and artifacts (regclient)",
    async () => {
      const { unpacked, listing } = await open("regclient-testrepo-layout.tar");
      const index = await readJson(`${unpacked.dir}/index.json`);
      const entries = index["manifests"] as Json[];
      const byRef = (ref: string): Json | undefined =>
        entries.find((entry) =>
          (entry["annotations"] as Json | undefined)?.["org.opencontainers.image.ref.name"] === ref
        );
      // One row per distinct digest, every ref name of the archive on one of them.
      assert.equal(listing.images.length, new Set(entries.map((entry) => entry["digest"])).size);
      const refNames = entries.flatMap((entry) => {
        const annotations = entry["annotations"] as Json | undefined;
        const ref = annotations?.["org.opencontainers.image.ref.name"];
        return typeof ref === "string" ? [ref] : [];
      });
      assert.deepEqual(listing.images.flatMap((image) => image.names).sort(), refNames.sort());
      for (const ref of ["b1", "v1"]) {
        const entry = byRef(ref);
        const row = listing.images.find((image) => image.names.includes(ref));
        assert.equal(row?.digest, entry?.["digest"], ref);
        assert.equal(row?.mediaType, OCI_INDEX, ref);
        const children = (await readJson(unpacked.blob(entry?.["digest"] as string)))[
          "manifests"
        ] as Json[];
        assert.equal(row?.platforms.length, children.length, ref);
        assert.equal(
          row?.size,
          await ociStoredSize(unpacked, children.map((child) => child["digest"] as string)),
          ref,
        );
      }
      const v1 = listing.images.find((image) => image.names.includes("v1"));
      assert.deepEqual(
        v1?.platforms.filter((platform) => platform === "unknown/unknown").length,
        2,
      );
      const refused = listing.images.filter((image) => image.problem !== null);
      assert.ok(refused.length > 0, "artifacts push would refuse are listed with the reason");
      for (const image of refused) assert.match(image.problem ?? "", /unsupported media type/);
    },
  );
});

Deno.test("ls lists every fixture layout as reading it for a push gives", async () => {
  const fixtures = await sharedFixtures();
  for (const layout of LAYOUT_NAMES) {
    const fixture: FixtureInfo = fixtures[layout];
    const images = await listArchiveImages(fixture.path);
    assert.deepEqual(images.flatMap((image) => image.names.map(familiarName)), fixture.holds);
    const chosen = images.find((image) =>
      image.names.map(familiarName).includes(fixture.choose ?? fixture.holds[0] ?? "")
    );
    assert.deepEqual(chosen?.platforms, fixture.images.map((image) => image.platform), layout);
    assert.deepEqual(chosen?.skippedPlatforms, fixture.skippedPlatforms, layout);
    const single = fixture.images.length === 1 ? fixture.images[0] : undefined;
    assert.equal(chosen?.digest, fixture.indexDigest ?? single?.manifestDigest, layout);
    assert.equal(chosen?.configDigest, single?.configDigest, layout);
    assert.equal(chosen?.problem, undefined, layout);
  }
});

Deno.test("the digest ls prints is the digest push pushes; an ambiguous archive points to ls", async () => {
  const fixtures = await sharedFixtures();
  const registry = await startRegistry();
  try {
    const cases = [
      { path: fixtures["oci-archive"].path, image: undefined, repo: "oci" },
      { path: fixtures["oci-multi-platform"].path, image: undefined, repo: "multi" },
      { path: fixtures["docker-containerd"].path, image: undefined, repo: "one-of-two" },
      { path: `${ARCHIVES}regclient-testrepo-layout.tar`, image: "b1", repo: "regclient" },
      { path: fixtures["docker-v25"].path, image: undefined, repo: "v25", keep: true },
    ];
    for (const { path, image, repo, keep } of cases) {
      const listing = await ls([path]);
      const row = image === undefined
        ? listing.images[0]
        : listing.images.find((found) => found.names.includes(image));
      assert.ok(row?.digest, path);
      // Uncompressed layers keep the digest only with --compression none.
      assert.equal(row.uncompressedLayers > 0, keep === true, path);
      const reference = `${registry.host}/ls/${repo}:1`;
      const run = await runPusher([
        "-f",
        path,
        "-r",
        `http://${reference}`,
        ...(image === undefined ? [] : ["--image", image]),
        ...(keep === true ? ["--compression", "none"] : []),
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), `${registry.host}/ls/${repo}@${row.digest}`);
      await pullAndVerify(reference, { all: true, expectedManifestDigest: row.digest });
    }

    const archive = `${ARCHIVES}regclient-testrepo-layout.tar`;
    const refused = await runPusher(["-f", archive, "-r", `http://${registry.host}/ls/none:1`]);
    assert.equal(refused.code, EXIT_CODES.usage);
    const lines = refused.stderr.trim().split("\n");
    assert.equal(lines.length, 1, refused.stderr);
    const hinted = lines[0]?.match(
      /\(run "docker-image-pusher (ls [^"]+)" to list them, then pass --image NAME:TAG\)$/,
    );
    assert.ok(hinted?.[1], refused.stderr);
    const listed = await runPusher(hinted[1].split(" "));
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^b1\s+linux\/amd64,linux\/arm64,linux\/arm\/v7,linux\/arm\/v6\s/m);
  } finally {
    await registry.stop();
  }
});

Deno.test("ls: the table, --json from a compressed archive and stdin, and what is no archive", async () => {
  const fixtures = await sharedFixtures();
  const multi = fixtures["docker-legacy-multi"];
  const table = await runPusher(["ls", multi.path]);
  assert.equal(table.code, 0, table.stderr);
  const [heading, ...rows] = table.stdout.trimEnd().split("\n");
  assert.match(heading ?? "", /^NAME\s+PLATFORMS\s+DIGEST\s+SIZE$/);
  assert.deepEqual(rows.map((row) => row.split(/\s+/)[0]), multi.holds);

  const zstd = fixtures["docker-archive-zstd"];
  const fromFile = await ls([zstd.path]);
  assert.equal(fromFile.images[0]?.configDigest, zstd.configDigest);
  const piped = await runPusher(["ls", "-", "--json"], {
    stdin: await Deno.readFile(fixtures["docker-legacy-gzip"].path),
  });
  assert.equal(piped.code, 0, piped.stderr);
  const fromStdin = JSON.parse(piped.stdout) as Listing;
  assert.equal(fromStdin.archive, "-");
  assert.equal(fromStdin.images[0]?.configDigest, fixtures["docker-legacy-gzip"].configDigest);

  for (const file of ["ggcr-content.tar", "ggcr-crane-content.tar.zst", "missing.tar"]) {
    const run = await runPusher(["ls", `${ARCHIVES}${file}`]);
    assert.equal(run.code, EXIT_CODES.input, file);
    assert.equal(run.stdout, "", file);
    assert.match(run.stderr, /^error: [^\n]+\n$/, file);
  }
  const json = await runPusher(["ls", `${ARCHIVES}ggcr-content.tar`, "--json"]);
  assert.equal(json.code, EXIT_CODES.input);
  const error = JSON.parse(json.stdout) as Json;
  assert.equal(error["type"], "error");
  assert.equal(error["exitCode"], EXIT_CODES.input);
});

Deno.test("ls and push --containerd-root against a real containerd store", async () => {
  const fixtures = await sharedFixtures();
  const multi = fixtures["oci-multi-platform"];
  await using containerd = await startContainerd();
  const root = containerd.root;
  await containerd.importArchive("all", multi.path, { allPlatforms: true });
  await containerd.importArchive("two", fixtures["oci-archive"].path, {
    baseName: "example.com/app",
  });
  await containerd.importArchive("two", fixtures["docker-archive"].path);
  const registry = await startRegistry();
  try {
    for (const namespace of ["all", "two"]) {
      const listing = await ls(["--containerd-root", root, "--namespace", namespace]);
      assert.equal(listing.containerdRoot, root);
      assert.equal(listing.namespace, namespace);
      const ctr = await containerd.listImages(namespace);
      assert.deepEqual(
        listing.images.map((image) => [image.names, image.digest]),
        ctr.map((image) => [[image.name], image.digest]),
      );
      for (const image of listing.images) assert.equal(image.problem, null);
    }
    const all = await ls(["--containerd-root", root], { DOCKER_PUSHER_NAMESPACE: "all" });
    assert.deepEqual(all.images[0]?.platforms, [
      "linux/amd64",
      "linux/arm64/v8",
      "unknown/unknown",
    ]);
    assert.equal(all.images[0]?.digest, multi.indexDigest);

    const table = await runPusher(["ls", "--containerd-root", root, "--namespace", "two"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^app:v1\s/m);
    assert.match(table.stdout, /^example\.com\/app:v1\s/m);

    const two = await containerd.listImages("two");
    const example = two.find((image) => image.name === "example.com/app:v1");
    const pushes = [
      {
        args: ["--namespace", "two", "--image", "example.com/app:v1"],
        env: {},
        digest: example?.digest,
      },
      {
        args: ["--image", "app:v1"],
        env: { DOCKER_PUSHER_CONTAINERD_ROOT: root, DOCKER_PUSHER_NAMESPACE: "all" },
        digest: multi.indexDigest,
      },
    ];
    for (const [index, { args, env, digest }] of pushes.entries()) {
      assert.ok(digest);
      const reference = `${registry.host}/from-store/app${index}:v1`;
      const rootArgs = "DOCKER_PUSHER_CONTAINERD_ROOT" in env ? [] : ["--containerd-root", root];
      const run = await runPusher(["push", ...rootArgs, ...args, "-r", `http://${reference}`], {
        env,
      });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), `${registry.host}/from-store/app${index}@${digest}`);
      assert.match(run.stderr, new RegExp(`containerd:${root}`));
      await pullAndVerify(reference, { all: true, expectedManifestDigest: digest });
    }

    const ambiguous = await runPusher([
      "push",
      "--containerd-root",
      root,
      "--namespace",
      "two",
      "-r",
      `http://${registry.host}/from-store/none:v1`,
    ]);
    assert.equal(ambiguous.code, EXIT_CODES.usage);
    assert.ok(
      ambiguous.stderr.includes(
        `run "docker-image-pusher ls --containerd-root ${root} --namespace two" to list them`,
      ),
      ambiguous.stderr,
    );
    const both = await runPusher([
      "push",
      "--containerd-root",
      root,
      "-f",
      multi.path,
      "-r",
      `http://${registry.host}/from-store/none:v1`,
    ]);
    assert.equal(both.code, EXIT_CODES.usage);
    assert.match(both.stderr, /^error: --file and --containerd-root cannot be used together/);
  } finally {
    await registry.stop();
  }
});
