/**
 * Writes a Docker-25-style image archive (see {@link ./archive_plan.ts}) as a stream of tar bytes,
 * for a file or for standard output. The writer never recompresses: every blob is copied byte for
 * byte, checked against its descriptor as it passes (size and sha256; a mismatch errors the
 * stream with a `verify` error). Output is deterministic: fixed entry order (top-level files,
 * then `blobs/`, then blobs in plan order), mtime 0, uid/gid 0, fixed modes.
 *
 * How blobs get in: the writer asks `openBlob` for each blob of {@link ArchivePlan.fetched}, one
 * at a time, in archive order, when the tar reaches it (a download opened when asked). The plan
 * is known before any download, so the metadata comes first in the tar. A pull that downloads in
 * parallel writes each blob straight into its place in a partial archive instead (see
 * `lib/pull/partial_archive.ts`); both give the same bytes.
 *
 * ```ts ignore
 * const plan = planArchive([{ names: ["app:v1"], manifest }]);
 * await writeArchive(plan, (blob) => download(blob)).pipeTo(file.writable);
 * ```
 *
 * @module
 */

import type { ArchivePlan, BlobDescriptor } from "./archive_plan.ts";
import { blobPath } from "./archive_plan.ts";
import { checkedBlobStream } from "../pipeline/digest.ts";
import { endOfArchive, tarEntryHeader, tarPadding } from "./tar_writer.ts";

/** Supplies a blob's bytes when the writer reaches it. */
export type BlobOpener = (
  blob: BlobDescriptor,
) => ReadableStream<Uint8Array> | Promise<ReadableStream<Uint8Array>>;

function* padding(size: number): Generator<Uint8Array> {
  const zeros = tarPadding(size);
  if (zeros.length > 0) yield zeros;
}

async function* archiveChunks(
  plan: ArchivePlan,
  openBlob: BlobOpener,
): AsyncGenerator<Uint8Array> {
  for (const file of plan.files) {
    yield tarEntryHeader({ path: file.path, type: "file", size: file.bytes.length });
    yield file.bytes;
    yield* padding(file.bytes.length);
  }
  yield tarEntryHeader({ path: "blobs", type: "directory", size: 0 });
  yield tarEntryHeader({ path: "blobs/sha256", type: "directory", size: 0 });
  for (const blob of plan.blobs) {
    const { descriptor } = blob;
    yield tarEntryHeader({
      path: blobPath(descriptor.digest),
      type: "file",
      size: descriptor.size,
    });
    if (blob.bytes !== undefined) {
      yield blob.bytes;
    } else {
      const what = `blob ${descriptor.digest} (${descriptor.mediaType || "no media type"})`;
      // Leaving this loop early (an error, or the consumer cancelling) cancels the blob's stream.
      yield* checkedBlobStream(descriptor, await openBlob(descriptor), what);
    }
    yield* padding(descriptor.size);
  }
  yield endOfArchive();
}

/**
 * The archive `plan` describes, as tar bytes. Blobs the plan does not hold come from `openBlob`,
 * asked for one at a time in archive order. The stream errors with a `verify`
 * {@link ../errors.ts PusherError} when a blob's bytes disagree with its descriptor, and with
 * whatever `openBlob` throws; write to a temporary file and rename it only once the stream ends.
 * Cancelling the stream cancels the blob being copied.
 */
export function writeArchive(plan: ArchivePlan, openBlob: BlobOpener): ReadableStream<Uint8Array> {
  return ReadableStream.from(archiveChunks(plan, openBlob));
}
