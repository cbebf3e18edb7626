/**
 * Every archive layout pushed through the CLI to a real Distribution registry, pulled back with
 * skopeo and checked: config digest kept, every layer decompresses to its diff_id, the manifest
 * family is right, and the same image pushed from different layouts gets the same digest.
 */

import assert from "node:assert/strict";
import { EXIT_CODES } from "../../lib/errors.ts";
import { zstdWithSkippableFrame } from "../helpers/byte_streams.ts";
import {
  concat,
  digestOf,
  type FixtureInfo,
  type LayoutName,
  sharedFixtures,
  writeTar,
} from "../helpers/fixtures.ts";
import { runPusher } from "../helpers/cli.ts";
import { pullAndVerify, skopeoInspect } from "../helpers/pull_verify.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";

async function pushLayout(
  registry: TestRegistry,
  fixture: FixtureInfo,
  repository: string,
  extra: string[] = [],
): Promise<string> {
  const reference = `${registry.host}/${repository}:1`;
  const args = ["-f", fixture.path, "-r", `http://${reference}`, ...extra];
  if (fixture.choose !== undefined) args.push("--image", fixture.choose);
  const run = await runPusher(args);
  assert.equal(run.code, 0, `push of ${fixture.layout} failed:\n${run.stderr}`);
  const printed = run.stdout.trim().split("\n").at(-1) ?? "";
  assert.match(printed, new RegExp(`^${registry.host}/${repository}@sha256:[0-9a-f]{64}$`));
  return printed.split("@")[1] as string;
}

Deno.test("every layout is pushed to Distribution and pulled back intact", async (t) => {
  const fixtures = await sharedFixtures();
  const registry = await startRegistry();
  const digests = new Map<LayoutName, string>();
  try {
    for (const fixture of Object.values(fixtures)) {
      await t.step(fixture.layout, async () => {
        const repository = `layouts/${fixture.layout}`;
        const digest = await pushLayout(registry, fixture, repository);
        digests.set(fixture.layout, digest);
        const multi = fixture.images.length > 1;
        const pulled = await pullAndVerify(`${registry.host}/${repository}:1`, {
          all: multi,
          expectedManifestDigest: digest,
          expectedConfigDigest: fixture.configDigest,
          expectedDiffIds: fixture.diffIds,
        });
        if (multi) {
          assert.equal(pulled.mediaType, OCI_INDEX);
          assert.deepEqual(
            pulled.images.map((image) => image.configDigest).sort(),
            fixture.images.map((image) => image.configDigest).sort(),
          );
          if (fixture.indexDigest !== undefined) assert.equal(digest, fixture.indexDigest);
        } else {
          const expectedType = fixture.family === "docker" ? DOCKER_MANIFEST : OCI_MANIFEST;
          assert.equal(pulled.mediaType, expectedType, `${fixture.layout} manifest type`);
        }
        const stored = fixture.images[0];
        if (stored?.manifestDigest !== undefined && stored.layerCompression !== "none" && !multi) {
          assert.equal(digest, stored.manifestDigest, "an unchanged OCI manifest keeps its digest");
        }
      });
    }
    await t.step("the same image from docker layouts gets one digest", () => {
      const sameImage: LayoutName[] = [
        "docker-legacy",
        "docker-archive",
        "docker-legacy-gzip",
        "docker-archive-zstd",
      ];
      const seen = new Set(sameImage.map((layout) => digests.get(layout)));
      assert.equal(seen.size, 1, `digests: ${[...seen].join(", ")}`);
    });
  } finally {
    await registry.stop();
  }
});

Deno.test("--compression picks the layer format and the manifest family", async () => {
  const fixtures = await sharedFixtures();
  const registry = await startRegistry();
  try {
    const fixture = fixtures["docker-legacy"];
    for (
      const [compression, manifestType, layerType] of [
        ["gzip", DOCKER_MANIFEST, "application/vnd.docker.image.rootfs.diff.tar.gzip"],
        ["zstd", OCI_MANIFEST, "application/vnd.oci.image.layer.v1.tar+zstd"],
        ["none", OCI_MANIFEST, "application/vnd.oci.image.layer.v1.tar"],
      ] as const
    ) {
      const repository = `compression/${compression}`;
      const digest = await pushLayout(registry, fixture, repository, [
        "--compression",
        compression,
      ]);
      const pulled = await pullAndVerify(`${registry.host}/${repository}:1`, {
        expectedManifestDigest: digest,
        expectedConfigDigest: fixture.configDigest,
        expectedDiffIds: fixture.diffIds,
      });
      assert.equal(pulled.mediaType, manifestType);
      const image = pulled.images[0];
      assert.ok(image);
      for (const layer of image.layers) {
        assert.equal(layer.mediaType, layerType);
        assert.equal(layer.compression, compression);
      }
      if (compression === "none") {
        assert.deepEqual(image.layers.map((layer) => layer.digest), fixture.diffIds);
      }
    }
  } finally {
    await registry.stop();
  }
});

Deno.test("multi-image archives need --image; stdin and skipped platforms are reported", async () => {
  const fixtures = await sharedFixtures();
  const registry = await startRegistry();
  try {
    const multi = fixtures["docker-legacy-multi"];
    const refused = await runPusher(["-f", multi.path, "-r", `http://${registry.host}/multi/x:1`]);
    assert.equal(refused.code, EXIT_CODES.usage);
    for (const name of multi.holds) assert.ok(refused.stderr.includes(name), refused.stderr);
    assert.equal(refused.stderr.trim().split("\n").length, 1, "one line");
    await assert.rejects(skopeoInspect(`${registry.host}/multi/x:1`));

    const gz = fixtures["docker-legacy-gzip"];
    const bytes = await Deno.readFile(gz.path);
    const piped = await runPusher(["-f", "-", "-r", `http://${registry.host}/stdin/app:1`], {
      stdin: bytes,
    });
    assert.equal(piped.code, 0, piped.stderr);
    await pullAndVerify(`${registry.host}/stdin/app:1`, {
      expectedConfigDigest: gz.configDigest,
      expectedDiffIds: gz.diffIds,
    });

    const containerd = fixtures["docker-containerd"];
    const partial = await runPusher([
      "-f",
      containerd.path,
      "-r",
      `http://${registry.host}/containerd/app:1`,
    ]);
    assert.equal(partial.code, 0, partial.stderr);
    for (const platform of containerd.skippedPlatforms) {
      assert.match(partial.stderr, new RegExp(`platform ${platform} .*left out`));
    }
  } finally {
    await registry.stop();
  }
});

Deno.test("several -r targets get one upload: tags in one repository, mounts into another", async () => {
  const fixtures = await sharedFixtures();
  const registry = await startRegistry();
  try {
    const fixture = fixtures["docker-archive"];
    const run = await runPusher([
      "-f",
      fixture.path,
      "-r",
      `http://${registry.host}/multi/one:a`,
      "-r",
      `http://${registry.host}/multi/one:b`,
      "-r",
      `http://${registry.host}/multi/two:c`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const digests = new Set<string>();
    for (const reference of ["multi/one:a", "multi/one:b", "multi/two:c"]) {
      const pulled = await pullAndVerify(`${registry.host}/${reference}`, {
        expectedConfigDigest: fixture.configDigest,
        expectedDiffIds: fixture.diffIds,
      });
      digests.add(pulled.manifestDigest);
    }
    assert.equal(digests.size, 1);
    assert.deepEqual(run.stdout.trim().split("\n").sort(), [
      `${registry.host}/multi/one@${[...digests][0]}`,
      `${registry.host}/multi/two@${[...digests][0]}`,
    ]);
  } finally {
    await registry.stop();
  }
});

/**
 * An OCI layout archive of one image whose only layer is a zstd stream that opens with a skippable
 * frame (as pzstd and seekable zstd write them), with the digests a push must keep.
 */
function skippableFrameArchive(): {
  archive: Uint8Array;
  manifestDigest: string;
  layerDigest: string;
  diffId: string;
} {
  const encoder = new TextEncoder();
  const tar = writeTar([
    { name: "etc/", type: "directory" },
    { name: "etc/hostname", data: "skippable\n" },
    { name: "etc/motd", data: "a zstd layer behind a skippable frame\n".repeat(2000) },
  ]);
  const layer = zstdWithSkippableFrame(tar);
  const config = encoder.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: [digestOf(tar)] },
  }));
  const manifest = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: digestOf(config),
      size: config.length,
    },
    layers: [{ mediaType: OCI_LAYER_ZSTD, digest: digestOf(layer), size: layer.length }],
  }));
  const index = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{
      mediaType: OCI_MANIFEST,
      digest: digestOf(manifest),
      size: manifest.length,
      annotations: { "org.opencontainers.image.ref.name": "1" },
    }],
  }));
  const blob = (bytes: Uint8Array): { name: string; data: Uint8Array } => ({
    name: `blobs/sha256/${digestOf(bytes).slice("sha256:".length)}`,
    data: bytes,
  });
  const archive = writeTar([
    { name: "oci-layout", data: '{"imageLayoutVersion":"1.0.0"}' },
    { name: "index.json", data: index },
    { name: "blobs/", type: "directory" },
    { name: "blobs/sha256/", type: "directory" },
    blob(config),
    blob(layer),
    blob(manifest),
  ]);
  return {
    archive,
    manifestDigest: digestOf(manifest),
    layerDigest: digestOf(layer),
    diffId: digestOf(tar),
  };
}

Deno.test("a zstd layer that opens with a skippable frame goes up as it is and pulls back intact", async () => {
  await using dir = await tempDir();
  const image = skippableFrameArchive();
  const path = `${dir.path}/skippable.tar`;
  await Deno.writeFile(path, image.archive);
  const registry = await startRegistry();
  try {
    const run = await runPusher(["-f", path, "-r", `http://${registry.host}/zstd/skippable:1`]);
    assert.equal(run.code, 0, run.stderr);
    const pulled = await pullAndVerify(`${registry.host}/zstd/skippable:1`, {
      expectedManifestDigest: image.manifestDigest,
      expectedDiffIds: [image.diffId],
    });
    assert.equal(pulled.mediaType, OCI_MANIFEST);
    const layer = pulled.images[0]?.layers[0];
    assert.equal(layer?.digest, image.layerDigest, "the layer went up byte for byte");
    assert.equal(layer?.mediaType, OCI_LAYER_ZSTD);
    assert.equal(layer?.compression, "zstd");
  } finally {
    await registry.stop();
  }
});

/** Compresses `bytes` with the `zstd` command line tool into one frame. */
async function zstdFrame(bytes: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("zstd", {
    args: ["-q", "-c"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const output = child.output();
  const writer = child.stdin.getWriter();
  await writer.write(bytes);
  await writer.close();
  const { code, stdout } = await output;
  assert.equal(code, 0, "zstd");
  return stdout;
}

Deno.test("a .tar.zst archive of several zstd frames behind a skippable frame pushes like its tar", async () => {
  const fixture = (await sharedFixtures())["docker-archive"];
  const tar = await Deno.readFile(fixture.path);
  const half = Math.floor(tar.length / 2);
  // A skippable frame and the first half in one frame, then the second half as `cat` adds it.
  const archive = concat([
    zstdWithSkippableFrame(tar.subarray(0, half)),
    await zstdFrame(tar.subarray(half)),
  ]);
  await using dir = await tempDir();
  const path = `${dir.path}/multi-frame.tar.zst`;
  await Deno.writeFile(path, archive);
  const registry = await startRegistry();
  try {
    const fromTar = await pushLayout(registry, fixture, "zstd/from-tar");
    const fromZstd = await pushLayout(registry, { ...fixture, path }, "zstd/multi-frame");
    assert.equal(fromZstd, fromTar, "the same image, the same digest");
    await pullAndVerify(`${registry.host}/zstd/multi-frame:1`, {
      expectedManifestDigest: fromZstd,
      expectedConfigDigest: fixture.configDigest,
      expectedDiffIds: fixture.diffIds,
    });
  } finally {
    await registry.stop();
  }
});
