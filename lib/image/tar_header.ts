/**
 * Tar header decoding shared by the seek-based index and the streaming parser: ustar, GNU and
 * PAX headers, `prefix` names, GNU long names (`L`/`K`), PAX `path`/`linkpath`/`size`, and octal
 * or base-256 numbers.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { normalizeEntryPath } from "./tar_path.ts";

/** Size of a tar block; headers are one block, bodies are padded to a multiple of it. */
export const BLOCK_SIZE = 512;

/** Largest PAX or GNU long-name body accepted (they hold a few names, never data). */
const MAX_EXTENSION_SIZE = 1024 * 1024;

/** What an entry is, reduced to what archive reading needs. */
export type TarEntryType = "file" | "directory" | "symlink" | "hardlink" | "other";

/** One archive entry, extension headers already applied. */
export interface TarEntryHeader {
  /** Normalised path (no leading `./`, no trailing `/`). */
  path: string;
  /** Entry type. */
  type: TarEntryType;
  /** Size of the entry's data in bytes (0 for links and directories). */
  size: number;
  /** Hardlinks: the normalised path linked to. Symlinks: the target exactly as written. */
  linkTarget?: string;
  /** Byte offset of the entry's own header (after any extension headers). */
  headerOffset: number;
}

/** A header block as written, before extension headers are applied. */
interface RawHeader {
  name: string;
  linkname: string;
  size: number;
  typeflag: string;
}

/** Extension values collected from `x`, `L` and `K` headers for the entry that follows. */
interface PendingExtensions {
  /** Path from a PAX `path` record or a GNU `L` header. */
  path?: string;
  /** Link target from a PAX `linkpath` record or a GNU `K` header. */
  linkpath?: string;
  /** Size from a PAX `size` record. */
  size?: number;
}

/** The decoded meaning of one header block. */
type HeaderRecord =
  | { kind: "end" }
  | { kind: "extension"; typeflag: string; size: number }
  | { kind: "entry"; raw: RawHeader; dataSize: number };

const decoder = new TextDecoder();

/** Rounds a body size up to a whole number of blocks. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
}

function inputError(source: string, offset: number, problem: string): PusherError {
  return new PusherError("input", `${source}: ${problem} at byte ${offset}`, {
    hint: "the file is not a complete tar archive; re-create it (docker save, skopeo copy)",
  });
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function parseNumber(field: Uint8Array, source: string, offset: number): number {
  const first = field[0] ?? 0;
  if (first & 0x80) {
    if (first === 0xff) throw inputError(source, offset, "negative base-256 number in tar header");
    let value = first & 0x7f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + (field[i] ?? 0);
      if (!Number.isSafeInteger(value)) {
        throw inputError(source, offset, "oversized base-256 number in tar header");
      }
    }
    return value;
  }
  const text = cString(field).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) {
    throw inputError(source, offset, `bad octal number "${text}" in tar header`);
  }
  return parseInt(text, 8);
}

function checksumMatches(block: Uint8Array): boolean {
  const stored = cString(block.subarray(148, 156)).trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  const expected = parseInt(stored, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i] ?? 0;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return expected === unsigned || expected === signed;
}

/** Whether a block is all zero bytes (the end-of-archive marker). */
export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Whether a 512-byte block looks like a valid tar header (its checksum matches). */
export function isTarHeader(block: Uint8Array): boolean {
  return block.length >= BLOCK_SIZE && !isZeroBlock(block.subarray(0, BLOCK_SIZE)) &&
    checksumMatches(block);
}

/**
 * Decodes one 512-byte header block. Throws an input error naming `source` and the byte offset
 * when the block is not a tar header.
 */
function decodeHeaderBlock(block: Uint8Array, source: string, offset: number): HeaderRecord {
  if (isZeroBlock(block)) return { kind: "end" };
  if (!checksumMatches(block)) {
    if (offset === 0) {
      throw new PusherError("input", `${source} is not a tar archive`, {
        hint: "expected a docker save, skopeo/podman or OCI layout archive (plain, gzip or zstd)",
      });
    }
    throw inputError(source, offset, "bad tar header checksum");
  }
  const typeflag = String.fromCharCode(block[156] ?? 0);
  const size = parseNumber(block.subarray(124, 136), source, offset);
  if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
    if (size > MAX_EXTENSION_SIZE) {
      throw inputError(source, offset, `oversized extension header (${size} bytes)`);
    }
    return { kind: "extension", typeflag, size };
  }
  let name = cString(block.subarray(0, 100));
  const magic = decoder.decode(block.subarray(257, 263));
  if (magic === "ustar\0") {
    const prefix = cString(block.subarray(345, 500));
    if (prefix !== "") name = `${prefix}/${name}`;
  }
  const raw = { name, linkname: cString(block.subarray(157, 257)), size, typeflag };
  return { kind: "entry", raw, dataSize: hasData(typeflag) ? size : 0 };
}

function hasData(typeflag: string): boolean {
  return !"123456".includes(typeflag);
}

/** Records the body of an extension header (`x`, `L`, `K`; `g` is ignored) for the next entry. */
function applyExtension(
  pending: PendingExtensions,
  typeflag: string,
  body: Uint8Array,
  source: string,
  offset: number,
): void {
  if (typeflag === "L") pending.path = cString(body);
  else if (typeflag === "K") pending.linkpath = cString(body);
  else if (typeflag === "x") {
    for (const [key, value] of parsePaxRecords(body, source, offset)) {
      if (key === "path") pending.path = value;
      else if (key === "linkpath") pending.linkpath = value;
      else if (key === "size") {
        if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
          throw inputError(source, offset, `bad PAX size "${value}"`);
        }
        pending.size = Number(value);
      }
    }
  }
}

function parsePaxRecords(body: Uint8Array, source: string, offset: number): Map<string, string> {
  const records = new Map<string, string>();
  let position = 0;
  while (position < body.length && body[position] !== 0) {
    const space = body.indexOf(0x20, position);
    const lengthText = space < 0 ? "" : decoder.decode(body.subarray(position, space));
    const length = Number(lengthText);
    if (!/^[0-9]+$/.test(lengthText) || length <= 0 || position + length > body.length) {
      throw inputError(source, offset, "malformed PAX header record");
    }
    const record = decoder.decode(body.subarray(space + 1, position + length - 1));
    const equals = record.indexOf("=");
    if (equals < 0 || body[position + length - 1] !== 0x0a) {
      throw inputError(source, offset, "malformed PAX header record");
    }
    records.set(record.slice(0, equals), record.slice(equals + 1));
    position += length;
  }
  return records;
}

/** The body size an entry header really has, once a PAX `size` record is taken into account. */
function entryDataSize(
  record: { raw: RawHeader; dataSize: number },
  pending: PendingExtensions,
): number {
  return record.dataSize === 0 || pending.size === undefined ? record.dataSize : pending.size;
}

function entryType(typeflag: string, name: string): TarEntryType {
  switch (typeflag) {
    case "0":
    case "\0":
      return name.endsWith("/") ? "directory" : "file";
    case "7":
      return "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "5":
      return "directory";
    default:
      return "other";
  }
}

/**
 * Builds the final entry from a header and the extensions that preceded it. Returns `undefined`
 * for the archive root directory (`./`). Throws an input error for names leaving the archive.
 */
function finishEntry(
  raw: RawHeader,
  pending: PendingExtensions,
  size: number,
  source: string,
  offset: number,
): TarEntryHeader | undefined {
  const name = pending.path ?? raw.name;
  const type = entryType(raw.typeflag, name);
  const path = normalizeEntryPath(name);
  if (path === undefined) {
    throw new PusherError(
      "input",
      `${source}: entry "${name}" at byte ${offset} points outside the archive`,
      { hint: "archive entry names must be relative paths without leading '..'" },
    );
  }
  if (path === "") return undefined;
  const entry: TarEntryHeader = {
    path,
    type,
    size: type === "file" ? size : 0,
    headerOffset: offset,
  };
  const linkname = pending.linkpath ?? raw.linkname;
  if (type === "symlink") entry.linkTarget = linkname;
  if (type === "hardlink") {
    const target = normalizeEntryPath(linkname);
    if (target === undefined || target === "") {
      throw new PusherError(
        "input",
        `${source}: hardlink "${name}" at byte ${offset} points outside the archive ("${linkname}")`,
      );
    }
    entry.linkTarget = target;
  }
  return entry;
}

/** Sequential access to tar bytes, by seeking (files) or by reading (streams). */
export interface TarSource {
  /** Current byte position. */
  readonly position: number;
  /**
   * Reads exactly `length` bytes; `undefined` when the source is at its end before the first
   * byte. Throws an input error when it ends part-way.
   */
  read(length: number): Promise<Uint8Array | undefined>;
  /** Moves `length` bytes forward; throws an input error when the source ends first. */
  skip(length: number): Promise<void>;
}

/** The next entry of an archive and where its data starts. */
export interface TarRecord {
  /** The entry. */
  header: TarEntryHeader;
  /** Byte offset of the first data byte. */
  dataOffset: number;
  /** Bytes of data following the header (before padding); the caller moves past them. */
  dataSize: number;
}

/**
 * Reads headers (applying extension headers) up to the next entry, leaving `source` at its data.
 * Returns `undefined` at the end-of-archive marker. Throws an input error for an archive that ends
 * without one, or for a bad header.
 */
export async function readNextEntry(
  source: TarSource,
  name: string,
): Promise<TarRecord | undefined> {
  let pending: PendingExtensions = {};
  for (;;) {
    const offset = source.position;
    const block = await source.read(BLOCK_SIZE);
    if (block === undefined) {
      throw new PusherError(
        "input",
        `${name} is truncated: it ends at byte ${offset} without the end-of-archive marker`,
        {
          hint: "the archive was cut short (interrupted download or copy); re-create it",
        },
      );
    }
    const record = decodeHeaderBlock(block, name, offset);
    if (record.kind === "end") return undefined;
    if (record.kind === "extension") {
      const body = record.size === 0 ? new Uint8Array(0) : await source.read(record.size);
      if (body === undefined) {
        throw inputError(name, source.position, "archive ends inside a header");
      }
      await source.skip(paddedSize(record.size) - record.size);
      applyExtension(pending, record.typeflag, body, name, offset);
      continue;
    }
    const dataSize = entryDataSize(record, pending);
    const header = finishEntry(record.raw, pending, dataSize, name, offset);
    if (header !== undefined) return { header, dataOffset: source.position, dataSize };
    await source.skip(paddedSize(dataSize));
    pending = {};
  }
}
