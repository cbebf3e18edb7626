/**
 * A seek-based index of a plain tar file: only the 512-byte headers (and the small PAX / GNU
 * long-name bodies) are read; entry bodies are skipped with `seek`, so indexing a multi-GiB
 * archive costs a few reads per entry.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { openForReading, readFully, statArchive } from "./file_io.ts";
import { paddedSize, readNextEntry, type TarEntryHeader, type TarSource } from "./tar_header.ts";

/** An indexed entry: its header plus where its data lies in the file. */
export interface TarIndexEntry extends TarEntryHeader {
  /** Byte offset of the entry's first data byte in the file. */
  dataOffset: number;
}

/** Every entry of a tar file, in archive order. */
export interface TarIndex {
  /** The file indexed. */
  path: string;
  /** Its size in bytes. */
  fileSize: number;
  /** Entries in archive order (a later entry with the same path replaces an earlier one). */
  entries: TarIndexEntry[];
}

/** Bytes read at once: neighbouring headers of small entries then come from one read. */
const WINDOW_SIZE = 64 * 1024;

class FileTarSource implements TarSource {
  position = 0;
  readonly #file: Deno.FsFile;
  readonly #path: string;
  readonly #size: number;
  #window = new Uint8Array(0);
  #windowStart = 0;

  constructor(file: Deno.FsFile, path: string, size: number) {
    this.#file = file;
    this.#path = path;
    this.#size = size;
  }

  async read(length: number): Promise<Uint8Array | undefined> {
    if (this.position >= this.#size) return undefined;
    if (this.position + length > this.#size) throw this.#truncated();
    let offset = this.position - this.#windowStart;
    if (offset < 0 || offset + length > this.#window.length) {
      await this.#file.seek(this.position, Deno.SeekMode.Start);
      const window = new Uint8Array(
        Math.min(Math.max(length, WINDOW_SIZE), this.#size - this.position),
      );
      this.#window = window.subarray(0, await readFully(this.#file, window));
      this.#windowStart = this.position;
      offset = 0;
      if (this.#window.length < length) throw this.#truncated();
    }
    this.position += length;
    return this.#window.slice(offset, offset + length);
  }

  skip(length: number): Promise<void> {
    this.position += length;
    if (this.position > this.#size) return Promise.reject(this.#truncated());
    return Promise.resolve();
  }

  #truncated(): PusherError {
    return new PusherError(
      "input",
      `${this.#path} is truncated: an entry runs past the end of the file (${this.#size} bytes)`,
      { hint: "the archive was cut short (interrupted download or copy); re-create it" },
    );
  }
}

/**
 * Indexes a plain (uncompressed) tar file by reading its headers only. Throws a one-line input
 * error for a missing, empty, truncated or non-tar file and for entry names leaving the archive.
 */
export async function indexTarFile(path: string): Promise<TarIndex> {
  const info = await statArchive(path);
  const file = await openForReading(path);
  try {
    const source = new FileTarSource(file, path, info.size);
    const entries: TarIndexEntry[] = [];
    for (;;) {
      const record = await readNextEntry(source, path);
      if (record === undefined) break;
      entries.push({ ...record.header, dataOffset: record.dataOffset });
      await source.skip(paddedSize(record.dataSize));
    }
    return { path, fileSize: info.size, entries };
  } finally {
    file.close();
  }
}
