/**
 * Where every byte of a planned archive goes: the same entries in the same order as
 * {@link ../image/archive_writer.ts writeArchive} writes them, as positions in a file. A pull
 * uses it to put each downloaded blob straight at its final offset inside the partial archive,
 * so the archive is never assembled from a second copy of its blobs.
 *
 * @module
 */

import { type ArchivePlan, blobPath } from "../image/archive_plan.ts";
import { paddedSize } from "../image/tar_header.ts";
import { END_OF_ARCHIVE_SIZE, tarEntryHeader } from "../image/tar_writer.ts";

/** Bytes known before any download, and where they go. */
export interface PlacedBytes {
  /** Offset in the archive file. */
  offset: number;
  /** The bytes (a tar header, a top-level file, or a manifest the plan holds). */
  bytes: Uint8Array;
}

/** The positions of a planned archive. */
export interface ArchiveLayout {
  /** Headers, top-level files and manifests: everything but padding and fetched blobs. */
  known: PlacedBytes[];
  /** Offset of each fetched blob's data (after its header), by digest. */
  blobOffsets: Map<string, number>;
  /** Size of the whole archive; every byte outside `known` and the blobs is zero. */
  size: number;
}

/** Lays `plan` out as `writeArchive` would write it. */
export function archiveLayout(plan: ArchivePlan): ArchiveLayout {
  const known: PlacedBytes[] = [];
  const blobOffsets = new Map<string, number>();
  let offset = 0;
  const place = (bytes: Uint8Array): void => {
    known.push({ offset, bytes });
    offset += bytes.length;
  };
  for (const file of plan.files) {
    place(tarEntryHeader({ path: file.path, type: "file", size: file.bytes.length }));
    place(file.bytes);
    offset += paddedSize(file.bytes.length) - file.bytes.length;
  }
  place(tarEntryHeader({ path: "blobs", type: "directory", size: 0 }));
  place(tarEntryHeader({ path: "blobs/sha256", type: "directory", size: 0 }));
  for (const blob of plan.blobs) {
    const { descriptor } = blob;
    place(
      tarEntryHeader({ path: blobPath(descriptor.digest), type: "file", size: descriptor.size }),
    );
    if (blob.bytes !== undefined) known.push({ offset, bytes: blob.bytes });
    else blobOffsets.set(descriptor.digest, offset);
    offset += paddedSize(descriptor.size);
  }
  return { known, blobOffsets, size: offset + END_OF_ARCHIVE_SIZE };
}
