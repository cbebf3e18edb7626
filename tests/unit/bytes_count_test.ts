import assert from "node:assert/strict";
import { countingStream } from "../../lib/bytes/count.ts";

Deno.test("counting stream: running totals after each chunk, the final total at the end", async () => {
  const totals: number[] = [];
  const ends: number[] = [];
  const chunks = [new Uint8Array(3), new Uint8Array(0), new Uint8Array(10)];
  const out: Uint8Array[] = [];
  await ReadableStream.from(chunks)
    .pipeThrough(countingStream((total) => totals.push(total), (total) => ends.push(total)))
    .pipeTo(new WritableStream({ write: (chunk) => void out.push(chunk) }));
  assert.deepEqual(totals, [3, 3, 13]);
  assert.deepEqual(ends, [13]);
  assert.equal(out.length, chunks.length);
  assert.ok(
    out.every((chunk, index) => chunk === chunks[index]),
    "chunks are forwarded, not copied",
  );
});

Deno.test("counting stream: an empty input reports a total of zero at the end only", async () => {
  const totals: number[] = [];
  const ends: number[] = [];
  await ReadableStream.from<Uint8Array>([])
    .pipeThrough(countingStream((total) => totals.push(total), (total) => ends.push(total)))
    .pipeTo(new WritableStream());
  assert.deepEqual(totals, []);
  assert.deepEqual(ends, [0]);
});
