/**
 * A pass-through stream that reports how many bytes went through it, at most every
 * `intervalMs` (and always at the end).
 *
 * @module
 */

import { countingStream } from "../bytes/count.ts";

/** Counts bytes passing through and reports them, throttled. */
export function progressStream(
  report: (bytes: number) => void,
  intervalMs = 200,
  clock: () => number = Date.now,
): TransformStream<Uint8Array, Uint8Array> {
  let last = 0;
  const throttled = (bytes: number): void => {
    const now = clock();
    if (now - last >= intervalMs) {
      last = now;
      report(bytes);
    }
  };
  return countingStream(throttled, report);
}

/** A stream of one in-memory byte array. */
export function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller): void {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}
