/**
 * Gathers a download's chunks into large writes. A registry's answer arrives in chunks of
 * 16–64 KiB; one file write (and one hash update) per chunk cost a pull most of its CPU time, as
 * each write is a round trip to the runtime's blocking threads. A {@link WriteBatch} copies the
 * chunks into one buffer and hands it to the {@link BlobSink} when it is full, when a byte has
 * waited in it for {@link WriteBatchOptions.maxWaitMs} (so a slow or stalled body still gets its
 * bytes on disk and its progress told), and at the end. Only written bytes count: the sink's
 * size, and so a resume after a kill, never includes what the buffer held.
 *
 * @module
 */

import type { BlobSink } from "./blob_fetch.ts";
import { type Clock, systemClock } from "../transfer/stall.ts";

/** Bytes gathered before a write. */
export const WRITE_BATCH_BYTES = 1024 * 1024;
/** The longest a byte waits in the buffer before it is written, in milliseconds. */
export const WRITE_BATCH_MAX_WAIT_MS = 100;

/** Options of a {@link WriteBatch}. */
export interface WriteBatchOptions {
  /** Told the sink's size after each write. */
  onWritten: (size: number) => void;
  /** Buffer size in bytes (default {@link WRITE_BATCH_BYTES}). */
  capacity?: number;
  /** The longest a byte waits before it is written (default {@link WRITE_BATCH_MAX_WAIT_MS}). */
  maxWaitMs?: number;
  /** Time source of the wait, for tests. */
  clock?: Clock;
}

/** A buffer in front of a {@link BlobSink} that turns many small appends into few large ones. */
export class WriteBatch {
  readonly #sink: BlobSink;
  readonly #buffer: Uint8Array;
  readonly #maxWaitMs: number;
  readonly #clock: Clock;
  readonly #onWritten: (size: number) => void;
  #used = 0;
  /** The write under way, if any; the buffer is not touched until it settles. */
  #writing: Promise<void> | undefined;
  /** A write started by the timer that failed: thrown by the next {@link add} or {@link flush}. */
  #failure: { error: unknown } | undefined;
  #timer: unknown;
  #closed = false;

  /** A batch writing into `sink`. */
  constructor(sink: BlobSink, options: WriteBatchOptions) {
    this.#sink = sink;
    this.#buffer = new Uint8Array(options.capacity ?? WRITE_BATCH_BYTES);
    this.#maxWaitMs = options.maxWaitMs ?? WRITE_BATCH_MAX_WAIT_MS;
    this.#clock = options.clock ?? systemClock;
    this.#onWritten = options.onWritten;
  }

  /** Bytes received but not yet written (in the buffer). */
  get pending(): number {
    return this.#used;
  }

  /**
   * Copies `chunk` into the buffer, writing the buffer out each time it fills. The chunk may be
   * reused once this settles.
   *
   * @throws the sink's error when a write failed (also one the timer started).
   */
  async add(chunk: Uint8Array): Promise<void> {
    let from = 0;
    while (from < chunk.byteLength) {
      if (this.#writing !== undefined) await this.#writing;
      this.#throwFailure();
      const count = Math.min(chunk.byteLength - from, this.#buffer.byteLength - this.#used);
      this.#buffer.set(
        count === chunk.byteLength ? chunk : chunk.subarray(from, from + count),
        this.#used,
      );
      this.#used += count;
      from += count;
      if (this.#used === this.#buffer.byteLength) await this.#write();
    }
    if (this.#used > 0 && this.#timer === undefined && !this.#closed) {
      this.#timer = this.#clock.setTimeout(() => this.#onTimer(), this.#maxWaitMs);
    }
  }

  /**
   * Writes every byte still in the buffer (after the write under way).
   *
   * @throws the sink's error when a write failed.
   */
  async flush(): Promise<void> {
    if (this.#writing !== undefined) await this.#writing;
    this.#throwFailure();
    if (this.#used > 0) await this.#write();
  }

  /** Stops the timer; bytes still in the buffer stay there until {@link flush}. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Writes the buffer's bytes to the sink; the buffer is free again once this settles. */
  #write(): Promise<void> {
    const bytes = this.#buffer.subarray(0, this.#used);
    const writing = this.#sink.append(bytes).then(() => {
      this.#used = 0;
      this.#onWritten(this.#sink.size);
    }).finally(() => {
      this.#writing = undefined;
    });
    this.#writing = writing;
    return writing;
  }

  /** A byte waited long enough: write what is there, unless a write is under way already. */
  #onTimer(): void {
    this.#timer = undefined;
    if (this.#closed || this.#used === 0 || this.#writing !== undefined) return;
    this.#write().catch((error: unknown) => {
      this.#failure = { error };
    });
  }

  #throwFailure(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }
}
