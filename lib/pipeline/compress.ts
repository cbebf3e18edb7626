/**
 * Deterministic, multi-core gzip and zstd compression of a byte stream.
 *
 * The input is cut into fixed-size blocks (independent of how the source chunks it), each block
 * is compressed on its own in a pool of Workers, and the outputs are emitted in order:
 *
 * - gzip: one gzip member. Each block is raw deflate ended with a sync flush (the last one with
 *   `Z_FINISH`), as `pigz --independent` does; the header has mtime 0 and OS byte 3 (Unix) and the
 *   trailer carries the CRC-32 (computed here) and length of the whole input. Any gzip
 *   reader reads it. Blocks don't share a dictionary: Deno's `node:zlib` ignores `dictionary`;
 *   the cost in size is a fraction of a percent.
 * - zstd: one frame per block, each with a content checksum. Concatenated frames are valid zstd and Go, containerd and the zstd CLI read them all;
 *   Deno's own `node:zlib` zstd decoder stops after the first frame.
 *
 * The same input, format, level and block size give the same bytes on every run and machine
 * running the same Deno (its zlib and zstd builds fix the encoders' output).
 *
 * Memory: block buffers are counted against a budget shared by every stream of a pool
 * ({@link CompressionPoolOptions.bufferBudget}, twice the workers by default): a stream allocates
 * another buffer only while the pool is under budget, and otherwise waits for its own oldest block
 * and refills that buffer. Each stream holds at least one. So all streams together hold at most
 * `max(budget, streams) × blockSize` of input (4 MiB with 2 workers and 1 MiB blocks; 4 streams
 * at `--max-concurrent 4` also hold 4), plus one compressed output per buffer, each no larger than
 * its block. Input chunks marked as owned ({@link ../bytes/owned_chunk.ts}) are freed as soon as they are
 * copied into a block, and outputs are marked as owned, so the stream leaves no garbage behind.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { PusherError } from "../errors.ts";
import type { Compression } from "../oci/media_types.ts";
import type { CompressReply, CompressRequest } from "./compress_worker.ts";
import { markOwned, releaseChunk } from "../bytes/owned_chunk.ts";

/** A compressed format this module writes. */
export type CompressFormat = Exclude<Compression, "none">;

/**
 * Default size of the independently compressed blocks: 1 MiB. The size barely matters for the
 * ratio and sets the memory per block in flight.
 */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;

/**
 * Default level per format: gzip 2, the fastest level whose output stays within a few percent of
 * skopeo's bytes (the README's performance section has the measurements behind the choice);
 * zstd 3, zstd's own default.
 */
export const DEFAULT_LEVELS: Readonly<Record<CompressFormat, number>> = { gzip: 2, zstd: 3 };

/** Accepted level range per format. */
export const LEVEL_RANGES: Readonly<Record<CompressFormat, readonly [number, number]>> = {
  gzip: [1, 9],
  zstd: [1, 19],
};

/** Returns the level for a format (the default when absent); throws a usage error when out of range. */
export function resolveLevel(format: CompressFormat, level?: number): number {
  if (level === undefined) return DEFAULT_LEVELS[format];
  const [min, max] = LEVEL_RANGES[format];
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new PusherError("usage", `${format} level ${level} is out of range`, {
      hint: `use a whole number from ${min} to ${max}`,
    });
  }
  return level;
}

/** Options of a {@link CompressionPool}. */
export interface CompressionPoolOptions {
  /** Number of workers; defaults to `navigator.hardwareConcurrency`. */
  size?: number;
  /** Workers are terminated after this long without work, so they never keep the process alive. */
  idleMs?: number;
  /** Block buffers all streams of the pool may hold together (each holds one at least); twice the workers by default. */
  bufferBudget?: number;
}

/** One block waiting for or being compressed by a worker. */
interface Job {
  request: CompressRequest;
  resolve: (block: CompressedBlock) => void;
  reject: (error: unknown) => void;
  /** Stops watching the job's abort signal (whose listener would keep the output alive). */
  release: () => void;
}

/** A compressed block, and the input buffer handed back for reuse. */
export interface CompressedBlock {
  /** The compressed bytes. */
  output: Uint8Array;
  /** The buffer the block was passed in, free to be filled again. */
  input: ArrayBuffer;
}

/** A worker and the job it is running. */
interface Slot {
  worker: Worker;
  job: Job | undefined;
}

/**
 * A pool of compression Workers shared by every stream that uses it. Workers start on demand and
 * are terminated after `idleMs` without work, or by {@link close}; the pool can be used again
 * after either (workers restart).
 */
export class CompressionPool {
  /** Maximum number of workers. */
  readonly size: number;
  /** Block buffers all streams may hold together (see {@link claimBuffer}). */
  readonly bufferBudget: number;
  readonly #idleMs: number;
  #buffers = 0;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  /** Creates a pool; no worker starts until the first block arrives. */
  constructor(options: CompressionPoolOptions = {}) {
    this.size = Math.max(1, options.size ?? navigator.hardwareConcurrency ?? 1);
    this.#idleMs = options.idleMs ?? 1000;
    this.bufferBudget = Math.max(1, options.bufferBudget ?? 2 * this.size);
  }

  /**
   * Counts one more block buffer against {@link bufferBudget}: true when the pool is under budget,
   * or when `force` is set (a stream's first buffer); false (and nothing counted) otherwise.
   */
  claimBuffer(force = false): boolean {
    if (!force && this.#buffers >= this.bufferBudget) return false;
    this.#buffers++;
    return true;
  }

  /** Gives back `count` buffers claimed with {@link claimBuffer}. */
  returnBuffers(count: number): void {
    this.#buffers = Math.max(0, this.#buffers - count);
  }

  /** Block buffers currently claimed by streams. */
  get buffersInUse(): number {
    return this.#buffers;
  }

  /**
   * Compresses one block. `input` is transferred to a worker (it is detached on return) and comes
   * back with the result; `length` bytes of it form the block. Rejects with the signal's reason
   * when `signal` aborts before a worker takes the block, with an `AbortError` when the pool is
   * closed, and with an internal {@link PusherError} when compression or a worker fails.
   */
  compress(
    format: CompressFormat,
    level: number,
    input: ArrayBuffer,
    length: number,
    last: boolean,
    signal?: AbortSignal,
  ): Promise<CompressedBlock> {
    return new Promise<CompressedBlock>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const request: CompressRequest = { id: this.#nextId++, format, level, last, input, length };
      const onAbort = (): void => {
        const index = this.#queue.indexOf(job);
        if (index < 0) return;
        this.#queue.splice(index, 1);
        reject(signal?.reason);
        this.#armIdleTimer();
      };
      const job: Job = {
        request,
        resolve,
        reject,
        release: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(job);
      this.#dispatch();
    });
  }

  /** Terminates every worker now; queued and running blocks reject with an `AbortError`. */
  close(): void {
    this.#clearIdleTimer();
    const error = new DOMException("the compression pool was closed", "AbortError");
    this.#failQueue(error);
    for (const slot of this.#slots.splice(0)) {
      slot.worker.terminate();
      slot.job?.reject(error);
    }
  }

  /** Hands queued jobs to idle workers, starting workers up to {@link size}. */
  #dispatch(): void {
    this.#clearIdleTimer();
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((candidate) => candidate.job === undefined);
      if (slot === undefined && this.#slots.length < this.size) {
        try {
          slot = this.#startWorker();
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          this.#failQueue(
            new PusherError("internal", `cannot start a compression worker: ${message}`),
          );
          break;
        }
      }
      if (slot === undefined) return;
      const job = this.#queue.shift() as Job;
      // Once a worker has it, the job runs to the end; the abort listener is no longer needed.
      job.release();
      slot.job = job;
      slot.worker.postMessage(job.request, [job.request.input]);
    }
    this.#armIdleTimer();
  }

  /** Rejects every queued job with `error`. */
  #failQueue(error: unknown): void {
    for (const job of this.#queue.splice(0)) {
      job.release();
      job.reject(error);
    }
  }

  /** Starts a worker and registers its slot. */
  #startWorker(): Slot {
    const worker = new Worker(new URL("./compress_worker.ts", import.meta.url), {
      type: "module",
    });
    const slot: Slot = { worker, job: undefined };
    worker.onmessage = (event: MessageEvent<CompressReply>): void => {
      const job = slot.job;
      slot.job = undefined;
      const reply = event.data;
      if (job !== undefined && job.request.id === reply.id) {
        if ("error" in reply) {
          job.reject(new PusherError("internal", `compression failed: ${reply.error}`));
        } else {
          job.resolve({ output: new Uint8Array(reply.output), input: reply.input });
        }
      }
      this.#dispatch();
    };
    worker.onerror = (event: ErrorEvent): void => {
      event.preventDefault();
      this.#dropWorker(
        slot,
        new PusherError("internal", `compression worker failed: ${event.message}`),
      );
    };
    worker.onmessageerror = (): void => {
      this.#dropWorker(
        slot,
        new PusherError("internal", "compression worker sent an unreadable reply"),
      );
    };
    this.#slots.push(slot);
    return slot;
  }

  /** Terminates a failed worker, fails its job and lets the queue continue on the others. */
  #dropWorker(slot: Slot, error: PusherError): void {
    slot.worker.terminate();
    const index = this.#slots.indexOf(slot);
    if (index >= 0) this.#slots.splice(index, 1);
    slot.job?.reject(error);
    slot.job = undefined;
    this.#dispatch();
  }

  /** Schedules termination of all workers once nothing is queued or running. */
  #armIdleTimer(): void {
    if (this.#idleTimer !== undefined || this.#slots.length === 0) return;
    if (this.#queue.length > 0 || this.#slots.some((slot) => slot.job !== undefined)) return;
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      for (const slot of this.#slots.splice(0)) slot.worker.terminate();
    }, this.#idleMs);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  /** Cancels a pending idle termination. */
  #clearIdleTimer(): void {
    if (this.#idleTimer === undefined) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }
}

let sharedPool: CompressionPool | undefined;

/** The process-wide pool (one worker per core), created on first use. */
export function sharedCompressionPool(): CompressionPool {
  sharedPool ??= new CompressionPool();
  return sharedPool;
}

/** Terminates the shared pool's workers now (a later use starts them again). */
export function closeSharedCompressionPool(): void {
  sharedPool?.close();
}

/** Options of a {@link CompressStream}. */
export interface CompressStreamOptions {
  /** Compression level; defaults to {@link DEFAULT_LEVELS}. */
  level?: number;
  /** Bytes per independently compressed block; defaults to {@link DEFAULT_BLOCK_SIZE}. */
  blockSize?: number;
  /** The worker pool; defaults to {@link sharedCompressionPool}. */
  pool?: CompressionPool;
  /** Blocks of this stream at the pool at once, within the pool's budget; defaults to twice the pool size. */
  maxInFlight?: number;
}

/** A block submitted to the pool, in output order, with its result once the worker answered. */
interface Pending {
  block: Promise<CompressedBlock>;
  result: CompressedBlock | undefined;
}

/** gzip member header: deflate, no flags, mtime 0, XFL per level (as zlib sets it), OS 3 (Unix). */
function gzipHeader(level: number): Uint8Array {
  const xfl = level === 1 ? 4 : level === 9 ? 2 : 0;
  return Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3);
}

/** gzip member trailer: CRC-32 and length mod 2^32 of the uncompressed input, little-endian. */
function gzipTrailer(crc: number, length: number): Uint8Array {
  const trailer = new Uint8Array(8);
  const view = new DataView(trailer.buffer);
  view.setUint32(0, crc >>> 0, true);
  view.setUint32(4, length % 0x1_0000_0000, true);
  return trailer;
}

/**
 * A TransformStream that compresses its input to gzip or zstd on the workers of a
 * {@link CompressionPool}, with output independent of the input's chunking. Owned input chunks
 * are freed once copied; every compressed block comes out as an owned chunk.
 */
export class CompressStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Creates a compressing stream for `format`. Throws a usage error for a bad level. */
  constructor(format: CompressFormat, options: CompressStreamOptions = {}) {
    const level = resolveLevel(format, options.level);
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new PusherError(
        "usage",
        `compression block size ${blockSize} is not a positive integer`,
      );
    }
    const pool = options.pool ?? sharedCompressionPool();
    const maxInFlight = Math.max(1, options.maxInFlight ?? pool.size * 2);
    const cancel = new AbortController();
    const pending: Pending[] = [];
    const spare: ArrayBuffer[] = [];
    let claimed = 0;
    let block: Uint8Array | undefined;
    let filled = 0;
    let crc = 0;
    let total = 0;

    /** Frees the spare buffers and gives the stream's claims back to the pool. */
    const returnClaims = (): void => {
      for (const buffer of spare.splice(0)) buffer.transfer(0);
      pool.returnBuffers(claimed);
      claimed = 0;
    };
    const submit = (input: Uint8Array, last: boolean): void => {
      const buffer = input.buffer as ArrayBuffer;
      const compressed = pool.compress(format, level, buffer, filled, last, cancel.signal);
      const entry: Pending = { block: compressed, result: undefined };
      // Marked handled here; the rejection still reaches whoever awaits it in order.
      compressed.then((result) => {
        entry.result = result;
      }, () => {});
      pending.push(entry);
      block = undefined;
      filled = 0;
    };
    /** Passes a finished block's output on and keeps its buffer for reuse. */
    const pass = (
      controller: TransformStreamDefaultController<Uint8Array>,
      { output, input }: CompressedBlock,
    ): void => {
      if (input.byteLength === blockSize) spare.push(input);
      controller.enqueue(markOwned(output));
    };
    /** Waits for the oldest block and passes it on. */
    const emitOldest = async (
      controller: TransformStreamDefaultController<Uint8Array>,
    ): Promise<void> => {
      pass(controller, await (pending.shift() as Pending).block);
    };
    /** Passes on, without waiting, the outputs of leading blocks the workers already finished. */
    const emitReady = (controller: TransformStreamDefaultController<Uint8Array>): void => {
      for (let head = pending[0]; head?.result !== undefined; head = pending[0]) {
        pending.shift();
        pass(controller, head.result);
      }
    };
    /**
     * A buffer to fill without waiting: a spare one, or a new one within budget (or regardless
     * when nothing is in flight to wait for); undefined when the stream must wait for its oldest
     * block.
     */
    const freeBlock = (): Uint8Array | undefined => {
      const reused = spare.pop();
      if (reused !== undefined) return new Uint8Array(reused);
      const grown = pending.length < maxInFlight && pool.claimBuffer();
      if (!grown && pending.length > 0) return undefined;
      if (!grown) pool.claimBuffer(true);
      claimed++;
      return new Uint8Array(blockSize);
    };
    const failed = (error: unknown): never => {
      cancel.abort(error);
      returnClaims();
      throw error;
    };

    super({
      start(controller): void {
        if (format === "gzip") controller.enqueue(gzipHeader(level));
      },
      async transform(chunk, controller): Promise<void> {
        try {
          if (format === "gzip") crc = crc32(chunk, crc);
          total += chunk.byteLength;
          let offset = 0;
          while (offset < chunk.byteLength) {
            // A full block goes out only once more input shows it is not the last one.
            if (block !== undefined && filled === blockSize) submit(block, false);
            emitReady(controller);
            block ??= freeBlock();
            if (block === undefined) {
              await emitOldest(controller);
              continue;
            }
            const count = Math.min(blockSize - filled, chunk.byteLength - offset);
            block.set(chunk.subarray(offset, offset + count), filled);
            filled += count;
            offset += count;
          }
          releaseChunk(chunk);
        } catch (error) {
          failed(error);
        }
      },
      async flush(controller): Promise<void> {
        try {
          submit(block ?? new Uint8Array(0), true);
          while (pending.length > 0) await emitOldest(controller);
          if (format === "gzip") controller.enqueue(gzipTrailer(crc, total));
          returnClaims();
        } catch (error) {
          failed(error);
        }
      },
      cancel(reason): void {
        cancel.abort(reason);
        returnClaims();
      },
    });
  }
}
