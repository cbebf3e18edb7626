/**
 * The LIST of a sync: one image per line, `[--platform=P[,P…]] SOURCE [=> TARGET]`, `#` comments
 * and blank lines ignored. SOURCE is a registry reference, or an image archive written as a path
 * (`./app.tar`, `../x.tar`, `/srv/app.tar`; relative paths from the list's own directory). A line
 * without `=> TARGET` lands under the sync's prefix (see {@link mirrorTarget}); an archive's name
 * comes from the archive. Every problem is found before anything is transferred and is reported
 * with its place in the list (`images.txt:7: …`).
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "node:path";
import { PusherError } from "../errors.ts";
import { parsePlatform } from "../oci/platform.ts";
import { formatReference, parseReference, type Reference } from "../registry/reference.ts";
import { mirrorTarget, type TargetNaming } from "./target_name.ts";

/** Where a line's image comes from. */
export type SyncSource =
  | {
    /** A registry reference, copied with `copy()`. */
    kind: "registry";
    /** The reference as written. */
    reference: string;
  }
  | {
    /** An image archive, pushed with `push()`. */
    kind: "archive";
    /** The archive's path, resolved against the list's directory. */
    path: string;
  };

/** One line of a LIST as written, before archives are looked at and targets are named. */
export interface ListEntry {
  /** 1-based line number. */
  line: number;
  /** `--platform` values (each `OS/ARCH[/VARIANT]`), in order. */
  platforms: string[];
  /** SOURCE as written. */
  source: string;
  /** TARGET as written, when the line has `=> TARGET`. */
  target?: string;
}

/** One image to sync. */
export interface SyncLine {
  /** 1-based line number in the list. */
  line: number;
  /** The line's place for messages: `images.txt:7`. */
  location: string;
  /** Where the image comes from. */
  source: SyncSource;
  /** The target reference. */
  target: string;
  /** `--platform` filters (registry sources only); empty keeps every platform. */
  platforms: string[];
}

const ARROW = "=>";
const PLATFORM_OPTION = "--platform=";

/** A `usage` error at a place in the list, keeping the hint of the error it explains. */
function lineError(location: string, problem: unknown): PusherError {
  if (problem instanceof PusherError) {
    return new PusherError(problem.kind, `${location}: ${problem.message}`, {
      ...(problem.hint !== undefined ? { hint: problem.hint } : {}),
      cause: problem,
    });
  }
  return new PusherError("usage", `${location}: ${String(problem)}`);
}

/** True when SOURCE is written as a file path rather than a reference. */
export function isArchivePath(source: string): boolean {
  return source.startsWith("./") || source.startsWith("../") || source.startsWith("/");
}

/** The text of a line without its comment (`#` at the start or after a space). */
function withoutComment(text: string): string {
  const comment = text.search(/(?:^|\s)#/);
  return comment === -1 ? text : text.slice(0, comment);
}

/**
 * Parses one line's words; `undefined` for a blank or comment line.
 *
 * @throws {PusherError} kind `usage` (message without the location) for an unknown option, a
 * malformed platform or reference, `=>` without a target, or words left over.
 */
function parseWords(words: readonly string[], line: number): ListEntry | undefined {
  if (words.length === 0) return undefined;
  const platforms: string[] = [];
  let index = 0;
  for (; index < words.length && (words[index] ?? "").startsWith("-"); index++) {
    const word = words[index] ?? "";
    if (!word.startsWith(PLATFORM_OPTION)) {
      throw new PusherError("usage", `unknown option "${word}" (a line takes --platform=P[,P…])`);
    }
    for (const value of word.slice(PLATFORM_OPTION.length).split(",")) {
      parsePlatform(value);
      platforms.push(value);
    }
  }
  const source = words[index];
  if (source === undefined || source === ARROW) {
    throw new PusherError("usage", "the line names no source image");
  }
  if (source.includes(ARROW)) throw new PusherError("usage", `write spaces around "${ARROW}"`);
  if (!isArchivePath(source)) parseReference(source);
  else if (platforms.length > 0) {
    throw new PusherError("usage", "--platform applies to registry sources, not to archives");
  }
  const entry: ListEntry = { line, platforms, source };
  const rest = words.slice(index + 1);
  if (rest.length === 0) return entry;
  if (rest[0] !== ARROW) {
    throw new PusherError(
      "usage",
      `unexpected "${rest[0]}" after the source (expected "${ARROW} TARGET" or nothing)`,
    );
  }
  const target = rest[1];
  if (target === undefined) throw new PusherError("usage", `"${ARROW}" without a target`);
  if (rest.length > 2) throw new PusherError("usage", `unexpected "${rest[2]}" after the target`);
  if (isArchivePath(target)) {
    throw new PusherError("usage", `the target "${target}" is a path; sync writes to registries`);
  }
  parseReference(target);
  entry.target = target;
  return entry;
}

/**
 * Parses the text of a LIST (`name` is how messages call it, e.g. `images.txt`): the syntax of
 * every line, its options, references and platforms. Looks at no file.
 *
 * @throws {PusherError} kind `usage` naming the first bad line (`images.txt:7: …`), or when the
 * list names no image.
 */
export function parseListText(text: string, name: string): ListEntry[] {
  const entries: ListEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (const [offset, raw] of lines.entries()) {
    const line = offset + 1;
    const words = withoutComment(raw).trim().split(/\s+/).filter((word) => word !== "");
    let entry: ListEntry | undefined;
    try {
      entry = parseWords(words, line);
    } catch (error) {
      throw lineError(`${name}:${line}`, error);
    }
    if (entry !== undefined) entries.push(entry);
  }
  if (entries.length === 0) throw new PusherError("usage", `${name} lists no images`);
  return entries;
}

/** A line's source, its archive path resolved and checked to be a file. */
async function lineSource(entry: ListEntry, baseDirectory: string): Promise<SyncSource> {
  if (!isArchivePath(entry.source)) return { kind: "registry", reference: entry.source };
  const path = isAbsolute(entry.source) ? entry.source : resolve(baseDirectory, entry.source);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new PusherError("usage", `the archive ${entry.source} does not exist`);
  }
  if (!info.isFile) throw new PusherError("usage", `${entry.source} is not an archive file`);
  return { kind: "archive", path };
}

/** The line's target: as written, or the source's name under the prefix. */
async function lineTarget(
  entry: ListEntry,
  source: SyncSource,
  naming: TargetNaming,
): Promise<string> {
  if (entry.target !== undefined) return entry.target;
  // The archive readers are loaded only for an archive line that names no target.
  const name: Reference = source.kind === "registry"
    ? parseReference(source.reference)
    : await (await import("./archive_name.ts")).archiveImageName(source.path);
  return mirrorTarget(name, naming);
}

/**
 * Reads a LIST file and resolves every line: archive paths (relative to the list's directory)
 * exist, and every line has its target. Two lines may not write the same target.
 *
 * @throws {PusherError} kind `input` when the file can't be read; `usage` naming the first bad
 * line; the archive readers' kinds (named by line) for an archive whose name can't be read.
 */
export async function readSyncList(path: string, naming: TargetNaming): Promise<SyncLine[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new PusherError("input", `cannot read the list ${path}: ${(error as Error).message}`);
  }
  const entries = parseListText(text, path);
  const baseDirectory = dirname(resolve(path));
  const lines: SyncLine[] = [];
  const targets = new Map<string, number>();
  for (const entry of entries) {
    const location = `${path}:${entry.line}`;
    try {
      const source = await lineSource(entry, baseDirectory);
      const target = await lineTarget(entry, source, naming);
      const key = formatReference(parseReference(target));
      const earlier = targets.get(key);
      if (earlier !== undefined) {
        throw new PusherError("usage", `${target} is also the target of line ${earlier}`, {
          hint: 'give one of them its own target with "=> TARGET"',
        });
      }
      targets.set(key, entry.line);
      lines.push({ line: entry.line, location, source, target, platforms: entry.platforms });
    } catch (error) {
      throw lineError(location, error);
    }
  }
  return lines;
}
