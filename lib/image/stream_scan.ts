/**
 * One streaming pass over an archive (compressed files, standard input): small entries are kept in
 * memory for layout resolution; large ones are handed, one at a time in archive order, to a
 * consumer that processes their bytes as they stream past.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { SNIFF_LENGTH } from "../bytes/compression_sniff.ts";
import { concatBytes, peekStream } from "../bytes/peek.ts";
import { archiveCompression, decompressStream } from "./compression.ts";
import { EntryTable, TableEntryView } from "./entry_table.ts";
import { parseTarStream } from "./tar_stream.ts";
import type { Compression } from "../oci/media_types.ts";
import type { EntryView } from "./types.ts";

/** Entries up to this size are kept in memory by default (manifests are at most 4 MiB). */
export const DEFAULT_MEMORY_LIMIT = 4 * 1024 * 1024;

/** Receives a large entry's bytes; must read (or cancel) `body` and resolve to its result. */
export type LargeEntryHandler<T> = (
  path: string,
  size: number,
  body: ReadableStream<Uint8Array>,
) => Promise<T>;

/** Options of {@link scanArchiveStream}. */
export interface StreamScanOptions {
  /** Names the archive in messages (a file path or `stdin`). Defaults to `archive`. */
  name?: string;
  /** Regular entries up to this many bytes are buffered; larger ones go to the handler. */
  memoryLimit?: number;
}

/** What one pass found. */
export interface StreamScanResult<T> {
  /** Every entry; `read()` works for the buffered ones. */
  view: EntryView;
  /** Handler results for the large entries, by entry path. */
  large: Map<string, T>;
  /** The compression the stream's magic bytes showed (already undone). */
  compression: Compression;
}

class BufferedView extends TableEntryView {
  readonly #buffers: Map<string, Uint8Array>;
  readonly #name: string;

  constructor(table: EntryTable, buffers: Map<string, Uint8Array>, name: string) {
    super(table);
    this.#buffers = buffers;
    this.#name = name;
  }

  read(path: string): Promise<Uint8Array> {
    try {
      const target = this.table.resolve(path);
      const bytes = this.#buffers.get(target);
      if (bytes === undefined) {
        throw new PusherError(
          "input",
          `${this.#name}: entry "${target}" (${
            this.table.size(target)
          } bytes) is too large to read as a document`,
        );
      }
      return Promise.resolve(bytes);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    total += chunk.length;
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0].slice();
  return concatBytes(chunks, total);
}

/**
 * Reads an archive in one pass. The stream may be a plain tar or a gzip/zstd-compressed one (told
 * by its magic bytes). Regular entries up to `memoryLimit` bytes are buffered; each larger one is
 * passed to `onLargeEntry` and the pass waits for its result before going on. Whatever a handler
 * leaves unread is skipped. A handler's error stops the pass and is rethrown.
 */
export async function scanArchiveStream<T>(
  stream: ReadableStream<Uint8Array>,
  onLargeEntry: LargeEntryHandler<T>,
  options: StreamScanOptions = {},
): Promise<StreamScanResult<T>> {
  const name = options.name ?? "archive";
  const memoryLimit = options.memoryLimit ?? DEFAULT_MEMORY_LIMIT;
  const peeked = await peekStream(stream, SNIFF_LENGTH);
  if (peeked.head.length === 0) {
    await peeked.stream.cancel();
    throw new PusherError("input", `${name} is empty`);
  }
  let compression: Compression;
  try {
    compression = archiveCompression(peeked.head, name);
  } catch (error) {
    await peeked.stream.cancel();
    throw error;
  }
  const tar = decompressStream(peeked.stream, compression, name);
  const table = new EntryTable(name);
  const buffers = new Map<string, Uint8Array>();
  const large = new Map<string, T>();
  for await (const { header, body } of parseTarStream(tar, name)) {
    table.add(header);
    buffers.delete(header.path);
    large.delete(header.path);
    if (header.type !== "file") continue;
    if (header.size <= memoryLimit) {
      buffers.set(header.path, await readAll(body));
    } else {
      large.set(header.path, await onLargeEntry(header.path, header.size, body));
    }
  }
  return { view: new BufferedView(table, buffers, name), large, compression };
}
