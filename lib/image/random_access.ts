/**
 * Random access to a plain tar file: one header index, then entries read by offset — whole for
 * small documents, or as streams (each with its own file handle, so several can run at once).
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { EntryTable, TableEntryView } from "./entry_table.ts";
import { fileRangeStream, openForReading, readFully } from "./file_io.ts";
import { indexTarFile, type TarIndexEntry } from "./tar_index.ts";
import type { EntryView } from "./types.ts";

/** Largest entry {@link RandomAccessArchive.read} loads whole (documents are far smaller). */
const MAX_READ_SIZE = 64 * 1024 * 1024;

/** An indexed plain tar file. */
export interface RandomAccessArchive extends EntryView {
  /** The archive file. */
  readonly path: string;
  /** Its size in bytes. */
  readonly fileSize: number;
  /**
   * Streams an entry's bytes (following links), starting `offset` bytes into the entry, in
   * 1 MiB reads through a file handle of its own, each chunk a fresh buffer marked as owned
   * ({@link ../bytes/owned_chunk.ts}): don't keep a chunk after passing it on. Throws an input
   * error when the entry is absent.
   */
  openEntry(path: string, offset?: number): ReadableStream<Uint8Array>;
}

class IndexedArchive extends TableEntryView<TarIndexEntry> implements RandomAccessArchive {
  readonly path: string;
  readonly fileSize: number;

  constructor(path: string, fileSize: number, table: EntryTable<TarIndexEntry>) {
    super(table);
    this.path = path;
    this.fileSize = fileSize;
  }

  async read(path: string): Promise<Uint8Array> {
    const entry = this.table.lookup(path);
    if (entry.size > MAX_READ_SIZE) {
      throw new PusherError(
        "input",
        `${this.path}: entry "${entry.path}" is too large to read as a document (${entry.size} bytes)`,
      );
    }
    const file = await openForReading(this.path);
    try {
      await file.seek(entry.dataOffset, Deno.SeekMode.Start);
      const bytes = new Uint8Array(entry.size);
      if (await readFully(file, bytes) < entry.size) {
        throw new PusherError("input", `${this.path} is truncated inside entry "${entry.path}"`);
      }
      return bytes;
    } finally {
      file.close();
    }
  }

  openEntry(path: string, offset = 0): ReadableStream<Uint8Array> {
    const entry = this.table.lookup(path);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > entry.size) {
      throw new PusherError(
        "internal",
        `offset ${offset} is outside entry "${entry.path}" (${entry.size} bytes)`,
      );
    }
    return fileRangeStream(
      this.path,
      entry.dataOffset + offset,
      entry.size - offset,
      `entry "${entry.path}"`,
      true,
    );
  }
}

/**
 * Indexes a plain tar file and returns random access to its entries. Throws a one-line input
 * error for a missing, empty, truncated or non-tar file.
 */
export async function openRandomAccessArchive(path: string): Promise<RandomAccessArchive> {
  const index = await indexTarFile(path);
  const table = new EntryTable<TarIndexEntry>(path);
  for (const entry of index.entries) table.add(entry);
  return new IndexedArchive(path, index.fileSize, table);
}
