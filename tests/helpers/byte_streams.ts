/**
 * Byte-stream helpers for tests: feed bytes in chunks of a chosen size, and collect a stream.
 *
 * @module
 */

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
