/**
 * Worker script of the compression pool: compresses one block per message with the synchronous
 * `node:zlib` functions and hands the output buffer back by transfer, together with the input
 * buffer so the parent can fill it again.
 *
 * What a block becomes is {@link ./compress_block.ts}'s job. Started by {@link ./compress.ts}; not
 * meant to be imported elsewhere.
 *
 * @module
 */

import { compressBlock } from "./compress_block.ts";

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

scope.onmessage = (event: MessageEvent<CompressRequest>): void => {
  const request = event.data;
  try {
    const input = new Uint8Array(request.input, 0, request.length);
    const output = compressBlock(request.format, request.level, input, request.last);
    scope.postMessage({ id: request.id, output, input: request.input }, [output, request.input]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    scope.postMessage({ id: request.id, error: message });
  }
};
