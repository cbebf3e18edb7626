/**
 * Bundles and delta bundles end to end, against real Distribution registries, images put there by
 * skopeo and pulled back by skopeo with every blob checked:
 * - `pull --from LIST` writes one bundle of three images (a line's `--platform=` applies to it);
 *   `push --all` lands every image under a prefix with the source's digests, and the two layers
 *   two images share go up once (the other image mounts them; counted by a recording proxy);
 *   `--flatten` keeps only the last path segment;
 * - `push --all` reads bundles other tools wrote: `podman save --multi-image-archive` and a skopeo
 *   OCI layout with several ref names (one image under two names lands under both);
 * - a delta bundle made against the first (`--exclude-from bundle.tar`, and the same set from the
 *   far side's mirror `--exclude-from registry/prefix`) stores only the new layers and lists the
 *   others; `ls` shows them; a registry that lacks them gets nothing (no upload, no manifest PUT,
 *   exit code 3 naming each layer and image); the registry that has them takes it, mounting the
 *   left-out layers an image's new repository needs from the repository that held them.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runPusher } from "../helpers/cli.ts";
import { type RecordingProxy, startRecordingProxy } from "../helpers/recording_proxy.ts";
import { pullAndVerify, skopeoInspect } from "../helpers/pull_verify.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { type SampleArchive, writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir, tempDirUntilExit } from "../helpers/temp_dir.ts";

const decoder = new TextDecoder();

async function run(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  assert.ok(
    output.success,
    `${command} ${args.join(" ")} failed: ${decoder.decode(output.stderr)}`,
  );
  return decoder.decode(output.stdout);
}

/** The images of the tests: base and app share their first two layers, next shares them too. */
interface Samples {
  base: SampleArchive;
  app: SampleArchive;
  cli: SampleArchive;
  next: SampleArchive;
}

let samples: Promise<Samples> | undefined;

function sampleArchives(): Promise<Samples> {
  samples ??= (async () => {
    const dir = await tempDirUntilExit("bundle-samples-");
    const sample = (file: string, name: string, randomBytes: number, seed = 1, layers = 3) =>
      writeSampleDockerArchive(join(dir, file), { layers, randomBytes, seed, name });
    return {
      base: await sample("base.tar", "bundle/base:1", 256 * 1024),
      app: await sample("app.tar", "bundle/app:1", 128 * 1024),
      cli: await sample("cli.tar", "team/tools/cli:2", 64 * 1024, 5, 2),
      next: await sample("next.tar", "bundle/next:1", 96 * 1024),
    };
  })();
  return samples;
}

/** Puts a sample into `registry` with skopeo (gzip layers); returns the manifest digest. */
async function seed(registry: TestRegistry, sample: SampleArchive): Promise<string> {
  const reference = `${registry.host}/${sample.repoTag}`;
  await run("skopeo", [
    ...["--insecure-policy", "copy", "--dest-tls-verify=false"],
    `docker-archive:${sample.path}`,
    `docker://${reference}`,
  ]);
  return (await skopeoInspect(reference)).digest;
}

/** The layer digests of an image in a registry, bottom first. */
async function layerDigests(reference: string): Promise<string[]> {
  const manifest = (await skopeoInspect(reference)).manifest as { layers: { digest: string }[] };
  return manifest.layers.map((layer) => layer.digest);
}

/** Entry names of a tar file. */
async function tarEntries(path: string): Promise<string[]> {
  return (await run("tar", ["-tf", path])).split("\n").filter(Boolean);
}

/** The digests `omitted-layers.json` of a delta lists. */
async function omittedDigests(path: string): Promise<string[]> {
  const json = JSON.parse(await run("tar", ["-xOf", path, "omitted-layers.json"])) as {
    layers: { digest: string; heldBy?: string }[];
  };
  return json.layers.map((layer) => layer.digest).sort();
}

function lines(text: string): string[] {
  return text.split("\n").filter(Boolean).sort();
}

/** Blob uploads that completed through the proxy (the closing `PUT`), by digest. */
function completedUploads(proxy: RecordingProxy): Map<string, number> {
  const counts = new Map<string, number>();
  for (const record of proxy.records) {
    if (record.kind !== "upload-put") continue;
    const digest = new URLSearchParams(record.query).get("digest");
    if (digest !== null) counts.set(digest, (counts.get(digest) ?? 0) + 1);
  }
  return counts;
}

/** Cross-repository mounts the proxy saw, as `digest from repository`. */
function mounts(proxy: RecordingProxy): string[] {
  return proxy.records.flatMap((record) => {
    const query = new URLSearchParams(record.query);
    const digest = query.get("mount");
    return record.kind === "upload-start" && digest !== null
      ? [`${digest} from ${query.get("from")}`]
      : [];
  });
}

/** A registry holding the samples, and one to push bundles into behind a recording proxy. */
interface Sides {
  source: TestRegistry;
  target: TestRegistry;
  proxy: RecordingProxy;
  digests: Record<keyof Samples, string>;
}

async function withSides(body: (sides: Sides) => Promise<void>): Promise<void> {
  const all = await sampleArchives();
  const source = await startRegistry();
  try {
    const target = await startRegistry();
    try {
      await using proxy = startRecordingProxy(target.url);
      const digests = {
        base: await seed(source, all.base),
        app: await seed(source, all.app),
        cli: await seed(source, all.cli),
        next: await seed(source, all.next),
      };
      await body({ source, target, proxy, digests });
    } finally {
      await target.stop();
    }
  } finally {
    await source.stop();
  }
}

Deno.test("a bundle of three images from pull --from lands under a prefix with shared layers sent once; --flatten", async (t) => {
  const all = await sampleArchives();
  await withSides(async ({ source, target, proxy, digests }) => {
    await using dir = await tempDir("bundle-");
    const list = join(dir.path, "images.txt");
    await Deno.writeTextFile(
      list,
      [
        "# what the far side needs",
        `${source.host}/bundle/base:1`,
        `--platform=linux/amd64 ${source.host}/bundle/app:1   # a line's platform applies to it`,
        "",
        `${source.host}/team/tools/cli:2`,
      ].join("\n"),
    );
    const bundle = join(dir.path, "bundle.tar");
    const pulled = await runPusher(["pull", "--from", list, "-o", bundle]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.deepEqual(lines(pulled.stdout), [
      `${source.host}/bundle/app@${digests.app}`,
      `${source.host}/bundle/base@${digests.base}`,
      `${source.host}/team/tools/cli@${digests.cli}`,
    ]);
    const shared = (await layerDigests(`${source.host}/bundle/base:1`)).slice(0, 2);
    assert.deepEqual(
      (await layerDigests(`${source.host}/bundle/app:1`)).slice(0, 2),
      shared,
      "base and app share their first two layers",
    );

    await t.step(
      "a line's --platform that the image is not is refused with its place",
      async () => {
        const wrong = join(dir.path, "wrong.txt");
        await Deno.writeTextFile(
          wrong,
          `${source.host}/bundle/base:1\n--platform=linux/s390x ${source.host}/bundle/app:1\n`,
        );
        const refused = await runPusher(["pull", "--from", wrong, "-o", join(dir.path, "no.tar")]);
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(
          refused.stderr,
          /wrong\.txt:2: .*single-platform image for linux\/amd64, not linux\/s390x/,
        );
      },
    );

    await t.step(
      "push --all: every image under the prefix, digests kept, shared layers up once",
      async () => {
        proxy.clear();
        const pushed = await runPusher([
          "push",
          "--all",
          "-f",
          bundle,
          "-r",
          `${proxy.host}/mirror`,
        ]);
        assert.equal(pushed.code, 0, pushed.stderr);
        assert.deepEqual(lines(pushed.stdout), [
          `${proxy.host}/mirror/bundle/app@${digests.app}`,
          `${proxy.host}/mirror/bundle/base@${digests.base}`,
          `${proxy.host}/mirror/team/tools/cli@${digests.cli}`,
        ]);
        for (
          const [name, sample] of [["bundle/base:1", all.base], ["bundle/app:1", all.app], [
            "team/tools/cli:2",
            all.cli,
          ]] as const
        ) {
          await pullAndVerify(`${target.host}/mirror/${name}`, {
            expectedManifestDigest: digests[
              name.startsWith("bundle/base")
                ? "base"
                : name.startsWith("bundle/app")
                ? "app"
                : "cli"
            ],
            expectedConfigDigest: sample.configDigest,
            expectedDiffIds: sample.diffIds,
          });
        }
        const uploads = completedUploads(proxy);
        for (const digest of shared) {
          assert.equal(
            uploads.get(digest),
            1,
            `${digest} went up once: ${JSON.stringify([...uploads])}`,
          );
        }
        assert.ok(
          [...uploads.values()].every((count) => count === 1),
          JSON.stringify([...uploads]),
        );
        const mounted = mounts(proxy).filter((mount) =>
          shared.some((digest) => mount.startsWith(digest))
        );
        assert.equal(
          mounted.length,
          2,
          `the other image mounted both shared layers: ${mounts(proxy)}`,
        );
      },
    );

    await t.step("--flatten: PREFIX/<last segment>:<tag>", async () => {
      const pushed = await runPusher([
        ...["push", "--all", "--flatten", "-f", bundle, "-r", `${target.host}/flat`],
      ]);
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.deepEqual(lines(pushed.stdout), [
        `${target.host}/flat/app@${digests.app}`,
        `${target.host}/flat/base@${digests.base}`,
        `${target.host}/flat/cli@${digests.cli}`,
      ]);
      assert.equal((await skopeoInspect(`${target.host}/flat/cli:2`)).digest, digests.cli);
    });
  });
});

Deno.test("push --all reads bundles podman and skopeo wrote", async (t) => {
  const all = await sampleArchives();
  await withSides(async ({ source, target, digests }) => {
    await using dir = await tempDir("bundle-others-");

    await t.step("podman save --multi-image-archive", async () => {
      const podman = [
        ...["--storage-driver", "vfs", "--root", join(dir.path, "root")],
        ...["--runroot", join(dir.path, "run")],
      ];
      const base = `${source.host}/bundle/base:1`;
      const cli = `${source.host}/team/tools/cli:2`;
      for (const image of [base, cli]) {
        await run("podman", [...podman, "pull", "-q", "--tls-verify=false", image]);
      }
      const archive = join(dir.path, "podman.tar");
      await run("podman", [
        ...podman,
        "save",
        "-q",
        "--multi-image-archive",
        "-o",
        archive,
        base,
        cli,
      ]);
      const pushed = await runPusher([
        "push",
        "--all",
        "-f",
        archive,
        "-r",
        `${target.host}/podman`,
      ]);
      assert.equal(pushed.code, 0, pushed.stderr);
      const written = lines(pushed.stdout);
      assert.equal(written.length, 2, pushed.stdout);
      assert.match(written[0] ?? "", new RegExp(`^${target.host}/podman/bundle/base@sha256:`));
      assert.match(written[1] ?? "", new RegExp(`^${target.host}/podman/team/tools/cli@sha256:`));
      await pullAndVerify(`${target.host}/podman/bundle/base:1`, {
        expectedConfigDigest: all.base.configDigest,
        expectedDiffIds: all.base.diffIds,
      });
      await pullAndVerify(`${target.host}/podman/team/tools/cli:2`, {
        expectedConfigDigest: all.cli.configDigest,
        expectedDiffIds: all.cli.diffIds,
      });
    });

    await t.step("a skopeo OCI layout with several ref names (one image under two)", async () => {
      const layout = join(dir.path, "layout");
      for (
        const [from, name] of [
          ["bundle/base:1", "bundle/base:1"],
          ["bundle/base:1", "bundle/base:stable"],
          ["bundle/app:1", "bundle/app:1"],
        ]
      ) {
        await run("skopeo", [
          ...["--insecure-policy", "copy", "--src-tls-verify=false", "--preserve-digests"],
          `docker://${source.host}/${from}`,
          `oci:${layout}:${source.host}/${name}`,
        ]);
      }
      const archive = join(dir.path, "layout.tar");
      await run("tar", ["-C", layout, "-cf", archive, "oci-layout", "index.json", "blobs"]);
      const pushed = await runPusher(["push", "--all", "-f", archive, "-r", `${target.host}/oci`]);
      assert.equal(pushed.code, 0, pushed.stderr);
      assert.deepEqual(lines(pushed.stdout), [
        `${target.host}/oci/bundle/app@${digests.app}`,
        `${target.host}/oci/bundle/base@${digests.base}`,
      ]);
      for (const tag of ["1", "stable"]) {
        assert.equal(
          (await skopeoInspect(`${target.host}/oci/bundle/base:${tag}`)).digest,
          digests.base,
        );
      }
      await pullAndVerify(`${target.host}/oci/bundle/app:1`, {
        expectedManifestDigest: digests.app,
        expectedDiffIds: all.app.diffIds,
      });
    });
  });
});

Deno.test("a delta bundle holds only new layers; a registry lacking the rest gets nothing, one having them takes it", async (t) => {
  const all = await sampleArchives();
  await withSides(async ({ source, target, proxy, digests }) => {
    await using dir = await tempDir("bundle-delta-");
    const first = join(dir.path, "first.txt");
    await Deno.writeTextFile(first, `${source.host}/bundle/base:1\n${source.host}/bundle/app:1\n`);
    const bundle = join(dir.path, "bundle.tar");
    const pulled = await runPusher(["pull", "--from", first, "-o", bundle]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const landed = await runPusher(["push", "--all", "-f", bundle, "-r", `${target.host}/mirror`]);
    assert.equal(landed.code, 0, landed.stderr);

    const next = join(dir.path, "next.txt");
    await Deno.writeTextFile(next, `${source.host}/bundle/base:1\n${source.host}/bundle/next:1\n`);
    const delta = join(dir.path, "delta.tar");
    const made = await runPusher(["pull", "--from", next, "-o", delta, "--exclude-from", bundle]);
    assert.equal(made.code, 0, made.stderr);
    const baseLayers = await layerDigests(`${source.host}/bundle/base:1`);
    const nextLayers = await layerDigests(`${source.host}/bundle/next:1`);
    const [firstShared = "", secondShared = "", newLayer = ""] = nextLayers;
    assert.deepEqual([firstShared, secondShared], baseLayers.slice(0, 2));
    const leftOut = [...new Set([...baseLayers, firstShared, secondShared])].sort();

    await t.step("it stores the new layer only and lists the others", async () => {
      assert.match(made.stderr, /3 layer\(s\) \(.*\) left out: the far side holds them/);
      const entries = await tarEntries(delta);
      assert.ok(entries.includes(`blobs/sha256/${newLayer.slice(7)}`), "the new layer is in");
      for (const digest of leftOut) {
        assert.ok(!entries.includes(`blobs/sha256/${digest.slice(7)}`), `${digest} is left out`);
      }
      assert.deepEqual(await omittedDigests(delta), leftOut);
      const size = (await Deno.stat(delta)).size;
      assert.ok(size < (await Deno.stat(bundle)).size / 2, `the delta is small: ${size}`);
    });

    await t.step(
      "the same set from the far side's mirror (--exclude-from registry/prefix)",
      async () => {
        const mirrored = join(dir.path, "delta-mirror.tar");
        const fromMirror = await runPusher([
          ...["pull", "--from", next, "-o", mirrored],
          ...["--exclude-from", `${target.host}/mirror`],
        ]);
        assert.equal(fromMirror.code, 0, fromMirror.stderr);
        assert.deepEqual(await omittedDigests(mirrored), leftOut);
      },
    );

    await t.step("ls shows what it leaves out, image by image", async () => {
      const listed = await runPusher(["ls", delta]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /bundle\/base:1[\s\S]*delta: 3 layer\(s\) left out/);
      assert.match(listed.stdout, /bundle\/next:1[\s\S]*delta: 2 layer\(s\) left out/);
      assert.ok(listed.stdout.includes(firstShared.slice(0, 19)), listed.stdout);
      const json = JSON.parse((await runPusher(["ls", delta, "--json"])).stdout) as {
        images: { names: string[]; omittedLayers: string[] }[];
      };
      assert.deepEqual(json.images.map((image) => image.omittedLayers.length), [3, 2]);
    });

    await t.step(
      "a registry lacking the left-out layers gets nothing, and is told which",
      async () => {
        const empty = await startRegistry();
        try {
          await using watched = startRecordingProxy(empty.url);
          const refused = await runPusher([
            "push",
            "--all",
            "-f",
            delta,
            "-r",
            `${watched.host}/mirror`,
          ]);
          assert.equal(refused.code, 3, refused.stderr);
          assert.match(
            refused.stderr,
            /lacks 3 layer\(s\) the delta archive leaves out, so nothing was pushed/,
          );
          for (const digest of leftOut) assert.ok(refused.stderr.includes(digest), digest);
          assert.match(refused.stderr, new RegExp(`, ${watched.host}/mirror/bundle/next:1\\)`));
          const writes = watched.records.filter((record) =>
            ["manifest-put", "upload-start", "upload-patch", "upload-put"].includes(record.kind)
          );
          assert.deepEqual(writes, [], "no upload and no manifest PUT");
        } finally {
          await empty.stop();
        }
      },
    );

    await t.step(
      "a dry run against the registry holding them passes and writes nothing",
      async () => {
        proxy.clear();
        const planned = await runPusher([
          ...["push", "--all", "--dry-run", "-f", delta, "-r", `${proxy.host}/mirror`],
        ]);
        assert.equal(planned.code, 0, planned.stderr);
        assert.match(planned.stderr, /left out of the delta archive: the push needs it mounted/);
        const writes = proxy.records.filter((record) =>
          ["manifest-put", "upload-start", "upload-patch", "upload-put"].includes(record.kind)
        );
        assert.deepEqual(writes, [], "nothing written, nothing mounted");
      },
    );

    await t.step(
      "the registry holding them takes it, mounting what a new repository needs",
      async () => {
        proxy.clear();
        const pushed = await runPusher([
          "push",
          "--all",
          "-f",
          delta,
          "-r",
          `${proxy.host}/mirror`,
        ]);
        assert.equal(pushed.code, 0, pushed.stderr);
        assert.deepEqual(lines(pushed.stdout), [
          `${proxy.host}/mirror/bundle/base@${digests.base}`,
          `${proxy.host}/mirror/bundle/next@${digests.next}`,
        ]);
        assert.deepEqual(
          mounts(proxy).sort(),
          [
            `${firstShared} from mirror/bundle/base`,
            `${secondShared} from mirror/bundle/base`,
          ].sort(),
        );
        assert.deepEqual(
          [...completedUploads(proxy).keys()].filter((digest) => leftOut.includes(digest)),
          [],
        );
        await pullAndVerify(`${target.host}/mirror/bundle/next:1`, {
          expectedManifestDigest: digests.next,
          expectedConfigDigest: all.next.configDigest,
          expectedDiffIds: all.next.diffIds,
        });
      },
    );
  });
});
