/**
 * A blob being downloaded into a staging directory: `<dir>/blobs/sha256/<hex>.partial` grows as
 * bytes arrive, a running sha256 covers every byte in it, and it becomes `<hex>` only once its
 * digest matched. Opening an existing `.partial` (left by a cut connection or an earlier run)
 * first hashes the bytes already there, so the download continues from its size.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { Hasher } from "../bytes/sha256.ts";
import { PusherError } from "../errors.ts";
import { writeFully } from "../image/file_io.ts";

/** Where a blob lives in a staging directory. */
export interface StagingPaths {
  /** The finished, verified blob: `<dir>/blobs/sha256/<hex>`. */
  complete: string;
  /** The blob while it downloads: `<complete>.partial`. */
  partial: string;
}

const SHA256 = /^sha256:([a-f0-9]{64})$/;
const REHASH_CHUNK = 1024 * 1024;

/**
 * The staging paths of `digest` under `dir`.
 *
 * @throws {PusherError} kind `input` for a digest that is not sha256.
 */
export function stagingPaths(dir: string, digest: string): StagingPaths {
  const hex = SHA256.exec(digest)?.[1];
  if (hex === undefined) {
    throw new PusherError("input", `cannot download blob ${digest}: only sha256 digests are read`);
  }
  const complete = join(dir, "blobs", "sha256", hex);
  return { complete, partial: `${complete}.partial` };
}

/** Size of a regular file, `undefined` when it doesn't exist. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** What {@link hashFileBytes} read. */
export interface HashedBytes {
  /** The running sha256 of the bytes read, to go on with. */
  hasher: Hasher;
  /** How many bytes were read. */
  size: number;
}

/**
 * Hashes the bytes of `file` from its current position: `length` of them, or all to its end when
 * `length` is undefined. Fewer bytes come back when the file ends first.
 */
export async function hashFileBytes(file: Deno.FsFile, length?: number): Promise<HashedBytes> {
  const hasher = new Hasher();
  const limit = length ?? Infinity;
  const buffer = new Uint8Array(Math.min(REHASH_CHUNK, Math.max(limit, 1)));
  let size = 0;
  while (size < limit) {
    const read = await file.read(buffer.subarray(0, Math.min(buffer.length, limit - size)));
    if (read === null) break;
    hasher.update(buffer.subarray(0, read));
    size += read;
  }
  return { hasher, size };
}

/** An open `.partial` file with the sha256 of its content so far. */
export class PartialBlobFile {
  /** The file's path. */
  readonly path: string;
  #file: Deno.FsFile;
  #hasher: Hasher;
  #size: number;

  private constructor(path: string, file: Deno.FsFile, held: HashedBytes) {
    this.path = path;
    this.#file = file;
    this.#hasher = held.hasher;
    this.#size = held.size;
  }

  /**
   * Opens (creating it and its directory when missing) the partial file at `path`, hashing the
   * bytes it already holds; further writes go to its end.
   */
  static async open(path: string): Promise<PartialBlobFile> {
    await Deno.mkdir(dirname(path), { recursive: true });
    const file = await Deno.open(path, { read: true, write: true, create: true });
    try {
      return new PartialBlobFile(path, file, await hashFileBytes(file));
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** Bytes in the file. */
  get size(): number {
    return this.#size;
  }

  /** Appends `chunk` and adds it to the hash. */
  async append(chunk: Uint8Array): Promise<void> {
    await writeFully(this.#file, chunk);
    this.#hasher.update(chunk);
    this.#size += chunk.byteLength;
  }

  /** Empties the file, for a download that has to start again from byte 0. */
  async restart(): Promise<void> {
    await this.#file.truncate(0);
    await this.#file.seek(0, Deno.SeekMode.Start);
    this.#hasher.reset();
    this.#size = 0;
  }

  /** `sha256:<hex>` of the content so far. */
  digest(): string {
    return this.#hasher.digest();
  }

  /** Flushes the file to disk and closes it. */
  async close(): Promise<void> {
    try {
      await this.#file.sync();
    } finally {
      this.#file.close();
    }
  }

  /** Closes the file without flushing it (after a failure). */
  abandon(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}
