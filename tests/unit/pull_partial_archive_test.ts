/**
 * The partial archive a pull fills: blobs written at their final offsets (in any order, from
 * several regions at once) give exactly the bytes the streaming archive writer gives; progress
 * saved to `progress.json` lets a second open continue (verified blobs kept, partly written ones
 * re-hashed); another plan starts over; and the file never takes more disk than the finished
 * archive.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { planArchive } from "../../lib/image/archive_plan.ts";
import { writeArchive } from "../../lib/image/archive_writer.ts";
import { archiveLayout } from "../../lib/pull/archive_layout.ts";
import { PartialArchive, partialArchivePaths } from "../../lib/pull/partial_archive.ts";
import { collectBytes } from "../helpers/byte_streams.ts";
import { digestOf } from "../helpers/fixtures.ts";
import {
  blobOpener,
  blobsOf,
  buildImage,
  buildIndex,
  type MemoryImage,
} from "../helpers/memory_images.ts";
import { tempDir } from "../helpers/temp_dir.ts";

/** Two images sharing a base layer, one of them a two-platform index. */
function sampleImages(): { images: MemoryImage[]; plan: ReturnType<typeof planArchive> } {
  const app = buildImage({ layers: 2, layerSize: 300 * 1024 });
  const arm = buildImage({
    layers: 1,
    baseLayers: [app.layers[0]!],
    platform: { os: "linux", architecture: "arm64", variant: "v8" },
  });
  const db = buildImage({ layers: 1, family: "docker" });
  const { index, children } = buildIndex([app, arm]);
  const plan = planArchive([
    { names: ["registry.test/app:v1"], manifest: index, children },
    { names: ["registry.test/db:v2"], manifest: db.manifest },
  ]);
  return { images: [app, arm, db], plan };
}

/** Writes `bytes` of a blob into its region in chunks, recording progress as a pull does. */
async function fill(archive: PartialArchive, digest: string, bytes: Uint8Array): Promise<void> {
  const region = await archive.openRegion(digest, bytes.length);
  try {
    for (let offset = region.size; offset < bytes.length; offset += 50_000) {
      await region.append(bytes.subarray(offset, Math.min(offset + 50_000, bytes.length)));
      archive.noteProgress(digest, region.size);
    }
    assert.equal(region.digest(), digest);
  } finally {
    region.close();
  }
  await archive.markDone(digest);
}

Deno.test("blobs filled in place, in reverse order, give writeArchive's exact bytes", async () => {
  await using dir = await tempDir("pull-partial-");
  const { images, plan } = sampleImages();
  const blobs = blobsOf(images);
  const layout = archiveLayout(plan);
  assert.equal(layout.size, plan.size);
  const output = join(dir.path, "out.tar");
  const archive = await PartialArchive.open(output, layout);
  assert.equal(archive.resumed, false);
  await Promise.all(
    [...plan.fetched].reverse().map((blob) => fill(archive, blob.digest, blobs.get(blob.digest)!)),
  );
  await archive.complete(output);
  const streamed = await collectBytes(writeArchive(plan, blobOpener(images)));
  const written = await Deno.readFile(output);
  assert.equal(written.length, streamed.length);
  assert.equal(digestOf(written), digestOf(streamed));
  await assert.rejects(Deno.stat(partialArchivePaths(output).dir), Deno.errors.NotFound);
});

Deno.test("a reopened partial archive keeps verified blobs and continues a half-written one", async () => {
  await using dir = await tempDir("pull-partial-");
  const { images, plan } = sampleImages();
  const blobs = blobsOf(images);
  const layout = archiveLayout(plan);
  const output = join(dir.path, "out.tar");
  const [first, second] = plan.fetched.toSorted((a, b) => b.size - a.size);
  assert.ok(first && second);
  const firstBytes = blobs.get(first.digest)!;
  const secondBytes = blobs.get(second.digest)!;

  const before = await PartialArchive.open(output, layout);
  await fill(before, first.digest, firstBytes);
  const half = Math.floor(secondBytes.length / 2);
  const region = await before.openRegion(second.digest, secondBytes.length);
  await region.append(secondBytes.subarray(0, half));
  region.close();
  before.noteProgress(second.digest, half);
  await before.save();

  assert.ok(await PartialArchive.reusableBytes(output, layout) > 0);
  const after = await PartialArchive.open(output, layout);
  assert.equal(after.resumed, true);
  assert.equal(after.isDone(first.digest), true);
  assert.equal(after.isDone(second.digest), false);
  assert.equal(after.held(second.digest), half);
  const resumed = await after.openRegion(second.digest, secondBytes.length);
  assert.equal(resumed.size, half);
  await resumed.append(secondBytes.subarray(half));
  assert.equal(resumed.digest(), second.digest);
  resumed.close();
  await after.markDone(second.digest);
  for (const blob of plan.fetched) {
    if (!after.isDone(blob.digest)) await fill(after, blob.digest, blobs.get(blob.digest)!);
  }
  await after.complete(output);
  const streamed = await collectBytes(writeArchive(plan, blobOpener(images)));
  assert.equal(digestOf(await Deno.readFile(output)), digestOf(streamed));
});

Deno.test("a partial archive of another plan is not continued", async () => {
  await using dir = await tempDir("pull-partial-");
  const { images, plan } = sampleImages();
  const blobs = blobsOf(images);
  const output = join(dir.path, "out.tar");
  const before = await PartialArchive.open(output, archiveLayout(plan));
  const blob = plan.fetched[0]!;
  await fill(before, blob.digest, blobs.get(blob.digest)!);

  const other = buildImage({ layers: 1 });
  const otherLayout = archiveLayout(planArchive([{ names: ["x:1"], manifest: other.manifest }]));
  assert.equal(await PartialArchive.reusableBytes(output, otherLayout), 0);
  const after = await PartialArchive.open(output, otherLayout);
  assert.equal(after.resumed, false);
  assert.equal(after.isDone(blob.digest), false);
  assert.equal((await Deno.stat(after.paths.archive)).size, otherLayout.size);
});

Deno.test("the partial archive never takes more disk than the finished archive", async () => {
  await using dir = await tempDir("pull-partial-");
  const { images, plan } = sampleImages();
  const blobs = blobsOf(images);
  const layout = archiveLayout(plan);
  const output = join(dir.path, "out.tar");
  const archive = await PartialArchive.open(output, layout);
  const used = async (): Promise<number> => {
    let total = 0;
    for (const entry of Deno.readDirSync(archive.paths.dir)) {
      total += ((await Deno.stat(join(archive.paths.dir, entry.name))).blocks ?? 0) * 512;
    }
    return total;
  };
  const samples = [await used()];
  for (const blob of plan.fetched) {
    await fill(archive, blob.digest, blobs.get(blob.digest)!);
    samples.push(await used());
  }
  await archive.complete(output);
  const finished = ((await Deno.stat(output)).blocks ?? 0) * 512;
  // Headers only at first: a sparse file, far below the finished size.
  assert.ok(samples[0]! < finished / 4, `${samples[0]} bytes used before any blob`);
  const peak = Math.max(...samples);
  assert.ok(peak <= finished * 1.05, `peak ${peak} bytes, finished archive ${finished}`);
});
