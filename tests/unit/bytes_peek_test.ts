import assert from "node:assert/strict";
import { concatBytes, peekStream } from "../../lib/bytes/peek.ts";
import { isOwned, markOwned } from "../../lib/bytes/owned_chunk.ts";
import { chunkedStream, collectBytes } from "../helpers/byte_streams.ts";

const sample = new TextEncoder().encode("layer bytes, ".repeat(50_000));

Deno.test("peek: the head is gathered from several chunks and every byte is handed back", async () => {
  const { head, stream } = await peekStream(chunkedStream(sample, 3), 6);
  assert.deepEqual(head, sample.subarray(0, 6));
  assert.deepEqual(await collectBytes(stream), sample);
});

Deno.test("peek: a stream shorter than the head, and an empty one", async () => {
  const short = await peekStream(chunkedStream(new Uint8Array([1, 2]), 1000), 6);
  assert.deepEqual(short.head, new Uint8Array([1, 2]));
  assert.deepEqual(await collectBytes(short.stream), new Uint8Array([1, 2]));
  const empty = await peekStream(ReadableStream.from<Uint8Array>([]), 6);
  assert.equal(empty.head.length, 0);
  assert.equal((await collectBytes(empty.stream)).length, 0);
});

Deno.test("peek: chunks read ahead are passed on as the same objects, owned ones still owned", async () => {
  const chunks = [markOwned(new Uint8Array([1, 2])), markOwned(new Uint8Array(100).fill(7))];
  const { head, stream } = await peekStream(ReadableStream.from(chunks), 6);
  assert.deepEqual(head, Uint8Array.of(1, 2, 7, 7, 7, 7));
  const seen: Uint8Array[] = [];
  await stream.pipeTo(new WritableStream({ write: (chunk) => void seen.push(chunk) }));
  assert.equal(seen.length, 2);
  assert.ok(seen.every((chunk, index) => chunk === chunks[index] && isOwned(chunk)));
});

Deno.test("peek: cancelling the returned stream cancels the source", async () => {
  let cancelled: unknown;
  const source = new ReadableStream<Uint8Array>({
    pull: (controller) => controller.enqueue(new Uint8Array(8)),
    cancel: (reason) => void (cancelled = reason),
  });
  const { stream } = await peekStream(source, 6);
  await stream.cancel("not needed");
  assert.equal(cancelled, "not needed");
});

Deno.test("concatBytes: joins chunks; a single chunk is returned as it is", () => {
  const one = Uint8Array.of(1, 2, 3);
  assert.equal(concatBytes([one], 3), one);
  assert.deepEqual(
    concatBytes([one, Uint8Array.of(4), new Uint8Array(0)], 4),
    Uint8Array.of(1, 2, 3, 4),
  );
  assert.deepEqual(concatBytes([], 0), new Uint8Array(0));
});
