/**
 * A blob being downloaded into a staging directory: `<dir>/blobs/sha256/<hex>.partial` grows as
 * bytes arrive, a running sha256 covers every byte in it, and it becomes `<hex>` only once its
 * digest matched. Opening an existing `.partial` (left by a cut connection or an earlier run)
 * first hashes the bytes already there, so the download continues from its size.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { dirname, join } from "node:path";
import { PusherError } from "../errors.ts";

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

/** An open `.partial` file with the sha256 of its content so far. */
export class PartialBlobFile {
  /** The file's path. */
  readonly path: string;
  #file: Deno.FsFile;
  #hash: Hash;
  #size: number;

  private constructor(path: string, file: Deno.FsFile, hash: Hash, size: number) {
    this.path = path;
    this.#file = file;
    this.#hash = hash;
    this.#size = size;
  }

  /**
   * Opens (creating it and its directory when missing) the partial file at `path`, hashing the
   * bytes it already holds; further writes go to its end.
   */
  static async open(path: string): Promise<PartialBlobFile> {
    await Deno.mkdir(dirname(path), { recursive: true });
    const file = await Deno.open(path, { read: true, write: true, create: true });
    try {
      const hash = createHash("sha256");
      const buffer = new Uint8Array(REHASH_CHUNK);
      let size = 0;
      for (;;) {
        const read = await file.read(buffer);
        if (read === null) break;
        hash.update(buffer.subarray(0, read));
        size += read;
      }
      return new PartialBlobFile(path, file, hash, size);
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
    let written = 0;
    while (written < chunk.byteLength) {
      written += await this.#file.write(chunk.subarray(written));
    }
    this.#hash.update(chunk);
    this.#size += chunk.byteLength;
  }

  /** Empties the file, for a download that has to start again from byte 0. */
  async restart(): Promise<void> {
    await this.#file.truncate(0);
    await this.#file.seek(0, Deno.SeekMode.Start);
    this.#hash = createHash("sha256");
    this.#size = 0;
  }

  /** `sha256:<hex>` of the content so far. */
  digest(): string {
    return `sha256:${this.#hash.copy().digest("hex")}`;
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
