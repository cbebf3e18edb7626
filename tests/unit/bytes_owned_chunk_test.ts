import assert from "node:assert/strict";
import { isOwned, markOwned, releaseChunk, releasingSink } from "../../lib/bytes/owned_chunk.ts";

Deno.test("owned chunks: only whole-buffer chunks are marked; releasing frees them once", () => {
  const chunk = markOwned(new Uint8Array(1024));
  assert.equal(isOwned(chunk), true);
  const view = chunk.subarray(0, 10);
  assert.equal(isOwned(view), false, "a view made from an owned chunk is not owned");
  assert.equal(releaseChunk(view), false);
  assert.equal(chunk.byteLength, 1024, "releasing a view left the buffer alone");
  assert.equal(releaseChunk(chunk), true);
  assert.equal(chunk.byteLength, 0, "the buffer was detached");
  assert.equal(chunk.buffer.byteLength, 0);
  assert.equal(releaseChunk(chunk), false, "released once");
  const part = new Uint8Array(new ArrayBuffer(100), 10, 20);
  assert.equal(isOwned(markOwned(part)), false, "a chunk viewing part of its buffer is not marked");
  const plain = new Uint8Array(8);
  assert.equal(releaseChunk(plain), false);
  assert.equal(plain.byteLength, 8, "an unmarked chunk is never freed");
});

Deno.test("owned chunks: the releasing sink frees marked chunks and leaves others", async () => {
  const marked = markOwned(new Uint8Array(16));
  const plain = new Uint8Array(16);
  await ReadableStream.from([marked, plain]).pipeTo(releasingSink());
  assert.equal(marked.byteLength, 0);
  assert.equal(plain.byteLength, 16);
});
