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

import { PusherError } from "../errors.ts";
import { decompressStream } from "../image/compression.ts";
import type { Compression } from "../image/types.ts";
import { type CompressionPool, CompressStream, resolveLevel } from "./compress.ts";
import { DigestStream, type DigestStreamOptions, verifyDigest } from "./digest.ts";
import { releasingSink } from "./owned_chunk.ts";
import { decompressZstdFrames } from "./zstd_frames.ts";

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

/** What a layer's blob turned out to be once all of its bytes went through. */
export interface LayerResult {
  /** Digest of the bytes to upload (`sha256:<hex>`). */
  digest: string;
  /** Size of the bytes to upload. */
  size: number;
  /** Digest of the uncompressed tar, known when the layer was stored uncompressed or re-encoded. */
  diffId?: string;
  /** Compression of the bytes to upload. */
  compression: Compression;
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

/** Magic bytes of the formats recognised by {@link detectCompression}. */
const MAGIC: ReadonlyArray<readonly [string, readonly number[]]> = [
  ["gzip", [0x1f, 0x8b]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["bzip2", [0x42, 0x5a, 0x68]],
];

/** Bytes {@link detectCompression} needs to tell the formats apart. */
export const SNIFF_LENGTH = 6;

/**
 * Names the compression of a blob from its first bytes (at least {@link SNIFF_LENGTH} of them, or
 * all when shorter): `gzip`, `zstd`, `xz`, `bzip2`, or `none` for anything else (a tar).
 */
export function detectCompression(head: Uint8Array): Compression | "xz" | "bzip2" {
  for (const [name, magic] of MAGIC) {
    if (magic.length <= head.length && magic.every((byte, index) => head[index] === byte)) {
      return name as Compression | "xz" | "bzip2";
    }
  }
  return "none";
}

/** The first bytes of a stream and a stream that yields all of its bytes again. */
interface Sniffed {
  head: Uint8Array;
  stream: ReadableStream<Uint8Array>;
}

/** Reads at least {@link SNIFF_LENGTH} bytes (fewer at the end) and returns a replaying stream. */
async function sniff(input: ReadableStream<Uint8Array>): Promise<Sniffed> {
  const reader = input.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length < SNIFF_LENGTH) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.byteLength;
  }
  const head = chunks.length === 1 ? chunks[0] as Uint8Array : new Uint8Array(length);
  if (chunks.length > 1) {
    let offset = 0;
    for (const chunk of chunks) {
      head.set(chunk, offset);
      offset += chunk.byteLength;
    }
  }
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      const chunk = chunks.shift();
      if (chunk !== undefined) {
        controller.enqueue(chunk);
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason): Promise<void> {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { head, stream };
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
  const tar = compression === "zstd"
    ? decompressZstdFrames(hashed, what)
    : decompressStream(hashed, compression, what);
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
 * {@link LayerTransform.result} with a verify {@link PusherError}. xz and bzip2 layers are
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
      const { head, stream } = await sniff(input);
      const stored = detectCompression(head);
      if (stored === "xz" || stored === "bzip2") {
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

/**
 * Computes what {@link transformLayer} would upload without uploading: runs the chain and discards
 * the bytes. Compression is deterministic, so a later {@link transformLayer} with the same options
 * yields the same digest.
 */
export async function measureLayer(
  input: ReadableStream<Uint8Array>,
  options: LayerTransformOptions,
): Promise<LayerResult> {
  const { stream, result } = transformLayer(input, options);
  await stream.pipeTo(releasingSink());
  return await result;
}
