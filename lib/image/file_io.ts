/**
 * File access for archives: opening with one-line input errors, full reads at an offset, a
 * stream over a byte range using large reads, and whole writes (for archives and blobs written).
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { markOwned } from "../bytes/owned_chunk.ts";

/** Read size for streaming file ranges: large reads run near disk speed. */
export const READ_CHUNK_SIZE = 1024 * 1024;

function openError(path: string, error: unknown): PusherError {
  if (error instanceof Deno.errors.NotFound) {
    return new PusherError("input", `archive ${path} does not exist`, { cause: error });
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new PusherError("input", `cannot read archive ${path}: permission denied`, {
      cause: error,
    });
  }
  if (error instanceof Deno.errors.IsADirectory) {
    return new PusherError("input", `archive ${path} is a directory, not a file`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new PusherError("input", `cannot read archive ${path}: ${message}`, { cause: error });
}

/**
 * Looks up an archive path. Throws a one-line input error when it is missing, unreadable, a
 * directory or empty.
 */
export async function statArchive(path: string): Promise<Deno.FileInfo> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw openError(path, error);
  }
  if (info.isDirectory) {
    throw new PusherError("input", `archive ${path} is a directory, not a file`, {
      hint: "pass the archive file (docker save -o image.tar), not an unpacked directory",
    });
  }
  if (info.isFile && info.size === 0) {
    throw new PusherError("input", `archive ${path} is empty`);
  }
  return info;
}

/** Opens a file for reading, mapping failures to one-line input errors. */
export async function openForReading(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true });
  } catch (error) {
    throw openError(path, error);
  }
}

/** Reads into `buffer` until it is full or the file ends; returns the bytes read. */
export async function readFully(file: Deno.FsFile, buffer: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const count = await file.read(buffer.subarray(filled));
    if (count === null) break;
    filled += count;
  }
  return filled;
}

/** Writes all of `bytes` at the file's position (a single `write` may take fewer). */
export async function writeFully(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await file.write(bytes.subarray(offset));
}

/**
 * A stream of `length` bytes of the file at `path` starting at `start`, read in
 * {@link READ_CHUNK_SIZE} pieces through its own file handle (closed at the end or on cancel).
 * `what` names the bytes in the error raised when the file is shorter than expected. With `owned`,
 * every chunk is a fresh buffer marked as owned ({@link ../bytes/owned_chunk.ts}), so the stage
 * that consumes it last may free it at once: only for a consumer that never keeps a chunk (or a
 * view of one) after passing it on.
 */
export function fileRangeStream(
  path: string,
  start: number,
  length: number,
  what: string,
  owned = false,
): ReadableStream<Uint8Array> {
  let file: Deno.FsFile | undefined;
  let remaining = length;
  const close = (): void => {
    file?.close();
    file = undefined;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      try {
        if (remaining === 0) {
          close();
          controller.close();
          return;
        }
        if (file === undefined) {
          file = await openForReading(path);
          if (start > 0) await file.seek(start, Deno.SeekMode.Start);
        }
        const chunk = new Uint8Array(Math.min(READ_CHUNK_SIZE, remaining));
        const count = await readFully(file, chunk);
        if (count < chunk.length) {
          throw new PusherError(
            "input",
            `${path} is truncated: ${what} ends ${remaining - count} bytes early`,
          );
        }
        remaining -= count;
        controller.enqueue(owned ? markOwned(chunk) : chunk);
        if (remaining === 0) {
          close();
          controller.close();
        }
      } catch (error) {
        close();
        throw error;
      }
    },
    cancel(): void {
      close();
    },
  });
}
