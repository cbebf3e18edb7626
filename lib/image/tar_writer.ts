/**
 * Deterministic tar headers for the archive writer: ustar blocks with fixed metadata (mtime 0,
 * uid/gid 0, no user names, mode 0644 for files and 0755 for directories), so the same entries
 * always give the same bytes. A name too long for ustar's 100-byte name plus 155-byte prefix
 * goes in a PAX `path` record; a size of 8 GiB or more, which 11 octal digits cannot hold, is
 * written in base-256 (GNU) and also as a PAX `size` record, so GNU, Go and POSIX readers agree.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { BLOCK_SIZE, paddedSize } from "./tar_header.ts";

/** One entry to write: a regular file of `size` bytes, or a directory. */
export interface TarWriteEntry {
  /** Archive-relative path, without a trailing `/` (directories get one added). */
  path: string;
  /** What the entry is. */
  type: "file" | "directory";
  /** Bytes of data that will follow the header (0 for directories). */
  size: number;
}

/** The two zero blocks that end a tar archive. */
export const END_OF_ARCHIVE_SIZE = 2 * BLOCK_SIZE;

/** Largest size the 12-byte octal field holds (11 digits). */
const MAX_OCTAL_SIZE = 0o77777777777;
const NAME_LENGTH = 100;
const PREFIX_LENGTH = 155;
const FILE_MODE = 0o644;
const DIRECTORY_MODE = 0o755;

const encoder = new TextEncoder();

function byteLength(text: string): number {
  return encoder.encode(text).length;
}

function writeText(block: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > length) {
    throw new PusherError("internal", `tar header field of ${length} bytes cannot hold "${value}"`);
  }
  block.set(bytes, offset);
}

/** An octal number padded with zeros to `length - 1` digits and ended by NUL. */
function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  writeText(block, offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
}

/** A size in the GNU base-256 form: the high bit of the first byte set, big-endian after it. */
function writeBase256(block: Uint8Array, offset: number, length: number, value: number): void {
  let rest = value;
  for (let i = offset + length - 1; i > offset; i--) {
    block[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  block[offset] = 0x80;
}

function writeChecksum(block: Uint8Array): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  writeText(block, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
}

/** Where a path goes in a ustar header, or undefined when it does not fit. */
function ustarName(path: string): { name: string; prefix: string } | undefined {
  if (byteLength(path) <= NAME_LENGTH) return { name: path, prefix: "" };
  for (let slash = path.indexOf("/"); slash >= 0; slash = path.indexOf("/", slash + 1)) {
    const prefix = path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (byteLength(prefix) > PREFIX_LENGTH) return undefined;
    if (name !== "" && byteLength(name) <= NAME_LENGTH) return { name, prefix };
  }
  return undefined;
}

interface BlockFields {
  name: string;
  prefix: string;
  mode: number;
  size: number;
  typeflag: string;
}

function headerBlock(fields: BlockFields): Uint8Array {
  const block = new Uint8Array(BLOCK_SIZE);
  writeText(block, 0, NAME_LENGTH, fields.name);
  writeOctal(block, 100, 8, fields.mode);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  if (fields.size > MAX_OCTAL_SIZE) writeBase256(block, 124, 12, fields.size);
  else writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, 0);
  block[156] = fields.typeflag.charCodeAt(0);
  writeText(block, 257, 6, "ustar\0");
  writeText(block, 263, 2, "00");
  writeText(block, 345, PREFIX_LENGTH, fields.prefix);
  writeChecksum(block);
  return block;
}

/** One PAX record, `<length> <key>=<value>\n`, where the length counts the record itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = byteLength(body);
  while (byteLength(`${length}${body}`) !== length) length = byteLength(`${length}${body}`);
  return `${length}${body}`;
}

/** `text` shortened, whole characters at a time, to at most `limit` UTF-8 bytes. */
function truncateToBytes(text: string, limit: number): string {
  let result = text;
  while (byteLength(result) > limit) result = [...result].slice(0, -1).join("");
  return result;
}

/** The name of the PAX header for `path`: its last segment under `PaxHeaders/`. */
function paxHeaderName(path: string): string {
  return truncateToBytes(`PaxHeaders/${path.slice(path.lastIndexOf("/") + 1)}`, NAME_LENGTH);
}

function validate(entry: TarWriteEntry): void {
  const problem = entry.path === "" || entry.path.startsWith("/") || entry.path.endsWith("/")
    ? "a relative path without a trailing slash"
    : !Number.isSafeInteger(entry.size) || entry.size < 0
    ? "a whole, non-negative size"
    : entry.type === "directory" && entry.size !== 0
    ? "size 0 for a directory"
    : undefined;
  if (problem !== undefined) {
    throw new PusherError(
      "internal",
      `tar entry "${entry.path}" (${entry.size} bytes) needs ${problem}`,
    );
  }
}

/**
 * The header bytes of one entry: a single 512-byte ustar block, preceded by a PAX extended header
 * when the path or the size does not fit ustar. The entry's data (for files) and
 * {@link tarPadding} follow it.
 */
export function tarEntryHeader(entry: TarWriteEntry): Uint8Array {
  validate(entry);
  const path = entry.type === "directory" ? `${entry.path}/` : entry.path;
  const fitted = ustarName(path);
  let records = "";
  if (fitted === undefined) records += paxRecord("path", path);
  if (entry.size > MAX_OCTAL_SIZE) records += paxRecord("size", String(entry.size));
  const header = headerBlock({
    name: fitted?.name ?? truncateToBytes(path, NAME_LENGTH),
    prefix: fitted?.prefix ?? "",
    mode: entry.type === "directory" ? DIRECTORY_MODE : FILE_MODE,
    size: entry.size,
    typeflag: entry.type === "directory" ? "5" : "0",
  });
  if (records === "") return header;
  const body = encoder.encode(records);
  const extension = headerBlock({
    name: paxHeaderName(entry.path),
    prefix: "",
    mode: FILE_MODE,
    size: body.length,
    typeflag: "x",
  });
  const bytes = new Uint8Array(BLOCK_SIZE + paddedSize(body.length) + BLOCK_SIZE);
  bytes.set(extension, 0);
  bytes.set(body, BLOCK_SIZE);
  bytes.set(header, bytes.length - BLOCK_SIZE);
  return bytes;
}

/** The zero bytes that pad `size` bytes of entry data to a whole block (possibly none). */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array(paddedSize(size) - size);
}

/** The end-of-archive marker: two zero blocks. */
export function endOfArchive(): Uint8Array {
  return new Uint8Array(END_OF_ARCHIVE_SIZE);
}
