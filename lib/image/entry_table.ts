/**
 * The path side of an {@link EntryView}: which entries exist, their sizes, and symlink/hardlink
 * resolution. Shared by the random-access and streaming readers.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { TarEntryHeader } from "./tar_header.ts";
import { normalizeEntryPath, resolveSymlinkTarget } from "./tar_path.ts";
import type { EntryView } from "./types.ts";

/** Links followed before a chain is declared a loop. */
const MAX_LINK_HOPS = 40;

/** Entries of one archive by path; a later entry with the same path replaces an earlier one. */
export class EntryTable<E extends TarEntryHeader = TarEntryHeader> {
  readonly #source: string;
  readonly #entries = new Map<string, E>();

  /** Creates an empty table; `source` names the archive in error messages. */
  constructor(source: string) {
    this.#source = source;
  }

  /** Records an entry. */
  add(entry: E): void {
    this.#entries.delete(entry.path);
    this.#entries.set(entry.path, entry);
  }

  /** Regular-file entry paths in archive order. */
  paths(): string[] {
    const paths: string[] = [];
    for (const entry of this.#entries.values()) if (entry.type === "file") paths.push(entry.path);
    return paths;
  }

  /** Whether `path` names a regular file, following links. */
  has(path: string): boolean {
    return typeof this.#follow(path) !== "string";
  }

  /** The regular-file entry `path` leads to, following links; throws an input error otherwise. */
  lookup(path: string): E {
    const found = this.#follow(path);
    if (typeof found === "string") throw new PusherError("input", found);
    return found;
  }

  /** The size of the entry `path` leads to. */
  size(path: string): number {
    return this.lookup(path).size;
  }

  /** The normalised path of the regular file `path` leads to. */
  resolve(path: string): string {
    return this.lookup(path).path;
  }

  /** Follows links from `path`; returns the file entry, or a message saying why there is none. */
  #follow(path: string): E | string {
    const start = normalizeEntryPath(path);
    if (start === undefined || start === "") {
      return `${this.#source}: "${path}" is not a valid entry path`;
    }
    let current = start;
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      const entry = this.#entries.get(current);
      if (entry === undefined) {
        return current === start
          ? `${this.#source}: entry "${start}" is not in the archive`
          : `${this.#source}: entry "${start}" links to "${current}", which is not in the archive`;
      }
      if (entry.type === "file") return entry;
      if (entry.type !== "symlink" && entry.type !== "hardlink") {
        return `${this.#source}: entry "${current}" is a ${entry.type}, not a file`;
      }
      const target = entry.type === "symlink"
        ? resolveSymlinkTarget(current, entry.linkTarget ?? "")
        : entry.linkTarget;
      if (target === undefined || target === "") {
        return `${this.#source}: symlink "${current}" points outside the archive ("${entry.linkTarget}")`;
      }
      current = target;
    }
    return `${this.#source}: entry "${start}" is part of a link loop`;
  }
}

/** An {@link EntryView} answered by an entry table; subclasses say how an entry's bytes are read. */
export abstract class TableEntryView<E extends TarEntryHeader = TarEntryHeader>
  implements EntryView {
  /** The archive's entries. */
  protected readonly table: EntryTable<E>;

  /** Wraps an entry table. */
  constructor(table: EntryTable<E>) {
    this.table = table;
  }

  /** Every regular-file entry path. */
  paths(): string[] {
    return this.table.paths();
  }

  /** Whether a regular-file entry exists at the path, following links. */
  has(path: string): boolean {
    return this.table.has(path);
  }

  /** The size of an entry, following links. */
  size(path: string): number {
    return this.table.size(path);
  }

  /** The entry a path leads to, following links. */
  resolve(path: string): string {
    return this.table.resolve(path);
  }

  /** Reads a small entry whole. */
  abstract read(path: string): Promise<Uint8Array>;
}
