/**
 * Delta bundles on the archive side: a plan that leaves layers out stores every other blob and
 * lists the left-out layers (with who held them) in `omitted-layers.json`; the readers (random
 * access and one streaming pass) mark those layers left out instead of refusing the archive as
 * incomplete, the listing counts them apart from the stored bytes, and a left-out layer the
 * record does not name is still an incomplete archive. The record's own checks.
 */

import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { summarizeImages } from "../../lib/image/archive_listing.ts";
import { planArchive } from "../../lib/image/archive_plan.ts";
import { writeArchive } from "../../lib/image/archive_writer.ts";
import { resolveLayout } from "../../lib/image/layout.ts";
import {
  encodeOmittedLayers,
  OMITTED_LAYERS_FILE,
  parseOmittedLayers,
} from "../../lib/image/omitted_layers.ts";
import { openArchive } from "../../lib/image/open_archive.ts";
import { scanArchiveStream } from "../../lib/image/stream_scan.ts";
import type { EntryView } from "../../lib/image/types.ts";
import { blobOpener, buildImage, type MemoryImage } from "../helpers/memory_images.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const base = buildImage({ layers: 2, layerSize: 4096 });
const app = buildImage({ layers: 1, layerSize: 4096, baseLayers: base.layers });
const [shared0, shared1] = base.layers;
const [own] = app.layers.slice(2);

/** Writes base and app as a delta leaving out base's two layers, held by base. */
async function writeDelta(path: string, images: MemoryImage[] = [base, app]): Promise<void> {
  const held = new Map(
    base.layers.map((layer) => [layer.digest, {
      mediaType: layer.mediaType,
      digest: layer.digest,
      size: layer.bytes.length,
      heldBy: "registry.test/bundle/base:1",
    }]),
  );
  const plan = planArchive(
    [
      { names: ["registry.test/bundle/base:1"], manifest: base.manifest },
      { names: ["registry.test/bundle/app:1"], manifest: app.manifest },
    ].slice(0, images.length),
    { omit: held },
  );
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  await writeArchive(plan, blobOpener(images)).pipeTo(file.writable);
}

async function randomView(path: string): Promise<EntryView> {
  const source = await openArchive(path);
  assert.equal(source.mode, "random");
  return source.archive;
}

async function streamedView(path: string): Promise<EntryView> {
  const file = await Deno.open(path);
  const scan = await scanArchiveStream(file.readable, () => Promise.resolve(undefined), {
    name: path,
  });
  return scan.view;
}

Deno.test("a plan that leaves layers out stores the rest and lists them with their holder", () => {
  const plan = planArchive(
    [
      { names: ["registry.test/bundle/base:1"], manifest: base.manifest },
      { names: ["registry.test/bundle/app:1"], manifest: app.manifest },
    ],
    {
      omit: new Map([[shared0?.digest ?? "", {
        mediaType: "",
        digest: shared0?.digest ?? "",
        size: 1,
        heldBy: "registry.test/bundle/base:1",
      }]]),
    },
  );
  const fetched = plan.fetched.map((blob) => blob.digest);
  assert.ok(!fetched.includes(shared0?.digest ?? ""), "the left-out layer is not fetched");
  assert.ok(fetched.includes(shared1?.digest ?? "") && fetched.includes(own?.digest ?? ""));
  assert.deepEqual(plan.omitted, [{
    mediaType: shared0?.mediaType,
    digest: shared0?.digest,
    size: shared0?.bytes.length,
    heldBy: "registry.test/bundle/base:1",
  }], "the layer's own descriptor wins over what the caller guessed");
  const file = plan.files.find((entry) => entry.path === OMITTED_LAYERS_FILE);
  assert.ok(file !== undefined, "omitted-layers.json is a top-level file");
  assert.deepEqual([...parseOmittedLayers(file.bytes).values()], plan.omitted);
  assert.equal(
    planArchive([{ names: ["a:1"], manifest: base.manifest }]).files.some((entry) =>
      entry.path === OMITTED_LAYERS_FILE
    ),
    false,
    "a full bundle has no record",
  );
});

for (
  const [how, view] of [["random access", randomView], [
    "one streaming pass",
    streamedView,
  ]] as const
) {
  Deno.test(`the readers mark left-out layers (${how}); ls counts them apart`, async () => {
    await using dir = await tempDir("omitted-");
    const path = `${dir.path}/delta.tar`;
    await writeDelta(path);
    const entries = await view(path);
    const selection = await resolveLayout(entries, { image: "registry.test/bundle/app:1" });
    const layers = selection.images[0]?.layers ?? [];
    assert.deepEqual(layers.map((layer) => layer.omitted?.heldBy), [
      "registry.test/bundle/base:1",
      "registry.test/bundle/base:1",
      undefined,
    ]);
    assert.deepEqual(layers.map((layer) => layer.storedDigest), app.layers.map((l) => l.digest));
    const summaries = await summarizeImages(entries);
    assert.deepEqual(summaries.map((summary) => summary.omittedLayers), [
      [shared0?.digest, shared1?.digest],
      [shared0?.digest, shared1?.digest],
    ]);
    assert.equal(summaries[0]?.size, base.config.length, "left-out layers are not stored bytes");
    assert.equal(summaries[1]?.size, app.config.length + (own?.bytes.length ?? 0));
  });
}

Deno.test("a layer absent without a record is still an incomplete archive", async () => {
  await using dir = await tempDir("omitted-");
  const path = `${dir.path}/delta.tar`;
  const plan = planArchive([{ names: ["registry.test/bundle/app:1"], manifest: app.manifest }], {
    omit: new Map([[shared0?.digest ?? "", {
      mediaType: "",
      digest: shared0?.digest ?? "",
      size: 0,
    }]]),
  });
  // The record is dropped: the archive now lacks a layer nobody said it leaves out.
  plan.files = plan.files.filter((file) => file.path !== OMITTED_LAYERS_FILE);
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  await writeArchive(plan, blobOpener([app])).pipeTo(file.writable);
  await assert.rejects(
    resolveLayout(await randomView(path)),
    (error: unknown) =>
      error instanceof PusherError && error.kind === "input" &&
      /not in the archive/.test(error.message),
  );
});

Deno.test("the record's own checks: schema version, digests, sizes", () => {
  const encoder = new TextEncoder();
  const refused = (json: unknown, pattern: RegExp) =>
    assert.throws(
      () => parseOmittedLayers(encoder.encode(JSON.stringify(json))),
      (error: unknown) =>
        error instanceof PusherError && error.kind === "input" && pattern.test(error.message),
    );
  refused({ schemaVersion: 2, layers: [] }, /schemaVersion 2; this version reads 1/);
  refused({ schemaVersion: 1 }, /no "layers" array/);
  refused({ schemaVersion: 1, layers: [{ digest: "md5:x", size: 1 }] }, /no sha256 digest/);
  refused({ schemaVersion: 1, layers: [{ digest: shared0?.digest, size: -1 }] }, /valid "size"/);
  const layer = { mediaType: "m", digest: shared0?.digest ?? "", size: 3 };
  assert.deepEqual([...parseOmittedLayers(encodeOmittedLayers([layer])).values()], [layer]);
});
