/**
 * Compression of whole archives: detection by magic bytes and decompressing web streams built on
 * `node:zlib` (gzip, including multi-member files, and zstd).
 *
 * @module
 */

import { createGunzip, createZstdDecompress } from "node:zlib";
import type { Transform } from "node:stream";
import { PusherError } from "../errors.ts";
import type { Compression } from "./types.ts";

/** Bytes of a stream's start needed to tell its compression. */
export const MAGIC_LENGTH = 6;

/** Output buffer size of the decompressors: large buffers keep per-chunk overhead low. */
const OUTPUT_CHUNK_SIZE = 256 * 1024;

function startsWith(head: Uint8Array, magic: readonly number[]): boolean {
  return magic.every((byte, i) => head[i] === byte);
}

/** The compression a stream's first bytes announce; `"none"` when no known magic is present. */
export function detectCompression(head: Uint8Array): Compression {
  if (startsWith(head, [0x1f, 0x8b])) return "gzip";
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return "zstd";
  // A zstd skippable frame (pzstd and seekable zstd start with one).
  const first = head[0] ?? 0;
  if ((first & 0xf0) === 0x50 && startsWith(head.subarray(1), [0x2a, 0x4d, 0x18])) return "zstd";
  return "none";
}

function unsupportedCompression(head: Uint8Array): string | undefined {
  if (startsWith(head, [0x42, 0x5a, 0x68])) return "bzip2";
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return "xz";
  if (startsWith(head, [0x04, 0x22, 0x4d, 0x18])) return "lz4";
  return undefined;
}

/**
 * Like {@link detectCompression}, but throws an input error naming `source` when the bytes show a
 * compression this tool cannot read (bzip2, xz, lz4).
 */
export function sniffCompression(head: Uint8Array, source: string): Compression {
  const unsupported = unsupportedCompression(head);
  if (unsupported !== undefined) {
    throw new PusherError(
      "input",
      `${source} is ${unsupported}-compressed, which is not supported`,
      {
        hint: "decompress it first, or recompress it with gzip or zstd",
      },
    );
  }
  return detectCompression(head);
}

/**
 * Reads the first `length` bytes of a stream (fewer if it is shorter) and returns them with a
 * stream that still yields every byte from the start.
 */
export async function peekStream(
  stream: ReadableStream<Uint8Array>,
  length: number,
): Promise<{ head: Uint8Array; stream: ReadableStream<Uint8Array> }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let done = false;
  while (total < length) {
    const result = await reader.read();
    if (result.done) {
      done = true;
      break;
    }
    chunks.push(result.value);
    total += result.value.length;
  }
  const buffered = concatBytes(chunks, total);
  let pending: Uint8Array | undefined = buffered.length > 0 ? buffered : undefined;
  const rest = new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      if (pending !== undefined) {
        controller.enqueue(pending);
        pending = undefined;
        return;
      }
      if (done) {
        controller.close();
        return;
      }
      const result = await reader.read();
      if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    cancel(reason): Promise<void> {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { head: buffered.subarray(0, Math.min(length, buffered.length)), stream: rest };
}

/** Joins byte chunks whose lengths add up to `total`. */
export function concatBytes(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

/** zstd decoders running now; see {@link onStrayZstdError}. */
const activeZstd = new Set<Transform>();

/**
 * Deno 2.9's `node:zlib` zstd decoder throws a corrupt-data error from a `process.nextTick`
 * callback, instead of emitting `error`, when it meets bad data while continuing a write whose
 * output filled its buffer: an uncaught exception that would end the process. While zstd
 * decoders run, this global listener takes that exception and fails them with it.
 */
function onStrayZstdError(event: ErrorEvent): void {
  const error: unknown = event.error;
  if (!(error instanceof Error) || !error.message.startsWith("Zstd decompress error")) return;
  event.preventDefault();
  for (const transform of activeZstd) transform.destroy(error);
}

/** Watches a zstd decoder for {@link onStrayZstdError} until it closes. */
function trackZstd(transform: Transform): Transform {
  if (activeZstd.size === 0) globalThis.addEventListener("error", onStrayZstdError);
  activeZstd.add(transform);
  transform.once("close", () => {
    activeZstd.delete(transform);
    if (activeZstd.size === 0) globalThis.removeEventListener("error", onStrayZstdError);
  });
  return transform;
}

/**
 * Decompresses a stream (`"none"` returns it unchanged). Corrupt or cut-short data fails the
 * returned stream with an input error naming `source`.
 */
export function decompressStream(
  stream: ReadableStream<Uint8Array>,
  compression: Compression,
  source: string,
): ReadableStream<Uint8Array> {
  if (compression === "none") return stream;
  const transform = compression === "gzip"
    ? createGunzip({ chunkSize: OUTPUT_CHUNK_SIZE })
    : trackZstd(createZstdDecompress({ chunkSize: OUTPUT_CHUNK_SIZE }));
  return nodeTransformStream(
    stream,
    transform,
    (error) =>
      new PusherError("input", `${source}: corrupt ${compression} data (${error.message})`, {
        cause: error,
        hint: "the compressed archive is damaged or cut short; re-create it",
      }),
  );
}

/** Runs a web stream through a node Transform with backpressure on both sides. */
function nodeTransformStream(
  input: ReadableStream<Uint8Array>,
  transform: Transform,
  wrapError: (error: Error) => PusherError,
): ReadableStream<Uint8Array> {
  const reader = input.getReader();
  let failed = false;
  const waitForDrain = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        transform.off("drain", done);
        transform.off("close", done);
        resolve();
      };
      transform.on("drain", done);
      transform.on("close", done);
    });
  const pump = async (): Promise<void> => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (failed || transform.destroyed) return;
        if (done) {
          transform.end();
          return;
        }
        if (!transform.write(value)) await waitForDrain();
      }
    } catch (error) {
      transform.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  };
  return new ReadableStream<Uint8Array>({
    start(controller): void {
      transform.on("data", (chunk: Uint8Array) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) transform.pause();
      });
      transform.on("end", () => controller.close());
      transform.on("error", (error: Error) => {
        failed = true;
        controller.error(error instanceof PusherError ? error : wrapError(error));
        reader.cancel(error).catch(() => {});
      });
      transform.pause();
      pump();
    },
    pull(): void {
      transform.resume();
    },
    cancel(reason): void {
      failed = true;
      transform.destroy();
      reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 4 });
}
