import assert from "node:assert/strict";
import { sha256Digest } from "../../lib/bytes/sha256.ts";
import type { BlobSink } from "../../lib/pull/blob_fetch.ts";
import { WriteBatch } from "../../lib/pull/write_batch.ts";
import type { Clock } from "../../lib/transfer/stall.ts";

/** A sink keeping every append's bytes (copied: the batch reuses its buffer). */
class RecordingSink implements BlobSink {
  readonly appends: Uint8Array[] = [];
  /** When set, the next append fails with it. */
  failure: Error | undefined;

  get size(): number {
    return this.appends.reduce((sum, bytes) => sum + bytes.byteLength, 0);
  }

  append(chunk: Uint8Array): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    this.appends.push(chunk.slice());
    return Promise.resolve();
  }

  restart(): Promise<void> {
    this.appends.length = 0;
    return Promise.resolve();
  }

  digest(): string {
    return sha256Digest(this.bytes());
  }

  bytes(): Uint8Array {
    const all = new Uint8Array(this.size);
    let offset = 0;
    for (const bytes of this.appends) {
      all.set(bytes, offset);
      offset += bytes.byteLength;
    }
    return all;
  }
}

/** A clock whose timers run only when the test fires them. */
class ManualClock implements Clock {
  readonly timers = new Map<number, () => void>();
  #next = 0;

  now(): number {
    return 0;
  }

  setTimeout(callback: () => void): unknown {
    this.timers.set(++this.#next, callback);
    return this.#next;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  fire(): void {
    const callbacks = [...this.timers.values()];
    this.timers.clear();
    for (const callback of callbacks) callback();
  }
}

function bytesOf(size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) % 251);
}

function joined(chunks: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(chunks.flatMap((chunk) => [...chunk]));
}

Deno.test("small chunks reach the sink as full-buffer writes, in order; flush writes the rest", async () => {
  const sink = new RecordingSink();
  const clock = new ManualClock();
  const written: number[] = [];
  const batch = new WriteBatch(sink, {
    capacity: 1000,
    clock,
    onWritten: (size) => written.push(size),
  });
  const chunks = Array.from({ length: 37 }, (_, i) => bytesOf(100, i));
  for (const chunk of chunks) await batch.add(chunk);
  assert.deepEqual(sink.appends.map((bytes) => bytes.byteLength), [1000, 1000, 1000]);
  assert.equal(batch.pending, 700);
  await batch.flush();
  batch.close();
  assert.deepEqual(sink.appends.map((bytes) => bytes.byteLength), [1000, 1000, 1000, 700]);
  assert.deepEqual(written, [1000, 2000, 3000, 3700]);
  assert.deepEqual(sink.bytes(), joined(chunks));
  assert.equal(clock.timers.size, 0);
});

Deno.test("a chunk larger than the buffer is split across full writes", async () => {
  const sink = new RecordingSink();
  const batch = new WriteBatch(sink, { capacity: 1000, clock: new ManualClock(), onWritten() {} });
  const first = bytesOf(300, 1);
  const big = bytesOf(2500, 2);
  await batch.add(first);
  await batch.add(big);
  await batch.flush();
  batch.close();
  assert.deepEqual(sink.appends.map((bytes) => bytes.byteLength), [1000, 1000, 800]);
  assert.deepEqual(sink.bytes(), joined([first, big]));
});

Deno.test("bytes that wait past maxWaitMs are written by the timer, and their size told", async () => {
  const sink = new RecordingSink();
  const clock = new ManualClock();
  const written: number[] = [];
  const batch = new WriteBatch(sink, {
    capacity: 1000,
    maxWaitMs: 100,
    clock,
    onWritten: (size) => written.push(size),
  });
  await batch.add(bytesOf(250, 3));
  assert.equal(clock.timers.size, 1, "the wait is timed once bytes are held");
  assert.equal(sink.appends.length, 0, "nothing is written before the wait");
  clock.fire();
  await batch.flush();
  assert.deepEqual(sink.appends.map((bytes) => bytes.byteLength), [250]);
  assert.deepEqual(written, [250]);
  await batch.add(bytesOf(10, 4));
  batch.close();
  assert.equal(clock.timers.size, 0, "close stops the timer");
  assert.equal(batch.pending, 10, "close leaves the held bytes for flush");
});

Deno.test("a write the timer started that failed is thrown by the next add", async () => {
  const sink = new RecordingSink();
  const clock = new ManualClock();
  const batch = new WriteBatch(sink, { capacity: 1000, clock, onWritten() {} });
  await batch.add(bytesOf(100, 5));
  sink.failure = new Error("disk full");
  clock.fire();
  await assert.rejects(batch.add(bytesOf(100, 6)), /disk full/);
  await assert.rejects(batch.flush(), /disk full/);
  batch.close();
  assert.equal(sink.size, 0);
});
