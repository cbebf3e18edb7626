/**
 * Compression of archives and layers: which one a file or stream uses (by magic bytes, refusing
 * what cannot be read) and decompressing web streams built on `node:zlib` (gzip, including
 * multi-member files, and zstd of any number of frames, see {@link ./zstd_frames.ts}).
 *
 * @module
 */

import { createGunzip, createZstdDecompress } from "node:zlib";
import type { Transform } from "node:stream";
import { sniffCompression } from "../bytes/compression_sniff.ts";
import { PusherError } from "../errors.ts";
import type { Compression } from "../oci/media_types.ts";
import { decompressZstdFrames } from "./zstd_frames.ts";

/** Options of the decompressors: large output buffers keep per-chunk overhead low. */
const NODE_OPTIONS = { chunkSize: 256 * 1024 };

/**
 * The compression of an archive whose first bytes (at least `SNIFF_LENGTH` of them) are `head`. Throws an input error naming `source` when the bytes show a compression this tool
 * cannot read (bzip2, xz, lz4).
 */
export function archiveCompression(head: Uint8Array, source: string): Compression {
  const sniffed = sniffCompression(head);
  if (sniffed === "bzip2" || sniffed === "xz" || sniffed === "lz4") {
    throw new PusherError(
      "input",
      `${source} is ${sniffed}-compressed, which is not supported`,
      {
        hint: "decompress it first, or recompress it with gzip or zstd",
      },
    );
  }
  return sniffed;
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
  if (compression === "zstd") {
    return decompressZstdFrames(
      stream,
      source,
      (frame) => decodeWith(frame, trackZstd(createZstdDecompress(NODE_OPTIONS)), "zstd", source),
    );
  }
  return decodeWith(stream, createGunzip(NODE_OPTIONS), "gzip", source);
}

/** Runs `stream` through a `node:zlib` decoder, naming `source` in an error. */
function decodeWith(
  stream: ReadableStream<Uint8Array>,
  transform: Transform,
  compression: Compression,
  source: string,
): ReadableStream<Uint8Array> {
  return nodeTransformStream(
    stream,
    transform,
    (error) =>
      new PusherError("input", `${source}: corrupt ${compression} data (${error.message})`, {
        cause: error,
        hint: "the compressed data is damaged or cut short; re-create it",
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
