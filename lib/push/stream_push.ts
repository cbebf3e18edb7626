/**
 * Pushing from one streaming pass (gzip/zstd archives, pipes, stdin): each large entry goes up as
 * it streams past, before the layout is known; small entries are kept in memory; at the end the
 * layout is resolved and the streamed results are matched to the image's layers and checked.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { type LayoutOptions, resolveLayout } from "../image/layout.ts";
import { scanArchiveStream } from "../image/stream_scan.ts";
import type { ArchiveLayer, ImageSelection } from "../image/types.ts";
import { uploadBlob } from "./blob_upload.ts";
import { blobInfo, emitBlob, type RunContext } from "./context.ts";
import { pushLayer, readProgress, uploadSettings } from "./layer_push.ts";
import { layerUpload } from "./layer_source.ts";
import type { BlobRef } from "../oci/descriptor.ts";
import type { LayerResult } from "../pipeline/layer_transform.ts";
import { streamOf } from "./progress_stream.ts";
import { announce, reportWarnings, uniqueLayers } from "./selection.ts";

const BLOB_PATH = /^blobs\/sha256\/([0-9a-f]{64})$/;

/** A streamed entry's layer, as far as its path tells. */
function streamedLayer(path: string, size: number): ArchiveLayer {
  const named = path.match(BLOB_PATH)?.[1];
  return {
    entry: path,
    size,
    compression: "none",
    ...(named !== undefined ? { storedDigest: `sha256:${named}` } : {}),
  };
}

type StreamedLayer = BlobRef & { diffId?: string };

/** The start event of a push whose blobs are not known yet (they stream past first). */
function announceUnknown(ctx: RunContext): void {
  ctx.emit({
    type: "start",
    file: ctx.options.file,
    targets: ctx.options.targets,
    blobs: [],
    totalBytes: 0,
    dryRun: ctx.options.dryRun,
  });
}

/** Uploads (or, in a dry run, only digests) one large entry as it streams past. */
async function pushStreamedEntry(
  ctx: RunContext,
  path: string,
  size: number,
  body: ReadableStream<Uint8Array>,
): Promise<LayerResult> {
  const layer = streamedLayer(path, size);
  const blob = blobInfo(layer);
  const upload = layerUpload(
    layer,
    () => body,
    ctx.learnt.compression,
    false,
    readProgress(ctx, blob),
  );
  if (ctx.options.dryRun) {
    emitBlob(ctx, blob, "checking", "computing the digest");
    const { stream } = upload.source.open();
    await stream.pipeTo(new WritableStream());
    return await upload.pushed();
  }
  emitBlob(ctx, blob, "uploading");
  const result = await uploadBlob(upload.source, uploadSettings(ctx, blob, size, `layer ${path}`));
  ctx.result.bytesSent += result.bytesSent;
  const pushed = await upload.pushed();
  emitBlob(ctx, { ...blob, digest: pushed.digest, uploadSize: pushed.size }, "uploaded");
  return pushed;
}

/** What opening a layer a delta leaves out would be: a broken invariant, as it is never read. */
function leftOutEntry(entry: string): never {
  throw new PusherError("internal", `${entry} is left out of the archive and cannot be read`);
}

/** One streaming pass; returns the selection and what each of its layers became. */
export async function pushFromStream(
  ctx: RunContext,
  stream: ReadableStream<Uint8Array>,
  name: string,
  imageOption: LayoutOptions,
): Promise<{ selection: ImageSelection; layers: Map<string, BlobRef> }> {
  // The start line waits for the first upload or for the layout, so a stream that holds no image
  // ends with its error alone.
  let started = false;
  const scan = await scanArchiveStream(
    stream,
    (path, size, body) => {
      if (!started) announceUnknown(ctx);
      started = true;
      return pushStreamedEntry(ctx, path, size, body);
    },
    { name },
  );
  const selection = await resolveLayout(scan.view, imageOption);
  if (started) reportWarnings(ctx, selection);
  else announce(ctx, selection);
  const layers = new Map<string, BlobRef>();
  for (const layer of uniqueLayers(selection)) {
    if (layer.omitted !== undefined) {
      // A delta's left-out layer is looked for in the registry, never read.
      layers.set(layer.entry, await pushLayer(ctx, layer, () => leftOutEntry(layer.entry)));
      continue;
    }
    const streamed = scan.large.get(layer.entry);
    if (!streamed) {
      const bytes = await scan.view.read(layer.entry);
      layers.set(layer.entry, await pushLayer(ctx, layer, () => streamOf(bytes)));
      continue;
    }
    if (
      layer.diffId !== undefined && streamed.diffId !== undefined &&
      streamed.diffId !== layer.diffId
    ) {
      throw new PusherError(
        "verify",
        `layer ${layer.entry} has diff_id ${streamed.diffId} but the config says ${layer.diffId}`,
        { hint: "the archive is corrupt; nothing was tagged" },
      );
    }
    layers.set(layer.entry, streamed);
  }
  return { selection, layers };
}
