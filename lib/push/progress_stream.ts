/**
 * A pass-through stream that reports how many bytes went through it, at most every
 * `intervalMs` (and always at the end).
 *
 * @module
 */

/** Counts bytes passing through and reports them, throttled. */
export function progressStream(
  report: (bytes: number) => void,
  intervalMs = 200,
  clock: () => number = Date.now,
): TransformStream<Uint8Array, Uint8Array> {
  let bytes = 0;
  let last = 0;
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller): void {
      bytes += chunk.byteLength;
      const now = clock();
      if (now - last >= intervalMs) {
        last = now;
        report(bytes);
      }
      controller.enqueue(chunk);
    },
    flush(): void {
      report(bytes);
    },
  });
}

/** Re-chunks a stream into pieces of exactly `size` bytes (the last may be shorter). */
export async function* fixedChunks(
  stream: ReadableStream<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(size);
  let filled = 0;
  for await (const chunk of stream) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const take = Math.min(size - filled, chunk.byteLength - offset);
      buffer.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === size) {
        yield buffer;
        buffer = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
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
