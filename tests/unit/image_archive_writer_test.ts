/**
 * The archive writer: images built in memory are written, then read back with this project's
 * readers (random access and one streaming pass) and checked digest by digest; determinism,
 * blob checks, the order blobs are asked for, cancelling, staging, and the plan's docker half
 * (`manifest.json`, `repositories`) and its refusals.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PusherError } from "../../lib/errors.ts";
import { type ImageToWrite, planArchive } from "../../lib/image/archive_plan.ts";
import { type BlobOpener, writeArchive } from "../../lib/image/archive_writer.ts";
import { resolveLayout } from "../../lib/image/layout.ts";
import { openArchive } from "../../lib/image/open_archive.ts";
import type { RandomAccessArchive } from "../../lib/image/random_access.ts";
import { scanArchiveStream } from "../../lib/image/stream_scan.ts";
import { indexTarFile } from "../../lib/image/tar_index.ts";
import { chunkedStream, collectBytes } from "../helpers/byte_streams.ts";
import { digestOf } from "../helpers/fixtures.ts";
import {
  blobOpener,
  blobsOf,
  buildImage,
  buildIndex,
  jsonDocument,
  type MemoryImage,
} from "../helpers/memory_images.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const decoder = new TextDecoder();
const ARM64: { os: string; architecture: string; variant: string } = {
  os: "linux",
  architecture: "arm64",
  variant: "v8",
};

async function writeToFile(
  path: string,
  images: readonly ImageToWrite[],
  opener: BlobOpener,
): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  await writeArchive(planArchive(images), opener).pipeTo(file.writable);
}

async function openWritten(path: string): Promise<RandomAccessArchive> {
  const source = await openArchive(path);
  assert.equal(source.mode, "random", "a written archive is a plain tar");
  return source.archive;
}

async function entryDigest(archive: RandomAccessArchive, path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of archive.openEntry(path)) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

function isVerifyError(error: unknown): boolean {
  return error instanceof PusherError && error.kind === "verify";
}

/** Reads `path` of an archive as JSON. */
async function readJson(archive: RandomAccessArchive, path: string): Promise<unknown> {
  return JSON.parse(decoder.decode(await archive.read(path)));
}

Deno.test("archive writer: an image reads back through this project's reader, digest for digest", async () => {
  const image = buildImage({ layers: 3 });
  await using dir = await tempDir();
  const path = `${dir.path}/app.tar`;
  await writeToFile(
    path,
    [{ names: ["registry.test/team/app:v1"], manifest: image.manifest }],
    blobOpener([image]),
  );
  const archive = await openWritten(path);
  const selection = await resolveLayout(archive);
  const read = selection.images[0];
  assert.ok(read !== undefined && selection.images.length === 1);
  assert.equal(selection.family, "oci");
  assert.deepEqual(read.names, ["registry.test/team/app:v1"]);
  assert.equal(read.sourceManifest?.digest, image.manifest.digest);
  assert.deepEqual(read.sourceManifest?.bytes, image.manifest.bytes);
  assert.equal(read.config.digest, image.configDigest);
  assert.deepEqual(
    read.layers.map((layer) => layer.storedDigest),
    image.layers.map((l) => l.digest),
  );
  assert.deepEqual(read.layers.map((layer) => layer.diffId), image.layers.map((l) => l.diffId));
  for (const [i, layer] of read.layers.entries()) {
    assert.equal(await entryDigest(archive, layer.entry), image.layers[i]?.digest, `layer ${i}`);
  }
});

Deno.test("archive writer: the tar stream reads back in one streaming pass, as from stdin", async () => {
  const image = buildImage({ layers: 2, family: "docker" });
  const plan = planArchive([{ names: ["app:v2"], manifest: image.manifest }]);
  const hashed = new Map<string, string>();
  const scan = await scanArchiveStream(
    writeArchive(plan, blobOpener([image])),
    async (path, _size, body) => {
      const hash = createHash("sha256");
      for await (const chunk of body) hash.update(chunk);
      hashed.set(path, `sha256:${hash.digest("hex")}`);
    },
    { memoryLimit: 64 * 1024 },
  );
  const selection = await resolveLayout(scan.view);
  const read = selection.images[0];
  assert.equal(read?.config.digest, image.configDigest);
  assert.deepEqual(read?.names, ["app:v2"], "RepoTags of manifest.json name the image");
  for (const layer of image.layers) {
    const path = `blobs/sha256/${layer.digest.slice(7)}`;
    assert.equal(hashed.get(path), layer.digest, "the layer went through the large-entry handler");
  }
});

Deno.test("archive writer: two images in one archive store their shared layer once", async () => {
  const one = buildImage({ layers: 1 });
  const two = buildImage({ layers: 1, baseLayers: [one.layers[0]!] });
  await using dir = await tempDir();
  const path = `${dir.path}/two.tar`;
  await writeToFile(path, [
    { names: ["one:v1"], manifest: one.manifest },
    { names: ["two:v2"], manifest: two.manifest },
  ], blobOpener([one, two]));
  const shared = `blobs/sha256/${one.layers[0]!.digest.slice(7)}`;
  const entries = (await indexTarFile(path)).entries.map((entry) => entry.path);
  assert.equal(entries.filter((entry) => entry === shared).length, 1);
  assert.equal(new Set(entries).size, entries.length, "no entry is written twice");
  const archive = await openWritten(path);
  for (const [name, image] of [["one:v1", one], ["two:v2", two]] as const) {
    const read = (await resolveLayout(archive, { image: name })).images[0];
    assert.equal(read?.config.digest, image.configDigest, name);
    assert.equal(read?.layers[0]?.entry, shared, `${name} points at the shared blob`);
  }
  const manifestJson = await readJson(archive, "manifest.json") as { RepoTags: string[] }[];
  assert.deepEqual(manifestJson.map((item) => item.RepoTags), [["one:v1"], ["two:v2"]]);
});

Deno.test("archive writer: a multi-platform index keeps every platform; manifest.json lists one", async () => {
  const amd = buildImage();
  const arm = buildImage({ platform: ARM64 });
  const attestation = jsonDocument({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: amd.configDigest,
      size: amd.config.length,
    },
    layers: [],
  }, "application/vnd.oci.image.manifest.v1+json");
  const index = jsonDocument({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {
        mediaType: attestation.mediaType,
        digest: attestation.digest,
        size: attestation.bytes.length,
        platform: { os: "unknown", architecture: "unknown" },
        annotations: {
          "vnd.docker.reference.type": "attestation-manifest",
          "vnd.docker.reference.digest": arm.manifest.digest,
        },
      },
      ...[arm, amd].map((image) => ({
        mediaType: image.manifest.mediaType,
        digest: image.manifest.digest,
        size: image.manifest.bytes.length,
        platform: image.platform,
      })),
    ],
  }, "application/vnd.oci.image.index.v1+json");
  const children = [attestation, arm.manifest, amd.manifest];
  await using dir = await tempDir();
  for (const [loadPlatform, expected] of [[undefined, arm], ["linux/amd64", amd]] as const) {
    const path = `${dir.path}/multi-${loadPlatform?.replaceAll("/", "-") ?? "default"}.tar`;
    const image: ImageToWrite = { names: ["multi:1"], manifest: index, children };
    if (loadPlatform !== undefined) image.loadPlatform = loadPlatform;
    await writeToFile(path, [image], blobOpener([amd, arm]));
    const archive = await openWritten(path);
    const indexJson = await readJson(archive, "index.json") as { manifests: { digest: string }[] };
    assert.deepEqual(indexJson.manifests.map((entry) => entry.digest), [index.digest]);
    const selection = await resolveLayout(archive);
    assert.equal(selection.index?.digest, index.digest);
    assert.deepEqual(
      selection.images.map((read) => read.sourceManifest?.digest),
      children.map((child) => child.digest),
      "both platforms and the attestation (whose subject is present) read back",
    );
    for (const child of children) {
      assert.ok(archive.has(`blobs/sha256/${child.digest.slice(7)}`), `${child.digest} is stored`);
    }
    const items = await readJson(archive, "manifest.json") as { Config: string }[];
    assert.deepEqual(
      items.map((item) => item.Config),
      [`blobs/sha256/${expected.configDigest.slice(7)}`],
      "one runnable platform, never the attestation",
    );
  }
  assert.throws(
    () => planArchive([{ names: [], manifest: index, children, loadPlatform: "linux/s390x" }]),
    (error: unknown) => error instanceof PusherError && error.kind === "usage",
  );
});

Deno.test("archive writer: the same images give byte-identical archives whatever the chunking", async () => {
  const one = buildImage({ layers: 2, layerSize: 200 * 1024 });
  const two = buildImage({ layers: 1, family: "docker" });
  const images: ImageToWrite[] = [
    { names: ["one:v1", "registry.test/one:latest"], manifest: one.manifest },
    { names: ["two:v1"], manifest: two.manifest },
  ];
  const first = await collectBytes(writeArchive(planArchive(images), blobOpener([one, two], 1000)));
  const second = await collectBytes(
    writeArchive(planArchive(images), blobOpener([one, two], 65536)),
  );
  assert.equal(digestOf(first), digestOf(second));
  assert.equal(first.length, planArchive(images).size, "the plan predicts the size");
  await using dir = await tempDir();
  const path = `${dir.path}/fixed.tar`;
  await Deno.writeFile(path, first);
  const index = await indexTarFile(path);
  for (const entry of index.entries) {
    const block = first.subarray(entry.headerOffset, entry.headerOffset + 512);
    const text = (offset: number, length: number): string =>
      decoder.decode(block.subarray(offset, offset + length));
    assert.equal(text(136, 12), "00000000000\0", `${entry.path} mtime`);
    assert.equal(text(108, 16), "0000000\x000000000\0", `${entry.path} uid and gid`);
    assert.equal(text(100, 8), entry.type === "directory" ? "0000755\0" : "0000644\0");
  }
  assert.deepEqual(
    index.entries.slice(0, 6).map((entry) => entry.path),
    ["oci-layout", "index.json", "manifest.json", "repositories", "blobs", "blobs/sha256"],
    "metadata comes before the blobs",
  );
});

Deno.test("archive writer: a blob whose bytes differ from its descriptor fails with a verify error", async () => {
  const image = buildImage({ layers: 1 });
  const plan = planArchive([{ names: ["app:v1"], manifest: image.manifest }]);
  const layer = image.layers[0]!;
  const variants: Record<string, Uint8Array> = {
    "same size, other bytes": layer.bytes.map((byte) => byte ^ 0xff),
    "one byte short": layer.bytes.subarray(0, layer.bytes.length - 1),
    "one byte more": new Uint8Array([...layer.bytes, 0]),
  };
  for (const [label, bytes] of Object.entries(variants)) {
    const blobs = blobsOf([image]);
    const opener: BlobOpener = (blob) =>
      chunkedStream(blob.digest === layer.digest ? bytes : blobs.get(blob.digest)!, 4096);
    let written = 0;
    await assert.rejects(
      writeArchive(plan, opener).pipeTo(
        new WritableStream({
          write(chunk): void {
            written += chunk.length;
          },
        }),
      ),
      (error: unknown) => isVerifyError(error) && (error as Error).message.includes(layer.digest),
      label,
    );
    assert.ok(written < plan.size, `${label}: the archive is left incomplete`);
  }
});

Deno.test("archive writer: blobs are asked for one at a time, in archive order", async () => {
  const one = buildImage({ layers: 2 });
  const two = buildImage({ layers: 2, baseLayers: [one.layers[1]!] });
  const plan = planArchive([
    { names: ["one:v1"], manifest: one.manifest },
    { names: ["two:v1"], manifest: two.manifest },
  ]);
  const asked: string[] = [];
  let open = 0;
  let mostOpen = 0;
  const inner = blobOpener([one, two], 4096, asked);
  const opener: BlobOpener = async (blob) => {
    open += 1;
    mostOpen = Math.max(mostOpen, open);
    const stream = await inner(blob);
    return stream.pipeThrough(new TransformStream({ flush: () => void (open -= 1) }));
  };
  await collectBytes(writeArchive(plan, opener));
  assert.deepEqual(asked, plan.fetched.map((blob) => blob.digest));
  assert.deepEqual(asked, [
    one.configDigest,
    ...one.layers.map((layer) => layer.digest),
    two.configDigest,
    two.layers[1]!.digest,
    two.layers[2]!.digest,
  ]);
  assert.equal(mostOpen, 1);
});

Deno.test("archive writer: cancelling the archive cancels the blob being copied", async () => {
  const image = buildImage({ layers: 1, layerSize: 512 * 1024 });
  const plan = planArchive([{ names: ["app:v1"], manifest: image.manifest }]);
  const blobs = blobsOf([image]);
  let cancelled: unknown = undefined;
  const opener: BlobOpener = (blob) => {
    const inner = chunkedStream(blobs.get(blob.digest)!, 1024).getReader();
    return new ReadableStream({
      async pull(controller): Promise<void> {
        const next = await inner.read();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      cancel(reason): void {
        cancelled = reason ?? "cancelled";
      },
    }, { highWaterMark: 0 });
  };
  const reader = writeArchive(plan, opener).getReader();
  let read = 0;
  while (read < 16 * 1024) read += (await reader.read()).value?.length ?? 0;
  await reader.cancel("stop");
  assert.notEqual(cancelled, undefined, "the layer's stream was cancelled");
});

Deno.test("archive writer: names go to index.json, RepoTags and repositories as docker writes them", () => {
  const image = buildImage({ layers: 2 });
  const pinned = `registry.test/app@${image.manifest.digest}`;
  const plan = planArchive([{
    names: ["app", "localhost:5000/team/app:v2", pinned],
    manifest: image.manifest,
  }]);
  const file = (path: string): unknown =>
    JSON.parse(decoder.decode(plan.files.find((entry) => entry.path === path)?.bytes));
  const index = file("index.json") as { manifests: { annotations?: Record<string, string> }[] };
  assert.deepEqual(index.manifests.map((entry) => entry.annotations), [
    {
      "io.containerd.image.name": "docker.io/library/app:latest",
      "org.opencontainers.image.ref.name": "latest",
    },
    {
      "io.containerd.image.name": "localhost:5000/team/app:v2",
      "org.opencontainers.image.ref.name": "v2",
    },
    { "io.containerd.image.name": pinned },
  ]);
  const items = file("manifest.json") as { RepoTags: string[]; Layers: string[] }[];
  assert.deepEqual(items.map((item) => item.RepoTags), [[
    "app:latest",
    "localhost:5000/team/app:v2",
  ]]);
  assert.deepEqual(
    items[0]?.Layers,
    image.layers.map((layer) => `blobs/sha256/${layer.digest.slice(7)}`),
  );
  const top = image.layers[1]!.digest.slice(7);
  assert.deepEqual(file("repositories"), {
    app: { latest: top },
    "localhost:5000/team/app": { v2: top },
  });
  assert.deepEqual(file("oci-layout"), { imageLayoutVersion: "1.0.0" });
});

Deno.test("archive writer: the plan refuses mismatched documents, missing children and repeated names", () => {
  const image: MemoryImage = buildImage({ layers: 1 });
  const tampered = { ...image.manifest, bytes: image.manifest.bytes.slice(0, -1) };
  assert.throws(() => planArchive([{ names: [], manifest: tampered }]), isVerifyError);
  const { index } = buildIndex([image, buildImage({ platform: ARM64 })]);
  assert.throws(
    () => planArchive([{ names: [], manifest: index, children: [image.manifest] }]),
    (error: unknown) => error instanceof PusherError && error.kind === "internal",
  );
  assert.throws(
    () =>
      planArchive([
        { names: ["app:v1"], manifest: image.manifest },
        { names: ["docker.io/library/app:v1"], manifest: buildImage().manifest },
      ]),
    (error: unknown) => error instanceof PusherError && error.kind === "usage",
    "one name for two images",
  );
  const notAManifest = jsonDocument({ hello: "world" }, "application/json");
  assert.throws(
    () => planArchive([{ names: [], manifest: notAManifest }]),
    (error: unknown) => error instanceof PusherError && error.kind === "input",
  );
});
