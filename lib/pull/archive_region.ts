/**
 * A blob's place inside the partial archive file, as a {@link BlobSink}: bytes are written at
 * the blob's offset plus what the region holds, and a running sha256 covers them. Each region
 * has its own file handle, so parallel downloads never share a file position, and a region seeks
 * only before its first write and after a restart. Opening a region
 * that an earlier run filled partly hashes the bytes already there first.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { writeFully } from "../image/file_io.ts";
import type { Hasher } from "../bytes/sha256.ts";
import type { BlobSink } from "./blob_fetch.ts";
import { hashFileBytes } from "./partial_file.ts";

/** One blob's bytes inside the archive file. */
export class ArchiveRegion implements BlobSink {
  #file: Deno.FsFile;
  #offset: number;
  #capacity: number;
  #hasher: Hasher;
  #size: number;
  /** Whether the file position is the region's offset plus its size (no seek needed). */
  #positioned = false;

  private constructor(
    file: Deno.FsFile,
    offset: number,
    capacity: number,
    hasher: Hasher,
    size: number,
  ) {
    this.#file = file;
    this.#offset = offset;
    this.#capacity = capacity;
    this.#hasher = hasher;
    this.#size = size;
  }

  /**
   * Opens the region of `capacity` bytes at `offset` in `path`, of which the first `held` bytes
   * are already the blob's (hashed now; the download continues after them).
   */
  static async open(
    path: string,
    offset: number,
    capacity: number,
    held: number,
  ): Promise<ArchiveRegion> {
    if (held < 0 || held > capacity) {
      throw new PusherError("internal", `a region of ${capacity} bytes cannot hold ${held}`);
    }
    const file = await Deno.open(path, { read: true, write: true });
    try {
      await file.seek(offset, Deno.SeekMode.Start);
      const { hasher, size } = await hashFileBytes(file, held);
      if (size < held) {
        throw new PusherError("internal", `the archive file ends inside a blob at ${offset}`);
      }
      return new ArchiveRegion(file, offset, capacity, hasher, held);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** Bytes of the blob held. */
  get size(): number {
    return this.#size;
  }

  /** Writes `chunk` after the bytes held; more than the region's capacity is an internal error. */
  async append(chunk: Uint8Array): Promise<void> {
    if (this.#size + chunk.byteLength > this.#capacity) {
      throw new PusherError("internal", "a download overran its place in the archive");
    }
    if (!this.#positioned) await this.#file.seek(this.#offset + this.#size, Deno.SeekMode.Start);
    // A failed write leaves the position unknown: the next append seeks again.
    this.#positioned = false;
    await writeFully(this.#file, chunk);
    this.#positioned = true;
    this.#hasher.update(chunk);
    this.#size += chunk.byteLength;
  }

  /** Starts the region over; later bytes overwrite the old ones (the same blob's, or unused). */
  restart(): Promise<void> {
    this.#hasher.reset();
    this.#size = 0;
    this.#positioned = false;
    return Promise.resolve();
  }

  /** `sha256:<hex>` of the bytes held. */
  digest(): string {
    return this.#hasher.digest();
  }

  /** Closes the region's file handle (the archive is flushed once, when it is complete). */
  close(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}
