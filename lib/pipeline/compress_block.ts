/**
 * Compresses one independent block with the synchronous `node:zlib` functions (run inside the
 * compression workers).
 *
 * - gzip: raw deflate ended with `Z_SYNC_FLUSH` (byte-aligned, not final) or, for the last block,
 *   `Z_FINISH`; the caller wraps the blocks in one gzip member. A block whose samples do not
 *   compress at all (random or already compressed data) is stored (level 0): deflate searches such
 *   data slowly for nothing, storing runs at memory speed, and skopeo's output for
 *   such data is stored too. The choice depends only on the block's bytes, so the output stays
 *   deterministic.
 * - zstd: one frame with a content checksum (zstd gives up on incompressible data by itself).
 *
 * No garbage per block: zlib writes into one output buffer sized for the worst case, which is then
 * shrunk to the output's length with `ArrayBuffer.prototype.transfer`; the large buffer is freed at
 * once instead of waiting for the garbage collector (V8 lets ~64 MiB of dead buffers pile up per
 * isolate before it collects them).
 *
 * @module
 */

import { constants, deflateRawSync, zstdCompressSync } from "node:zlib";

/** Bytes per sample of the incompressibility test. */
const SAMPLE_SIZE = 8 * 1024;
/** Samples per block, spread evenly from its start to its end. */
const SAMPLE_COUNT = 4;
/** zlib's output buffer for one sample: room for a stored sample. */
const SAMPLE_OUTPUT = 2 * SAMPLE_SIZE;

/** A format {@link compressBlock} writes. */
export type BlockFormat = "gzip" | "zstd";

/**
 * Frees a zlib output now when it sits at the start of a buffer of `allocated` bytes (the buffer
 * zlib allocated for it), by detaching that buffer; leaves any other buffer to the collector.
 */
function discard(bytes: Uint8Array, allocated: number): void {
  const buffer = bytes.buffer;
  if (buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && buffer.byteLength === allocated) {
    buffer.transfer(0);
  }
}

/**
 * Whether a block is not worth deflating: each of 4 samples of 8 KiB, deflated at level 1, comes
 * out no smaller than it went in. Stops at the first sample that compresses, so compressible data
 * pays for one sample per block (under 1 % of the block's time at 1 MiB blocks). Blocks under
 * 128 KiB are always deflated.
 */
export function incompressible(block: Uint8Array): boolean {
  if (block.byteLength < SAMPLE_SIZE * SAMPLE_COUNT * 4) return false;
  const last = block.byteLength - SAMPLE_SIZE;
  for (let index = 0; index < SAMPLE_COUNT; index++) {
    const start = Math.floor((last * index) / (SAMPLE_COUNT - 1));
    const sample = block.subarray(start, start + SAMPLE_SIZE);
    const packed = deflateRawSync(sample, { level: 1, chunkSize: SAMPLE_OUTPUT });
    const size = packed.byteLength;
    discard(packed, SAMPLE_OUTPUT);
    if (size < SAMPLE_SIZE) return false;
  }
  return true;
}

/** Room for the compressed form of `length` bytes in the worst case (above deflate's and zstd's bounds). */
export function outputBound(length: number): number {
  return Math.max(64 * 1024, length + (length >>> 7) + 1024);
}

/**
 * The output as a buffer of its own length: zlib's own output buffer (`allocated` bytes) shrunk
 * by transfer, which frees the rest now; anything else (an output that outgrew the bound and was
 * concatenated) is copied.
 */
function exactBuffer(bytes: Uint8Array, allocated: number): ArrayBuffer {
  const buffer = bytes.buffer;
  if (buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && buffer.byteLength === allocated) {
    return buffer.transfer(bytes.byteLength);
  }
  return new Uint8Array(bytes).buffer;
}

/**
 * Compresses `input` as one block of a `format` stream at `level` (already validated); `last`
 * ends the deflate stream. Returns a buffer holding exactly the compressed bytes.
 */
export function compressBlock(
  format: BlockFormat,
  level: number,
  input: Uint8Array,
  last: boolean,
): ArrayBuffer {
  const chunkSize = outputBound(input.byteLength);
  const output = format === "gzip"
    ? deflateRawSync(input, {
      level: incompressible(input) ? 0 : level,
      finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
      chunkSize,
    })
    : zstdCompressSync(input, {
      chunkSize,
      params: {
        [constants.ZSTD_c_compressionLevel]: level,
        [constants.ZSTD_c_checksumFlag]: 1,
      },
    });
  return exactBuffer(output, chunkSize);
}
