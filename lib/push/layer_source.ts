/**
 * Turns an archive layer into what goes up: the stored bytes run through the layer transform
 * (verify, compress when uncompressed or re-encode when the target media types ask for it,
 * digest) as a re-openable upload source.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
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
  /**
   * Re-encode layers compressed otherwise than {@link target} (Docker media types know gzip
   * only); otherwise compressed layers go up as they are.
   */
  reencode?: boolean;
}

/**
 * Whether this tool changes a layer's bytes: an uncompressed tar layer (compressed as chosen),
 * or, with {@link CompressionChoice.reencode}, a tar layer compressed otherwise than the target.
 * Artifact blobs (attestations, in-toto statements) and other compressed layers go up byte for
 * byte.
 */
export function isCompressible(layer: ArchiveLayer, choice: CompressionChoice): boolean {
  if (layer.mediaType !== undefined && !isTarLayerType(layer.mediaType)) return false;
  if (layer.compression === "none") return true;
  return choice.reencode === true && choice.target !== "none" &&
    layer.compression !== choice.target;
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
      const compress = isCompressible(layer, choice);
      const transformed = transformLayer(open().pipeThrough(progressStream(onRead)), {
        target: compress ? choice.target : "none",
        ...(compress && choice.level !== undefined ? { level: choice.level } : {}),
        ...(compress && choice.pool !== undefined ? { pool: choice.pool } : {}),
        ...(compress && choice.reencode === true ? { reencode: true } : {}),
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
      if (!last) throw new PusherError("internal", `layer ${layer.entry} was never opened`);
      return last;
    },
  };
}
