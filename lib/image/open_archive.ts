/**
 * Opens an archive argument (`path` or `-`) and says how to read it: a plain tar file gets random
 * access; a gzip/zstd-compressed file, a pipe or standard input is read in one streaming pass.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { SNIFF_LENGTH } from "../bytes/compression_sniff.ts";
import { peekStream } from "../bytes/peek.ts";
import { archiveCompression } from "./compression.ts";
import { fileRangeStream, openForReading, readFully, statArchive } from "./file_io.ts";
import { openRandomAccessArchive, type RandomAccessArchive } from "./random_access.ts";
import { BLOCK_SIZE, isTarHeader, isZeroBlock } from "./tar_header.ts";
import type { Compression } from "../oci/media_types.ts";

/** How an opened archive is read. */
export type ArchiveSource =
  | {
    /** Random access: a plain tar file, indexed. */
    mode: "random";
    /** The indexed archive. */
    archive: RandomAccessArchive;
  }
  | {
    /** One streaming pass (give {@link stream} to `scanArchiveStream`). */
    mode: "stream";
    /** The archive's name for messages: its path, or `stdin`. */
    name: string;
    /** The compression its magic bytes show. */
    compression: Compression;
    /** The archive's bytes from the start (still compressed). */
    stream: ReadableStream<Uint8Array>;
  };

async function openStdin(): Promise<ArchiveSource> {
  if (Deno.stdin.isTerminal()) {
    throw new PusherError("usage", "refusing to read an archive from a terminal (-f -)", {
      hint: "pipe the archive in, e.g. docker save image | docker-image-pusher -f - ...",
    });
  }
  const { head, stream } = await peekStream(Deno.stdin.readable, SNIFF_LENGTH);
  if (head.length === 0) throw new PusherError("input", "stdin is empty: no archive was piped in");
  return { mode: "stream", name: "stdin", compression: archiveCompression(head, "stdin"), stream };
}

async function readHead(path: string): Promise<Uint8Array> {
  const file = await openForReading(path);
  try {
    const head = new Uint8Array(BLOCK_SIZE);
    return head.subarray(0, await readFully(file, head));
  } finally {
    file.close();
  }
}

/**
 * Opens `pathOrDash` (`-` is standard input). Plain tar files are indexed for random access;
 * gzip/zstd files, pipes and standard input are returned as a stream. Throws one-line input errors
 * for a missing, unreadable, empty or unrecognised file or a directory.
 */
export async function openArchive(pathOrDash: string): Promise<ArchiveSource> {
  if (pathOrDash === "-") return await openStdin();
  const info = await statArchive(pathOrDash);
  if (!info.isFile) {
    const file = await openForReading(pathOrDash);
    const { head, stream } = await peekStream(file.readable, SNIFF_LENGTH);
    if (head.length === 0) {
      await stream.cancel();
      throw new PusherError("input", `archive ${pathOrDash} is empty`);
    }
    const compression = archiveCompression(head, pathOrDash);
    return { mode: "stream", name: pathOrDash, compression, stream };
  }
  const head = await readHead(pathOrDash);
  const compression = archiveCompression(head, pathOrDash);
  if (compression !== "none") {
    const stream = fileRangeStream(pathOrDash, 0, info.size, "the archive");
    return { mode: "stream", name: pathOrDash, compression, stream };
  }
  if (head.length < BLOCK_SIZE || !(isTarHeader(head) || isZeroBlock(head))) {
    throw new PusherError("input", `${pathOrDash} is not a tar archive (nor gzip or zstd)`, {
      hint: "expected the output of docker save, skopeo/podman copy, or buildx --output type=oci",
    });
  }
  return { mode: "random", archive: await openRandomAccessArchive(pathOrDash) };
}
