/**
 * A streaming tar parser: one pass over a `ReadableStream`, yielding entries one at a time, each
 * with a body stream. Header handling is the same as the seek-based index (ustar prefix, GNU long
 * names, PAX, base-256 sizes, links).
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { paddedSize, readNextEntry, type TarEntryHeader, type TarSource } from "./tar_header.ts";

/** One entry of a streamed archive. */
export interface TarStreamEntry {
  /** The entry's header. */
  header: TarEntryHeader;
  /**
   * The entry's data (empty for links and directories). Read it to the end or cancel it before
   * asking for the next entry; whatever is left unread is skipped then, and the stream is closed.
   */
  body: ReadableStream<Uint8Array>;
}

const EMPTY = new Uint8Array(0);

/** Buffered sequential reads over a stream reader. */
class StreamTarSource implements TarSource {
  position = 0;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #name: string;
  #chunk: Uint8Array = EMPTY;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>, name: string) {
    this.#reader = reader;
    this.#name = name;
  }

  /** Makes unread bytes available; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    while (this.#chunk.length === 0) {
      const { done, value } = await this.#reader.read();
      if (done) return false;
      this.#chunk = value;
    }
    return true;
  }

  async read(length: number): Promise<Uint8Array | undefined> {
    if (!(await this.#fill())) return undefined;
    if (this.#chunk.length >= length) {
      const bytes = this.#chunk.subarray(0, length);
      this.#advance(length);
      return bytes;
    }
    const bytes = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (!(await this.#fill())) throw this.#truncated();
      const piece = this.#chunk.subarray(0, length - filled);
      bytes.set(piece, filled);
      filled += piece.length;
      this.#advance(piece.length);
    }
    return bytes;
  }

  /** Up to `max` bytes from the current chunk (no copy); undefined at the end of the stream. */
  async readSome(max: number): Promise<Uint8Array | undefined> {
    if (!(await this.#fill())) return undefined;
    const bytes = this.#chunk.subarray(0, max);
    this.#advance(bytes.length);
    return bytes;
  }

  async skip(length: number): Promise<void> {
    let left = length;
    while (left > 0) {
      if (!(await this.#fill())) throw this.#truncated();
      const step = Math.min(left, this.#chunk.length);
      this.#advance(step);
      left -= step;
    }
  }

  /** Reads and discards everything up to the end of the stream. */
  async drain(): Promise<void> {
    this.#chunk = EMPTY;
    for (;;) {
      const { done } = await this.#reader.read();
      if (done) return;
    }
  }

  #advance(count: number): void {
    this.#chunk = this.#chunk.subarray(count);
    this.position += count;
  }

  #truncated(): PusherError {
    return new PusherError(
      "input",
      `${this.#name} is truncated: the data ends at byte ${this.position} inside an entry`,
      { hint: "the archive was cut short (interrupted download or copy); re-create it" },
    );
  }
}

/** Tracks one entry's body: bytes left, and any read in progress. */
class BodyState {
  remaining: number;
  reading: Promise<void> = Promise.resolve();
  finished = false;

  constructor(size: number) {
    this.remaining = size;
  }
}

function bodyStream(
  source: StreamTarSource,
  state: BodyState,
  name: string,
  path: string,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull(controller): Promise<void> {
      const step = async (): Promise<void> => {
        if (state.finished) {
          controller.error(
            new PusherError("internal", `entry "${path}" was read after the parser moved on`),
          );
          return;
        }
        if (state.remaining === 0) {
          controller.close();
          return;
        }
        const bytes = await source.readSome(state.remaining);
        if (bytes === undefined) {
          throw new PusherError(
            "input",
            `${name} is truncated: entry "${path}" ends ${state.remaining} bytes early`,
            { hint: "the archive was cut short (interrupted download or copy); re-create it" },
          );
        }
        state.remaining -= bytes.length;
        controller.enqueue(bytes);
        if (state.remaining === 0) controller.close();
      };
      state.reading = step();
      return state.reading;
    },
  }, { highWaterMark: 0 });
}

/**
 * Parses a tar stream, yielding entries in archive order. `name` identifies the archive in error
 * messages. Input errors are thrown for bad headers, names leaving the archive, and data that ends
 * early or without an end-of-archive marker. After the marker the rest of the stream is read and
 * discarded (so a decompressor sees its trailer).
 */
export async function* parseTarStream(
  stream: ReadableStream<Uint8Array>,
  name: string,
): AsyncGenerator<TarStreamEntry, void, undefined> {
  const reader = stream.getReader();
  const source = new StreamTarSource(reader, name);
  let completed = false;
  try {
    for (;;) {
      const record = await readNextEntry(source, name);
      if (record === undefined) break;
      const state = new BodyState(record.dataSize);
      yield { header: record.header, body: bodyStream(source, state, name, record.header.path) };
      await state.reading.catch(() => {});
      state.finished = true;
      await source.skip(state.remaining + paddedSize(record.dataSize) - record.dataSize);
    }
    await source.drain();
    completed = true;
  } finally {
    if (!completed) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
