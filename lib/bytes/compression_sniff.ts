/**
 * Which compression a stream of bytes is in, told by its first bytes (magic numbers), never by a
 * file name or media type. The one sniffer for archives and layers alike, so both accept the
 * same streams: a zstd stream may open with a skippable frame (pzstd and seekable zstd write
 * one), and formats this tool cannot read are named so callers can refuse them clearly.
 *
 * @module
 */

/** What {@link sniffCompression} can tell: `none` is anything without a known magic (a tar). */
export type SniffedCompression = "none" | "gzip" | "zstd" | "xz" | "bzip2" | "lz4";

/** Bytes of a stream's start that {@link sniffCompression} needs to tell every format apart. */
export const SNIFF_LENGTH = 6;

const MAGIC: ReadonlyArray<readonly [SniffedCompression, readonly number[]]> = [
  ["gzip", [0x1f, 0x8b]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["lz4", [0x04, 0x22, 0x4d, 0x18]],
];

/** The last three bytes of a zstd skippable frame's magic; its first byte is 0x50 to 0x5f. */
const SKIPPABLE_FRAME_TAIL = [0x2a, 0x4d, 0x18];

function startsWith(head: Uint8Array, magic: readonly number[], from = 0): boolean {
  return magic.length <= head.length - from &&
    magic.every((byte, index) => head[from + index] === byte);
}

/**
 * The compression the first bytes of a stream announce (pass at least {@link SNIFF_LENGTH} of
 * them, or all of a shorter stream); `"none"` when no known magic is present.
 */
export function sniffCompression(head: Uint8Array): SniffedCompression {
  for (const [name, magic] of MAGIC) {
    if (startsWith(head, magic)) return name;
  }
  const first = head[0];
  if (first !== undefined && (first & 0xf0) === 0x50 && startsWith(head, SKIPPABLE_FRAME_TAIL, 1)) {
    return "zstd";
  }
  return "none";
}
