/**
 * `pull` end to end against real Distribution registries, images put there by skopeo from
 * sample and fixture archives, the archives checked by independent readers (skopeo
 * docker-archive and oci-archive into a second registry then pulled back and digest-checked,
 * `podman load` into a private vfs store, and this tool's push): single images, two images in
 * one archive, stdout piped into `push -f -`, a Basic-auth source, a multi-platform index whole
 * and filtered, a pull killed with SIGKILL and run again (with its disk use sampled), faults on
 * the download side (503, 429 + Retry-After, stalls, dropped answers through the fault proxy;
 * cut bodies and a corrupted blob from the in-process registry).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runPusher } from "../helpers/cli.ts";
import { startFaultProxy } from "../helpers/fault_proxy.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { buildImage } from "../helpers/memory_images.ts";
import { startMemoryRegistry } from "../helpers/memory_registry.ts";
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

function skopeoCopy(source: string, destination: string, extra: string[] = []): Promise<string> {
  return run("skopeo", [
    "--insecure-policy",
    "copy",
    "--src-tls-verify=false",
    "--dest-tls-verify=false",
    ...extra,
    source,
    `docker://${destination}`,
  ]);
}

/** The digest a registry serves for `reference`. */
async function remoteDigest(reference: string, creds?: string): Promise<string> {
  return (await skopeoInspect(reference, creds === undefined ? {} : { creds })).digest;
}

/** Entry names of a tar file. */
async function tarEntries(path: string): Promise<string[]> {
  return (await run("tar", ["-tf", path])).split("\n").filter(Boolean);
}

/** A JSON file inside a tar. */
async function tarJson(path: string, entry: string): Promise<unknown> {
  return JSON.parse(await run("tar", ["-xOf", path, entry]));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

let samples:
  | Promise<{ small: SampleArchive; other: SampleArchive; big: SampleArchive }>
  | undefined;

/** Sample archives for the file's tests (removed when the process unloads). */
function sampleArchives() {
  samples ??= (async () => {
    const dir = await tempDirUntilExit("pull-samples-");
    return {
      small: await writeSampleDockerArchive(join(dir, "small.tar"), {
        layers: 2,
        randomBytes: 512 * 1024,
        name: "pull/small:v1",
      }),
      other: await writeSampleDockerArchive(join(dir, "other.tar"), {
        layers: 3,
        randomBytes: 256 * 1024,
        seed: 7,
        name: "pull/other:v1",
      }),
      big: await writeSampleDockerArchive(join(dir, "big.tar"), {
        layers: 4,
        randomBytes: 3 * 1024 * 1024,
        seed: 11,
        name: "pull/big:v1",
      }),
    };
  })();
  return samples;
}

/** Puts a sample archive into `registry` as `repository:tag` with skopeo; returns its digest. */
async function seed(
  registry: TestRegistry,
  sample: SampleArchive,
  reference: string,
  creds?: string,
): Promise<string> {
  await skopeoCopy(
    `docker-archive:${sample.path}`,
    `${registry.host}/${reference}`,
    creds === undefined ? [] : ["--dest-creds", creds],
  );
  return await remoteDigest(`${registry.host}/${reference}`, creds);
}

Deno.test("pull: the archive is read by push (same digest), skopeo both ways and podman load", async (t) => {
  const { small } = await sampleArchives();
  const source = await startRegistry();
  const target = await startRegistry();
  await using dir = await tempDir("pull-out-");
  try {
    const digest = await seed(source, small, "pull/small:v1");
    const output = join(dir.path, "small.tar");
    const dryRun = await runPusher([
      "pull",
      `${source.host}/pull/small:v1`,
      "-o",
      output,
      "--dry-run",
    ]);
    assert.equal(dryRun.code, 0, dryRun.stderr);
    assert.match(dryRun.stderr, /dry run .* would download 3 blobs/);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir.path)), []);
    const otherPlatform = await runPusher([
      "pull",
      `${source.host}/pull/small:v1`,
      "-o",
      output,
      "--platform",
      "linux/s390x",
    ]);
    assert.equal(otherPlatform.code, 2, otherPlatform.stderr);
    assert.match(otherPlatform.stderr, /single-platform image for linux\/amd64, not linux\/s390x/);
    const pulled = await runPusher(["pull", `${source.host}/pull/small:v1`, "-o", output]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.equal(pulled.stdout, `${source.host}/pull/small@${digest}\n`);
    assert.equal(await exists(`${output}.partial.d`), false);

    await t.step("this tool pushes it as it is: the manifest digest stays", async () => {
      const pushed = await runPusher(["-f", output, "-r", `${target.host}/own/small:v1`]);
      assert.equal(pushed.code, 0, pushed.stderr);
      await pullAndVerify(`${target.host}/own/small:v1`, {
        expectedManifestDigest: digest,
        expectedConfigDigest: small.configDigest,
        expectedDiffIds: small.diffIds,
      });
    });

    await t.step("skopeo docker-archive: and oci-archive: read it", async () => {
      await skopeoCopy(`docker-archive:${output}`, `${target.host}/skopeo/docker:v1`);
      await pullAndVerify(`${target.host}/skopeo/docker:v1`, {
        expectedConfigDigest: small.configDigest,
        expectedDiffIds: small.diffIds,
      });
      await skopeoCopy(`oci-archive:${output}`, `${target.host}/skopeo/oci:v1`);
      await pullAndVerify(`${target.host}/skopeo/oci:v1`, {
        expectedManifestDigest: digest,
        expectedDiffIds: small.diffIds,
      });
    });

    await t.step("podman load: the image, by its config digest and name", async () => {
      await using store = await tempDir("podman-store-");
      const podman = [
        ...["--storage-driver", "vfs", "--root", `${store.path}/root`],
        ...["--runroot", `${store.path}/run`],
      ];
      await run("podman", [...podman, "load", "-q", "-i", output]);
      const images = JSON.parse(await run("podman", [...podman, "images", "--format", "json"])) as {
        Id: string;
        Names?: string[];
      }[];
      assert.equal(images.length, 1);
      assert.equal(`sha256:${images[0]?.Id}`, small.configDigest);
      assert.ok(
        images[0]?.Names?.some((name) => name.endsWith(`${source.host}/pull/small:v1`)),
        JSON.stringify(images[0]?.Names),
      );
    });
  } finally {
    await source.stop();
    await target.stop();
  }
});

Deno.test("pull: three sources in one archive store each blob once, and each copies out", async () => {
  const { small, other } = await sampleArchives();
  const source = await startRegistry();
  const target = await startRegistry();
  await using dir = await tempDir("pull-out-");
  try {
    await seed(source, small, "team/a:v1");
    await seed(source, small, "team/c:v3");
    await seed(source, other, "team/b:v2");
    const output = join(dir.path, "three.tar");
    const pulled = await runPusher([
      "pull",
      `${source.host}/team/a:v1`,
      `${source.host}/team/b:v2`,
      `${source.host}/team/c:v3`,
      "-o",
      output,
      "--json",
    ]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const blobs = (await tarEntries(output)).filter((name) => /^blobs\/sha256\/.+/.test(name));
    assert.equal(new Set(blobs).size, blobs.length, "a blob is stored twice");
    // small: config, 2 layers, manifest; other: config, 3 layers, manifest.
    assert.equal(blobs.length, 4 + 5);
    const manifest = await tarJson(output, "manifest.json") as { RepoTags: string[] }[];
    assert.deepEqual(
      manifest.map((item) => item.RepoTags).sort(),
      [[`${source.host}/team/a:v1`, `${source.host}/team/c:v3`], [`${source.host}/team/b:v2`]]
        .sort(),
    );
    const events = pulled.stdout.trim().split("\n").map((line) => JSON.parse(line));
    const result = events.find((event) => event.type === "pulled");
    assert.equal(result?.images.length, 3);
    assert.equal(result?.size, (await Deno.stat(output)).size);
    for (const [name, sample] of [["team/b:v2", other], ["team/c:v3", small]] as const) {
      await skopeoCopy(`docker-archive:${output}:${source.host}/${name}`, `${target.host}/${name}`);
      await pullAndVerify(`${target.host}/${name}`, {
        expectedConfigDigest: sample.configDigest,
        expectedDiffIds: sample.diffIds,
      });
    }
  } finally {
    await source.stop();
    await target.stop();
  }
});

Deno.test("pull -o - piped into push -f -: the image arrives with its digest", async () => {
  const { other } = await sampleArchives();
  const source = await startRegistry();
  const target = await startRegistry();
  try {
    const digest = await seed(source, other, "pipe/app:v1");
    await using cache = await tempDir("pull-cache-");
    const command = (args: string[], stdin: "piped" | "null") =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--no-prompt",
          new URL("../../main.ts", import.meta.url).pathname,
          ...args,
        ],
        stdin,
        stdout: "piped",
        stderr: "piped",
        env: { DOCKER_PUSHER_CACHE_DIR: cache.path },
      }).spawn();
    const puller = command(["pull", `${source.host}/pipe/app:v1`, "-o", "-", "--quiet"], "null");
    const pusher = command(["-f", "-", "-r", `${target.host}/pipe/copy:v1`], "piped");
    const piping = puller.stdout.pipeTo(pusher.stdin);
    const [pulled, pullErrors, pushed] = await Promise.all([
      puller.status,
      new Response(puller.stderr).text(),
      pusher.output(),
      piping,
    ]);
    assert.equal(pulled.code, 0, pullErrors);
    assert.equal(pushed.code, 0, decoder.decode(pushed.stderr));
    assert.match(decoder.decode(pushed.stdout), new RegExp(`@${digest}`));
    await pullAndVerify(`${target.host}/pipe/copy:v1`, {
      expectedManifestDigest: digest,
      expectedDiffIds: other.diffIds,
    });
  } finally {
    await source.stop();
    await target.stop();
  }
});

Deno.test("pull from a Basic-auth registry: with the password from stdin it works and never shows it; without, exit 4", async () => {
  const { small } = await sampleArchives();
  const password = "pull-Pa55:word";
  const source = await startRegistry({ htpasswd: { reader: password } });
  await using dir = await tempDir("pull-out-");
  try {
    const digest = await seed(source, small, "secure/app:v1", `reader:${password}`);
    const output = join(dir.path, "secure.tar");
    const refused = await runPusher(["pull", `${source.host}/secure/app:v1`, "-o", output]);
    assert.equal(refused.code, 4, refused.stderr);
    assert.equal(await exists(output), false);
    const pulled = await runPusher(
      [
        "pull",
        `${source.host}/secure/app:v1`,
        "-o",
        output,
        "-u",
        "reader",
        "--password-stdin",
        "--verbose",
      ],
      { stdin: `${password}\n` },
    );
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.ok(!pulled.stdout.includes(password) && !pulled.stderr.includes(password));
    const index = await tarJson(output, "index.json") as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]?.digest, digest);
  } finally {
    await source.stop();
  }
});

Deno.test("pull of a multi-platform index: whole by default; --platform keeps one and says the index changed", async () => {
  const fixture = (await sharedFixtures())["oci-multi-platform"];
  assert.ok(fixture.indexDigest);
  const source = await startRegistry();
  const target = await startRegistry();
  await using dir = await tempDir("pull-out-");
  try {
    await skopeoCopy(`oci-archive:${fixture.path}`, `${source.host}/multi/app:v1`, ["--all"]);
    const whole = join(dir.path, "whole.tar");
    const pulledWhole = await runPusher(["pull", `${source.host}/multi/app:v1`, "-o", whole]);
    assert.equal(pulledWhole.code, 0, pulledWhole.stderr);
    const wholeIndex = await tarJson(whole, "index.json") as { manifests: { digest: string }[] };
    assert.equal(wholeIndex.manifests[0]?.digest, fixture.indexDigest);
    await skopeoCopy(`oci-archive:${whole}`, `${target.host}/multi/whole:v1`, ["--all"]);
    await pullAndVerify(`${target.host}/multi/whole:v1`, {
      all: true,
      expectedManifestDigest: fixture.indexDigest,
    });

    const arm = join(dir.path, "arm.tar");
    const pulledArm = await runPusher([
      "pull",
      `${source.host}/multi/app:v1`,
      "-o",
      arm,
      "--platform",
      "linux/arm64",
      "--json",
    ]);
    assert.equal(pulledArm.code, 0, pulledArm.stderr);
    const events = pulledArm.stdout.trim().split("\n").map((line) => JSON.parse(line));
    const warning = events.find((event) => event.type === "warning");
    assert.match(warning?.message ?? "", /index digest changed/);
    const image = events.find((event) => event.type === "pulled")?.images[0];
    assert.equal(image?.sourceDigest, fixture.indexDigest);
    assert.notEqual(image?.digest, fixture.indexDigest);
    assert.deepEqual(image?.platforms, ["linux/arm64/v8"]);
    await skopeoCopy(`oci-archive:${arm}`, `${target.host}/multi/arm:v1`, ["--all"]);
    const copied = await pullAndVerify(`${target.host}/multi/arm:v1`, {
      all: true,
      expectedManifestDigest: image.digest,
    });
    const armImage = fixture.images.find((candidate) => candidate.platform === "linux/arm64/v8");
    assert.deepEqual(
      copied.images.filter((child) => child.platform !== "unknown/unknown").map((child) =>
        child.manifestDigest
      ),
      [armImage?.manifestDigest],
    );
  } finally {
    await source.stop();
    await target.stop();
  }
});

Deno.test("a pull killed with SIGKILL continues when run again: finished blobs are not downloaded again; disk use stays within the archive's size", async () => {
  const { big } = await sampleArchives();
  const registry = await startRegistry();
  // Every blob GET waits 700 ms before it goes through, so the pull can be killed between blobs.
  const proxy = startFaultProxy({
    upstream: registry.url,
    seed: 1,
    rules: [{ type: "stall", rate: 1, kinds: ["blob-get"] }],
    stallMs: [700, 700],
  });
  await using dir = await tempDir("pull-out-");
  try {
    const digest = await seed(registry, big, "kill/app:v1");
    const output = join(dir.path, "killed.tar");
    const partial = `${output}.partial.d`;
    const args = [
      "pull",
      `${proxy.host}/kill/app:v1`,
      "-o",
      output,
      "--max-concurrent",
      "1",
      "--json",
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-prompt",
        new URL("../../main.ts", import.meta.url).pathname,
        ...args,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    let peak = 0;
    let done: string[] = [];
    for (let tries = 0; tries < 600 && done.length < 2; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      let used = 0;
      for (const entry of await Array.fromAsync(Deno.readDir(partial)).catch(() => [])) {
        const info = await Deno.stat(join(partial, entry.name)).catch(() => undefined);
        used += (info?.blocks ?? 0) * 512;
      }
      peak = Math.max(peak, used);
      const progress = await Deno.readTextFile(join(partial, "progress.json")).catch(() => "");
      if (progress !== "") done = (JSON.parse(progress) as { done: string[] }).done;
    }
    child.kill("SIGKILL");
    await child.status;
    assert.ok(done.length >= 2, `only ${done.length} blobs were done before the kill`);
    assert.equal(await exists(output), false);

    const rerun = await runPusher(args);
    assert.equal(rerun.code, 0, rerun.stderr);
    const events = rerun.stdout.trim().split("\n").map((line) => JSON.parse(line));
    const start = events.find((event) => event.type === "start");
    const result = events.find((event) => event.type === "pulled");
    const sizes = new Map<string, number>(
      start.blobs.map((blob: { id: string; size: number }) => [blob.id, blob.size]),
    );
    const present = events.filter((event) => event.type === "blob" && event.state === "present")
      .map((event) => event.blob.id);
    assert.ok(present.length >= done.length, `${present.length} blobs were kept`);
    const presentBytes = present.reduce((sum: number, id: string) => sum + (sizes.get(id) ?? 0), 0);
    const total = [...sizes.values()].reduce((sum, size) => sum + size, 0);
    assert.ok(
      result.bytesDownloaded <= total - presentBytes,
      `${result.bytesDownloaded} bytes downloaded again of ${total}, ${presentBytes} kept`,
    );
    const finished = ((await Deno.stat(output)).blocks ?? 0) * 512;
    assert.ok(peak > 0 && peak <= finished * 1.05, `peak ${peak} bytes, archive ${finished}`);
    await skopeoCopy(`oci-archive:${output}`, `${registry.host}/kill/back:v1`);
    await pullAndVerify(`${registry.host}/kill/back:v1`, {
      expectedManifestDigest: digest,
      expectedDiffIds: big.diffIds,
    });
  } finally {
    await proxy.close();
    await registry.stop();
  }
});

Deno.test("pull through a fault proxy (503, 429 with Retry-After, stalls, dropped answers) completes a verified archive", async () => {
  const { other } = await sampleArchives();
  const registry = await startRegistry();
  const proxy = startFaultProxy({
    upstream: registry.url,
    seed: 5,
    rules: [
      { type: "unavailable", rate: 0.2, kinds: ["blob-get", "manifest-get"] },
      { type: "throttle", rate: 0.2, kinds: ["blob-get", "manifest-get"] },
      { type: "stall", rate: 0.2, kinds: ["blob-get"] },
      { type: "drop-response", rate: 0.2, kinds: ["blob-get"] },
    ],
    retryAfterSeconds: [1, 1],
    maxFaults: 8,
  });
  await using dir = await tempDir("pull-out-");
  try {
    const digest = await seed(registry, other, "faults/app:v1");
    const output = join(dir.path, "faults.tar");
    const pulled = await runPusher([
      "pull",
      `${proxy.host}/faults/app:v1`,
      "-o",
      output,
      "--retry-attempts",
      "6",
    ]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const faults = Object.values(proxy.stats.faults).reduce((sum, count) => sum + (count ?? 0), 0);
    assert.ok(faults >= 3, `only ${faults} faults were injected: ${JSON.stringify(proxy.stats)}`);
    await skopeoCopy(`oci-archive:${output}`, `${registry.host}/faults/back:v1`);
    await pullAndVerify(`${registry.host}/faults/back:v1`, {
      expectedManifestDigest: digest,
      expectedDiffIds: other.diffIds,
    });
  } finally {
    await proxy.close();
    await registry.stop();
  }
});

Deno.test("pull: a body cut mid-blob resumes; a corrupted blob exits 7 and leaves no archive", async () => {
  const image = buildImage({ layers: 2, layerSize: 600 * 1024 });
  const registry = startMemoryRegistry();
  await using dir = await tempDir("pull-out-");
  try {
    registry.seedBlob("mem/app", image.config);
    for (const layer of image.layers) registry.seedBlob("mem/app", layer.bytes);
    registry.seedManifest("mem/app", "v1", image.manifest);
    const largest = image.layers[0]!;
    let cut = false;
    registry.faults = (context) => {
      if (cut || context.kind !== "blob-get" || !context.path.endsWith(largest.digest)) {
        return undefined;
      }
      cut = true;
      return { type: "cut-response", afterBytes: 100_000 };
    };
    const output = join(dir.path, "mem.tar");
    const pulled = await runPusher(["pull", `${registry.host}/mem/app:v1`, "-o", output]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const ranged = registry.log.filter((record) =>
      record.kind === "blob-get" && record.path.endsWith(largest.digest)
    );
    assert.equal(ranged.length, 2, "the cut blob was asked for twice");
    assert.equal(ranged[0]?.range, undefined);
    assert.match(
      ranged[1]?.range ?? "",
      /^bytes=[1-9]\d*-$/,
      "the second GET continues with Range",
    );
    assert.equal(
      (await tarEntries(output)).filter((name) => name.startsWith("blobs/sha256/")).length,
      2 + 3,
    );

    registry.faults = undefined;
    const stored = registry.blob(largest.digest)!;
    stored[stored.length - 10] = stored[stored.length - 10]! ^ 0xff;
    const corrupt = join(dir.path, "corrupt.tar");
    const failed = await runPusher(["pull", `${registry.host}/mem/app:v1`, "-o", corrupt]);
    assert.equal(failed.code, 7, failed.stderr);
    assert.match(failed.stderr, /failed verification/);
    assert.equal(await exists(corrupt), false);
  } finally {
    await registry.close();
  }
});
