/**
 * A staging directory for a pull that downloads blobs in parallel: each blob is streamed into
 * `<dir>/blobs/sha256/<hex>` (through a `.partial` file renamed once its size and digest check
 * out), and the archive writer later reads the staged blobs back in archive order.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { type BlobDescriptor, blobPath } from "./archive_plan.ts";
import { checkedBlobStream } from "../pipeline/digest.ts";
import { fileRangeStream, writeFully } from "./file_io.ts";

/** Where a blob is staged under `dir`. */
export function stagedBlobPath(dir: string, digest: string): string {
  return `${dir}/${blobPath(digest)}`;
}

/**
 * Streams `bytes` into the staging directory `dir` as `blob`. Resolves once the blob is complete
 * under its final name; rejects with a `verify` error (leaving nothing under that name) when the
 * bytes do not match the descriptor.
 */
export async function stageBlob(
  dir: string,
  blob: BlobDescriptor,
  bytes: ReadableStream<Uint8Array>,
): Promise<void> {
  const path = stagedBlobPath(dir, blob.digest);
  const partial = `${path}.partial`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const file = await Deno.open(partial, { write: true, create: true, truncate: true });
  try {
    await writeStream(file, checkedBlobStream(blob, bytes, `blob ${blob.digest}`));
  } catch (error) {
    await Deno.remove(partial).catch(() => {});
    throw error;
  } finally {
    file.close();
  }
  await Deno.rename(partial, path);
}

/**
 * Writes every chunk of `bytes` to `file` with plain `write` calls: about three times the speed
 * of piping into `file.writable` for 1 MiB chunks (Deno 2.9, this machine).
 */
async function writeStream(file: Deno.FsFile, bytes: ReadableStream<Uint8Array>): Promise<void> {
  for await (const chunk of bytes) {
    await writeFully(file, chunk);
  }
}

/**
 * The bytes of a staged blob, for the archive writer (which checks them again as it copies).
 * Throws an internal error when the blob was never staged, and a `verify` error when the staged
 * file does not have the blob's size.
 */
export async function openStagedBlob(
  dir: string,
  blob: BlobDescriptor,
): Promise<ReadableStream<Uint8Array>> {
  const path = stagedBlobPath(dir, blob.digest);
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch (error) {
    throw new PusherError("internal", `blob ${blob.digest} was not staged in ${dir}`, {
      cause: error,
    });
  }
  if (size !== blob.size) {
    throw new PusherError(
      "verify",
      `staged blob ${blob.digest} is ${size} bytes, its descriptor gives ${blob.size}`,
    );
  }
  return fileRangeStream(path, 0, size, `staged blob ${blob.digest}`);
}
