/**
 * Looking at the first bytes of a stream without losing them: read a few, hand them back together
 * with a stream that still yields every byte from the start.
 *
 * @module
 */

/** Joins byte chunks whose lengths add up to `total`; a single chunk is returned as it is. */
export function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

/** The first bytes of a stream, and a stream of all of its bytes again. */
export interface PeekedStream {
  /** The first `length` bytes (fewer when the stream is shorter). */
  head: Uint8Array;
  /** Every byte of the original stream, from the start; cancelling it cancels the original. */
  stream: ReadableStream<Uint8Array>;
}

/**
 * Reads the first `length` bytes of a stream (fewer if it is shorter) and returns them with a
 * stream that still yields every byte from the start. The chunks read ahead are passed on as the
 * same objects, so an owned chunk stays owned; only the head may be a copy.
 */
export async function peekStream(
  stream: ReadableStream<Uint8Array>,
  length: number,
): Promise<PeekedStream> {
  const reader = stream.getReader();
  const readAhead: Uint8Array[] = [];
  let total = 0;
  let done = false;
  while (total < length) {
    const result = await reader.read();
    if (result.done) {
      done = true;
      break;
    }
    readAhead.push(result.value);
    total += result.value.length;
  }
  const first = readAhead[0];
  const head = first !== undefined && first.length >= length
    ? first.subarray(0, length)
    : concatBytes(readAhead, total).subarray(0, length);
  const rest = new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      const next = readAhead.shift();
      if (next !== undefined) {
        controller.enqueue(next);
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
  return { head, stream: rest };
}
