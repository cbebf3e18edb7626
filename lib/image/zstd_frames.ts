/**
 * zstd streams made of several frames, taken apart frame by frame. Deno's `node:zlib` zstd
 * decoder stops at the end of the first frame (and at a skippable frame) and drops the rest, yet
 * multi-frame data is common: this tool's own compressor writes one frame per block, and so do
 * pzstd, seekable zstd and `cat a.zst b.zst`. A small scanner finds the frame boundaries from the
 * frame and block headers, each frame goes through a fresh single-frame decoder (the caller's:
 * {@link ./compression.ts} `decompressStream` passes `node:zlib`'s), and skippable frames are left
 * out.
 *
 * @module
 */

import { PusherError } from "../errors.ts";

/** A run of input bytes that belongs to one frame. */
export interface FramePiece {
  /** The bytes (a view of the input chunk). */
  bytes: Uint8Array;
  /** The frame is a skippable frame (metadata, not content). */
  skippable: boolean;
  /** The frame ends with the last byte of {@link bytes}. */
  frameEnd: boolean;
}

/** What the scanner waits for next. */
type Phase =
  | "magic"
  | "frame-header-descriptor"
  | "frame-header-rest"
  | "block-header"
  | "block-content"
  | "checksum"
  | "skippable-size"
  | "skippable-content";

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const DICTIONARY_ID_BYTES = [0, 1, 2, 4] as const;
const CONTENT_SIZE_BYTES = [0, 2, 4, 8] as const;

/**
 * Splits a zstd byte stream, chunk by chunk, into runs of bytes each belonging to one frame. Only
 * headers are read (at most 14 bytes buffered at a time); content bytes pass through as views.
 */
export class ZstdFrameScanner {
  readonly #label: string;
  #phase: Phase = "magic";
  /** Bytes the current phase still needs. */
  #needed = 4;
  /** Header bytes gathered so far (header phases only). */
  #header: number[] = [];
  #skippable = false;
  #checksum = false;
  #lastBlock = false;
  #offset = 0;

  /** A scanner whose errors name `label` (the layer). */
  constructor(label: string) {
    this.#label = label;
  }

  /** True between frames: the input may end here. */
  get atFrameBoundary(): boolean {
    return this.#phase === "magic" && this.#header.length === 0;
  }

  /** Splits one chunk into pieces; throws an input error for bytes that are not zstd frames. */
  feed(chunk: Uint8Array): FramePiece[] {
    const pieces: FramePiece[] = [];
    let start = 0;
    let at = 0;
    while (at < chunk.length) {
      const content = this.#phase === "block-content" || this.#phase === "skippable-content";
      const take = Math.min(this.#needed, chunk.length - at);
      if (!content) this.#header.push(...chunk.subarray(at, at + take));
      at += take;
      this.#needed -= take;
      this.#offset += take;
      if (this.#needed > 0) break;
      const skippable = this.#skippable;
      if (this.#advance()) {
        pieces.push({ bytes: chunk.subarray(start, at), skippable, frameEnd: true });
        start = at;
      }
    }
    if (start < chunk.length) {
      pieces.push({ bytes: chunk.subarray(start), skippable: this.#skippable, frameEnd: false });
    }
    return pieces;
  }

  /** Moves to the next phase once the current one has its bytes; true when a frame ended. */
  #advance(): boolean {
    const header = this.#header;
    this.#header = [];
    switch (this.#phase) {
      case "magic": {
        const magic = readLittleEndian(header);
        if (magic === ZSTD_MAGIC) return this.#expect("frame-header-descriptor", 1, false);
        if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
          this.#skippable = true;
          return this.#expect("skippable-size", 4, false);
        }
        throw new PusherError(
          "input",
          `${this.#label}: the zstd data has no frame at byte ${this.#offset - 4}`,
        );
      }
      case "frame-header-descriptor": {
        const descriptor = header[0] ?? 0;
        const singleSegment = (descriptor & 0x20) !== 0;
        this.#checksum = (descriptor & 0x04) !== 0;
        const contentSizeFlag = descriptor >> 6;
        const rest = (singleSegment ? 0 : 1) +
          (DICTIONARY_ID_BYTES[descriptor & 0x03] ?? 0) +
          (contentSizeFlag === 0 && singleSegment ? 1 : CONTENT_SIZE_BYTES[contentSizeFlag] ?? 0);
        return rest === 0
          ? this.#expect("block-header", 3, false)
          : this.#expect("frame-header-rest", rest, false);
      }
      case "frame-header-rest":
        return this.#expect("block-header", 3, false);
      case "block-header": {
        const value = readLittleEndian(header);
        this.#lastBlock = (value & 1) === 1;
        const type = (value >> 1) & 0x03;
        if (type === 3) {
          throw new PusherError(
            "input",
            `${this.#label}: the zstd data has a reserved block type at byte ${this.#offset}`,
          );
        }
        const size = type === 1 ? 1 : value >>> 3;
        return size > 0 ? this.#expect("block-content", size, false) : this.#afterBlock();
      }
      case "block-content":
        return this.#afterBlock();
      case "checksum":
        return this.#expect("magic", 4, true);
      case "skippable-size": {
        const size = readLittleEndian(header);
        return size > 0
          ? this.#expect("skippable-content", size, false)
          : this.#expect("magic", 4, true);
      }
      case "skippable-content":
        return this.#expect("magic", 4, true);
    }
  }

  #afterBlock(): boolean {
    if (!this.#lastBlock) return this.#expect("block-header", 3, false);
    return this.#checksum ? this.#expect("checksum", 4, false) : this.#expect("magic", 4, true);
  }

  #expect(phase: Phase, needed: number, frameEnded: boolean): boolean {
    this.#phase = phase;
    this.#needed = needed;
    if (frameEnded) this.#skippable = false;
    return frameEnded;
  }
}

function readLittleEndian(bytes: readonly number[]): number {
  let value = 0;
  for (let i = bytes.length - 1; i >= 0; i--) value = value * 256 + (bytes[i] ?? 0);
  return value;
}

/** Decompresses the compressed bytes of one zstd frame. */
export type FrameDecoder = (frame: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>;

/**
 * Decompresses a zstd stream of any number of frames, each through `decodeFrame` (skippable
 * frames are left out). Corrupt or cut-short data fails the returned stream with an input error
 * naming `label`.
 */
export function decompressZstdFrames(
  input: ReadableStream<Uint8Array>,
  label: string,
  decodeFrame: FrameDecoder,
): ReadableStream<Uint8Array> {
  const reader = input.getReader();
  const scanner = new ZstdFrameScanner(label);
  const queued: FramePiece[] = [];
  let inputDone = false;
  const nextPiece = async (): Promise<FramePiece | undefined> => {
    while (queued.length === 0) {
      if (inputDone) return undefined;
      const { done, value } = await reader.read();
      if (done) {
        inputDone = true;
        if (!scanner.atFrameBoundary) {
          throw new PusherError("input", `${label}: the zstd data is cut short`, {
            hint: "the compressed data is damaged or cut short; re-create it",
          });
        }
        return undefined;
      }
      queued.push(...scanner.feed(value));
    }
    return queued.shift();
  };
  /** A stream of one frame's compressed bytes, starting with `first`. */
  const frameStream = (first: FramePiece): ReadableStream<Uint8Array> => {
    let pending: FramePiece | undefined = first;
    return new ReadableStream<Uint8Array>({
      async pull(controller): Promise<void> {
        const piece = pending ?? await nextPiece();
        pending = undefined;
        if (piece === undefined) {
          controller.error(new PusherError("input", `${label}: the zstd data is cut short`));
          return;
        }
        controller.enqueue(piece.bytes);
        if (piece.frameEnd) controller.close();
      },
    }, { highWaterMark: 0 });
  };
  async function* frames(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const first = await nextPiece();
      if (first === undefined) return;
      if (first.skippable) continue;
      yield* decodeFrame(frameStream(first));
    }
  }
  const output = frames();
  return new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      try {
        const { done, value } = await output.next();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
        await reader.cancel(error).catch(() => {});
      }
    },
    async cancel(reason): Promise<void> {
      await output.return(undefined);
      await reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
