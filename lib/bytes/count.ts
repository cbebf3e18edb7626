/**
 * Counting the bytes that flow through a stream without touching them: each chunk is forwarded
 * as the same object.
 *
 * @module
 */

/**
 * A pass-through stream that tells `onChunk` the running byte total after each chunk (before
 * forwarding it) and `onEnd` the final total once the input ends.
 */
export function countingStream(
  onChunk: (total: number) => void,
  onEnd?: (total: number) => void,
): TransformStream<Uint8Array, Uint8Array> {
  let total = 0;
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller): void {
      total += chunk.byteLength;
      onChunk(total);
      controller.enqueue(chunk);
    },
    flush(): void {
      onEnd?.(total);
    },
  });
}
