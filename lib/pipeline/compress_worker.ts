/**
 * Worker script of the compression pool: compresses one block per message with the synchronous
 * `node:zlib` functions and hands the output buffer back by transfer, together with the input
 * buffer so the parent can fill it again.
 *
 * gzip blocks are raw deflate ended with `Z_SYNC_FLUSH` (byte-aligned, not final) or, for the last
 * block, `Z_FINISH`; the parent wraps them in one gzip member. zstd blocks are whole frames with a
 * content checksum. Started by {@link ./compress.ts}; not meant to be imported elsewhere.
 *
 * @module
 */

import { constants, deflateRawSync, zstdCompressSync } from "node:zlib";

/** A block to compress, sent by the pool. */
export interface CompressRequest {
  /** Job id, echoed in the reply. */
  id: number;
  /** Output format. */
  format: "gzip" | "zstd";
  /** Compression level, already validated. */
  level: number;
  /** Whether this is the final block of the stream (gzip: ends the deflate stream). */
  last: boolean;
  /** Buffer holding the block, transferred. */
  input: ArrayBuffer;
  /** Number of bytes of {@link input} that belong to the block. */
  length: number;
}

/** The answer to a {@link CompressRequest}: the compressed bytes or an error message. */
export type CompressReply =
  | { id: number; output: ArrayBuffer; input: ArrayBuffer }
  | { id: number; error: string };

/** The part of the worker global scope this script uses. */
interface WorkerScope {
  onmessage: ((event: MessageEvent<CompressRequest>) => void) | null;
  postMessage(message: CompressReply, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

/** Compresses one block as the request describes. */
function compressBlock(request: CompressRequest): Uint8Array {
  const input = new Uint8Array(request.input, 0, request.length);
  if (request.format === "gzip") {
    return deflateRawSync(input, {
      level: request.level,
      finishFlush: request.last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    });
  }
  return zstdCompressSync(input, {
    params: {
      [constants.ZSTD_c_compressionLevel]: request.level,
      [constants.ZSTD_c_checksumFlag]: 1,
    },
  });
}

scope.onmessage = (event: MessageEvent<CompressRequest>): void => {
  const request = event.data;
  try {
    const bytes = compressBlock(request);
    // Large outputs come back in a buffer of their own size: transfer it. Small ones may sit in a
    // larger pooled buffer: copy those few bytes (`Buffer#slice` would not copy).
    const output = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? bytes.buffer as ArrayBuffer
      : new Uint8Array(bytes).buffer;
    scope.postMessage({ id: request.id, output, input: request.input }, [output, request.input]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    scope.postMessage({ id: request.id, error: message });
  }
};
