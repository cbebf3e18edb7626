/**
 * Turns an archive layer into what goes up: the stored bytes run through the layer transform
 * (verify, compress when uncompressed, digest) as a re-openable upload source.
 *
 * @module
 */

import type { ArchiveLayer } from "../image/types.ts";
import { type Compression, isTarLayerType } from "../oci/media_types.ts";
import type { CompressionPool } from "../pipeline/compress.ts";
import { type LayerResult, transformLayer } from "../pipeline/layer_transform.ts";
import { progressStream } from "./progress_stream.ts";
import type { UploadSource } from "./blob_upload.ts";

/** How uncompressed layers are compressed. */
export interface CompressionChoice {
  /** Target compression for uncompressed layers. */
  target: Compression;
  /** Level, or the pipeline's default. */
  level?: number;
  /** The run's own compression workers (absent when nothing is compressed). */
  pool?: CompressionPool;
}

/**
 * Whether this tool may compress a layer: an uncompressed tar layer. Artifact blobs (attestations,
 * in-toto statements) and already compressed layers go up byte for byte.
 */
export function isCompressible(layer: ArchiveLayer): boolean {
  return layer.compression === "none" &&
    (layer.mediaType === undefined || isTarLayerType(layer.mediaType));
}

/** An upload source for a layer plus the promise of what it became. */
export interface LayerUpload {
  /** The source to hand to the uploader. */
  source: UploadSource;
  /** Resolves with the last opened stream's result (digest, size, compression, diff_id). */
  pushed: () => Promise<LayerResult>;
}

/**
 * Builds an upload source for a layer read by `open`; `onRead` hears how many stored bytes were
 * read so far (the progress shown to the user).
 */
export function layerUpload(
  layer: ArchiveLayer,
  open: () => ReadableStream<Uint8Array>,
  choice: CompressionChoice,
  reopenable: boolean,
  onRead: (bytes: number) => void = () => {},
): LayerUpload {
  let last: Promise<LayerResult> | undefined;
  const source: UploadSource = {
    reopenable,
    open() {
      const compress = isCompressible(layer);
      const transformed = transformLayer(open().pipeThrough(progressStream(onRead)), {
        target: compress ? choice.target : "none",
        ...(compress && choice.level !== undefined ? { level: choice.level } : {}),
        ...(compress && choice.pool !== undefined ? { pool: choice.pool } : {}),
        ...(layer.storedDigest !== undefined ? { expectedStoredDigest: layer.storedDigest } : {}),
        ...(layer.diffId !== undefined ? { expectedDiffId: layer.diffId } : {}),
        label: layer.entry,
      });
      last = transformed.result;
      return { stream: transformed.stream, outcome: transformed.result };
    },
  };
  return {
    source,
    pushed: () => {
      if (!last) throw new Error(`layer ${layer.entry} was never opened`);
      return last;
    },
  };
}
