/**
 * The free-space check a pull makes before it starts: the archive's exact size is known from
 * the manifests, so a disk that cannot hold it fails at once instead of hours later.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { PusherError } from "../errors.ts";
import { formatBytes } from "../logging/format.ts";

/** Bytes available to this user on the filesystem holding `directory`. */
export async function freeBytes(directory: string): Promise<number> {
  const info = await statfs(directory);
  return info.bavail * info.bsize;
}

/**
 * Throws an `input` error when the filesystem of `directory` has fewer than `needed` bytes free
 * for `what`.
 */
export async function requireFreeSpace(
  directory: string,
  needed: number,
  what: string,
): Promise<void> {
  let free: number;
  try {
    free = await freeBytes(directory);
  } catch (error) {
    throw new PusherError("input", `cannot check the free space in ${directory}`, {
      cause: error,
      hint: "does the directory exist?",
    });
  }
  if (free < needed) {
    throw new PusherError(
      "input",
      `not enough disk space for ${what}: it needs ${formatBytes(needed)}, ${directory} has ` +
        `${formatBytes(free)} free`,
      { hint: "free some space or write the archive elsewhere" },
    );
  }
}
