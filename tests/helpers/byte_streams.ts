/**
 * Byte-stream helpers for tests: feed bytes in chunks of a chosen size, collect a stream, and
 * build a zstd stream that opens with a skippable frame.
 *
 * @module
 */

import { zstdCompressSync } from "node:zlib";
import { concat } from "./fixtures.ts";

/** A stream of `bytes` in chunks of `chunkSize` bytes (copies, so consumers may keep them). */
export function chunkedStream(bytes: Uint8Array, chunkSize: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller): void {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

/** Reads a stream to its end and returns all its bytes. */
export async function collectBytes(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return concat(chunks);
}

/**
 * `bytes` compressed with zstd behind a zstd skippable frame (magic 0x184D2A50, a 32-bit
 * little-endian length, then that many bytes the decoder skips), as pzstd and seekable zstd write
 * them: a valid zstd stream that does not start with the zstd frame magic.
 */
export function zstdWithSkippableFrame(bytes: Uint8Array): Uint8Array {
  const payload = new TextEncoder().encode("skippable frame payload");
  const frame = new Uint8Array(8 + payload.length);
  frame.set([0x50, 0x2a, 0x4d, 0x18]);
  new DataView(frame.buffer).setUint32(4, payload.length, true);
  frame.set(payload, 8);
  return concat([frame, new Uint8Array(zstdCompressSync(bytes))]);
}
