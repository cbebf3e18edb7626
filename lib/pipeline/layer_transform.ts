/**
 * The per-layer byte chain between an archive and an upload: sniff the stored bytes, then either
 * pass compressed bytes through as they are (hashing them) or hash uncompressed tar bytes as the
 * diff_id, compress them as asked and hash the output as the blob digest. With `reencode`, a
 * layer compressed otherwise than the target is decompressed first (zstd to gzip, for Docker
 * media types, which have no zstd layer type). One pass, no copies of the stored bytes beyond the
 * compressor's block buffer; a digest mismatch errors the output stream so an upload reading it
 * fails.
 *
 * @module
 */

import { SNIFF_LENGTH, sniffCompression } from "../bytes/compression_sniff.ts";
import { peekStream } from "../bytes/peek.ts";
import { PusherError } from "../errors.ts";
import { decompressStream } from "../image/compression.ts";
import type { BlobRef } from "../oci/descriptor.ts";
import type { Compression } from "../oci/media_types.ts";
import { type CompressionPool, CompressStream, resolveLevel } from "./compress.ts";
import { DigestStream, type DigestStreamOptions, verifyDigest } from "./digest.ts";

/** Options of {@link transformLayer}. */
export interface LayerTransformOptions {
  /** The compression to give an uncompressed layer; compressed layers pass through as they are. */
  target: Compression;
  /** Compression level for `target`; defaults to the format's default. */
  level?: number;
  /**
   * Decompress a layer compressed otherwise than `target` and compress it to `target` (when
   * `target` is not `none`); without it, compressed layers always pass through as they are.
   */
  reencode?: boolean;
  /** Digest the stored bytes must have (OCI blob name, skopeo `<digest>.tar`). */
  expectedStoredDigest?: string;
  /** Uncompressed digest from the config's `rootfs.diff_ids`; checked when the layer is stored uncompressed. */
  expectedDiffId?: string;
  /** Names the layer in error messages, e.g. its archive entry; defaults to `layer`. */
  label?: string;
  /** Worker pool for compression; defaults to the shared pool. */
  pool?: CompressionPool;
  /** Compression block size; defaults to the compressor's default. */
  blockSize?: number;
}

/** What a layer's blob turned out to be once all of its bytes went through: the bytes to upload. */
export interface LayerResult extends BlobRef {
  /** Digest of the uncompressed tar, known when the layer was stored uncompressed. */
  diffId?: string;
}

/** The output of {@link transformLayer}. */
export interface LayerTransform {
  /**
   * The bytes to upload. It errors with a verify {@link PusherError} when a digest does not match;
   * cancel it when the bytes are not needed after all.
   */
  stream: ReadableStream<Uint8Array>;
  /** Settles once the last byte was read from {@link stream}: the blob's identity, or the error. */
  result: Promise<LayerResult>;
}

/** The compressor for `options.target` (which is not `none`). */
function compressor(options: LayerTransformOptions): CompressStream {
  return new CompressStream(options.target as Exclude<Compression, "none">, {
    ...(options.level === undefined ? {} : { level: options.level }),
    ...(options.pool === undefined ? {} : { pool: options.pool }),
    ...(options.blockSize === undefined ? {} : { blockSize: options.blockSize }),
  });
}

/**
 * The chain of a compressed layer that changes compression: stored bytes (hashed) → decompress →
 * tar (hashed as the diff_id and checked) → compress → blob digest.
 */
function reencoded(
  hashed: ReadableStream<Uint8Array>,
  stored: Promise<{ digest: string; size: number }>,
  compression: Exclude<Compression, "none">,
  options: LayerTransformOptions,
): { stream: ReadableStream<Uint8Array>; result: Promise<LayerResult> } {
  const what = options.label ?? "layer";
  const tar = decompressStream(hashed, compression, what);
  const tarDigest = new DigestStream({
    check: ({ digest }) => {
      if (options.expectedDiffId !== undefined) {
        verifyDigest(`${what} (uncompressed)`, options.expectedDiffId, digest);
      }
    },
  });
  const blobDigest = new DigestStream();
  const stream = tar.pipeThrough(tarDigest).pipeThrough(compressor(options)).pipeThrough(
    blobDigest,
  );
  const result = Promise.all([stored, tarDigest.result, blobDigest.result]).then((
    [, diff, blob],
  ): LayerResult => ({
    digest: blob.digest,
    size: blob.size,
    diffId: diff.digest,
    compression: options.target,
  }));
  result.catch(() => {});
  return { stream, result };
}

/** Builds the chain for one layer once its stored compression is known. */
function chain(
  input: ReadableStream<Uint8Array>,
  stored: Compression,
  options: LayerTransformOptions,
): { stream: ReadableStream<Uint8Array>; result: Promise<LayerResult> } {
  const what = options.label ?? "layer";
  const checkStored: DigestStreamOptions = {
    check: ({ digest }) => {
      if (options.expectedStoredDigest !== undefined) {
        verifyDigest(what, options.expectedStoredDigest, digest);
      }
      if (stored === "none" && options.expectedDiffId !== undefined) {
        verifyDigest(`${what} (uncompressed)`, options.expectedDiffId, digest);
      }
    },
  };
  const storedDigest = new DigestStream(checkStored);
  const hashed = input.pipeThrough(storedDigest);
  const reencode = options.reencode === true && stored !== "none" && options.target !== "none" &&
    stored !== options.target;
  if (reencode) return reencoded(hashed, storedDigest.result, stored, options);
  if (stored !== "none" || options.target === "none") {
    const result = storedDigest.result.then(({ digest, size }): LayerResult =>
      stored === "none"
        ? { digest, size, diffId: digest, compression: "none" }
        : { digest, size, compression: stored }
    );
    // Marked handled here; the caller sees the same failure through the stream.
    result.catch(() => {});
    return { stream: hashed, result };
  }
  const blobDigest = new DigestStream();
  const stream = hashed.pipeThrough(compressor(options)).pipeThrough(blobDigest);
  const result = Promise.all([storedDigest.result, blobDigest.result]).then((
    [tar, blob],
  ): LayerResult => ({
    digest: blob.digest,
    size: blob.size,
    diffId: tar.digest,
    compression: options.target,
  }));
  result.catch(() => {});
  return { stream, result };
}

/** Throws an input error when a digest the caller expects uses an algorithm other than sha256. */
function requireSha256(what: string, digest: string | undefined): void {
  if (digest === undefined || digest.startsWith("sha256:")) return;
  throw new PusherError("input", `${what}: digest ${digest} does not use sha256`, {
    hint: "only sha256 digests are supported",
  });
}

/**
 * Turns a layer's stored bytes into the bytes to upload: compressed input (gzip, zstd) passes
 * through unchanged, uncompressed input is compressed to `options.target`. Every digest given in
 * `options` is checked; a mismatch errors {@link LayerTransform.stream} and rejects
 * {@link LayerTransform.result} with a verify {@link PusherError}. xz, bzip2 and lz4 layers are
 * refused with an input error. Throws a usage error at once for a bad compression level.
 */
export function transformLayer(
  input: ReadableStream<Uint8Array>,
  options: LayerTransformOptions,
): LayerTransform {
  const what = options.label ?? "layer";
  requireSha256(what, options.expectedStoredDigest);
  requireSha256(what, options.expectedDiffId);
  if (options.target !== "none") resolveLevel(options.target, options.level);
  const output = new TransformStream<Uint8Array, Uint8Array>();
  const result = (async (): Promise<LayerResult> => {
    try {
      const { head, stream } = await peekStream(input, SNIFF_LENGTH);
      const stored = sniffCompression(head);
      if (stored === "xz" || stored === "bzip2" || stored === "lz4") {
        await stream.cancel();
        throw new PusherError("input", `${what} is compressed with ${stored}`, {
          hint: "registries and runtimes accept layers stored as tar, gzip or zstd only",
        });
      }
      const built = chain(stream, stored, options);
      await built.stream.pipeTo(output.writable);
      return await built.result;
    } catch (error) {
      await output.writable.abort(error).catch(() => {});
      throw error;
    }
  })();
  // Marked handled here; the rejection still reaches whoever awaits `result`.
  result.catch(() => {});
  return { stream: output.readable, result };
}
