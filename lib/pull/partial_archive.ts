/**
 * The archive a pull is filling: `<output>.partial.d/archive.tar`, laid out in full from the
 * start (headers and manifests written, blobs left as holes of a sparse file), with each blob
 * downloaded straight into its place. `progress.json` next to it records which blobs are
 * verified and how many bytes of the others are written, so a run that was killed continues
 * where it stopped. Only a completed archive is renamed to the output path.
 *
 * Disk use: the partial archive never takes more than the finished archive (blobs are written
 * once, at their final offsets, and nothing is copied), plus `progress.json`.
 *
 * @module
 */

import { Hasher } from "../bytes/sha256.ts";
import { writeFully } from "../image/file_io.ts";
import { PusherError } from "../errors.ts";
import type { ArchiveLayout } from "./archive_layout.ts";
import { ArchiveRegion } from "./archive_region.ts";
import { fileSize } from "./partial_file.ts";

/** The files of a partial archive. */
export interface PartialArchivePaths {
  /** `<output>.partial.d`, removed once the archive is complete. */
  dir: string;
  /** The archive being filled. */
  archive: string;
  /** Which blobs are in it. */
  progress: string;
}

/** What `progress.json` holds. */
interface ProgressRecord {
  version: 1;
  /** Fingerprint of the layout the archive was created for. */
  layout: string;
  /** Verified blobs. */
  done: string[];
  /** Bytes written of blobs not yet verified (a lower bound of what is on disk). */
  held: Record<string, number>;
}

const PROGRESS_VERSION = 1;
/** Progress is saved at most this often while bytes arrive (and whenever a blob completes). */
const SAVE_INTERVAL_MS = 1000;

/** The partial files of the archive that will be written to `output`. */
export function partialArchivePaths(output: string): PartialArchivePaths {
  const dir = `${output}.partial.d`;
  return { dir, archive: `${dir}/archive.tar`, progress: `${dir}/progress.json` };
}

/** A stable fingerprint of a layout: the same pull gives the same one. */
function layoutFingerprint(layout: ArchiveLayout): string {
  const hash = new Hasher();
  hash.update(`${layout.size}\n`);
  for (const piece of layout.known) {
    hash.update(`${piece.offset} ${piece.bytes.length}\n`).update(piece.bytes);
  }
  for (const [digest, offset] of layout.blobOffsets) hash.update(`${digest} ${offset}\n`);
  return hash.digest();
}

async function readProgress(path: string): Promise<ProgressRecord | undefined> {
  try {
    const value: unknown = JSON.parse(await Deno.readTextFile(path));
    if (typeof value !== "object" || value === null) return undefined;
    const record = value as Partial<ProgressRecord>;
    if (
      record.version !== PROGRESS_VERSION || typeof record.layout !== "string" ||
      !Array.isArray(record.done) || typeof record.held !== "object" || record.held === null
    ) {
      return undefined;
    }
    return record as ProgressRecord;
  } catch {
    return undefined;
  }
}

/** Creates the archive file with everything but the blobs in place. */
async function createArchive(paths: PartialArchivePaths, layout: ArchiveLayout): Promise<void> {
  await Deno.remove(paths.dir, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.mkdir(paths.dir, { recursive: true });
  const file = await Deno.open(paths.archive, { write: true, create: true, truncate: true });
  try {
    for (const piece of layout.known) {
      await file.seek(piece.offset, Deno.SeekMode.Start);
      await writeFully(file, piece.bytes);
    }
    // The rest (padding, the end-of-archive blocks, the blobs to come) reads as zeros.
    await file.truncate(layout.size);
  } finally {
    file.close();
  }
}

/** Flushes the file at `path` to disk (data and metadata). */
async function syncFile(path: string): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true });
  try {
    await file.sync();
  } finally {
    file.close();
  }
}

/** An archive being filled, and its saved progress. */
export class PartialArchive {
  /** Its files. */
  readonly paths: PartialArchivePaths;
  /** Whether an earlier run's archive is being continued. */
  readonly resumed: boolean;
  #layout: ArchiveLayout;
  #fingerprint: string;
  #done: Set<string>;
  #held: Map<string, number>;
  #saving: Promise<void> = Promise.resolve();
  #lastSave = 0;
  /** The background flushes of finished blobs, one after another. */
  #flushing: Promise<void> = Promise.resolve();
  #flushQueued = false;

  private constructor(
    paths: PartialArchivePaths,
    layout: ArchiveLayout,
    fingerprint: string,
    record: ProgressRecord | undefined,
  ) {
    this.paths = paths;
    this.#layout = layout;
    this.#fingerprint = fingerprint;
    this.resumed = record !== undefined;
    this.#done = new Set(record?.done.filter((digest) => layout.blobOffsets.has(digest)));
    this.#held = new Map(
      Object.entries(record?.held ?? {}).filter(([digest, bytes]) =>
        layout.blobOffsets.has(digest) && Number.isSafeInteger(bytes) && bytes > 0
      ),
    );
  }

  /**
   * Bytes an earlier run left for `output` that this layout can continue from (allocated blocks
   * of its archive file), or 0 when there is nothing to continue.
   */
  static async reusableBytes(output: string, layout: ArchiveLayout): Promise<number> {
    const paths = partialArchivePaths(output);
    const record = await readProgress(paths.progress);
    if (record?.layout !== layoutFingerprint(layout)) return 0;
    try {
      const info = await Deno.stat(paths.archive);
      return info.size === layout.size ? (info.blocks ?? 0) * 512 : 0;
    } catch {
      return 0;
    }
  }

  /**
   * Continues the partial archive for `output` when an earlier run left one for the same layout,
   * otherwise (nothing there, another image, a damaged progress file) starts a new one.
   */
  static async open(output: string, layout: ArchiveLayout): Promise<PartialArchive> {
    const paths = partialArchivePaths(output);
    const fingerprint = layoutFingerprint(layout);
    const record = await readProgress(paths.progress);
    const resumable = record?.layout === fingerprint &&
      await fileSize(paths.archive) === layout.size;
    if (resumable) return new PartialArchive(paths, layout, fingerprint, record);
    await createArchive(paths, layout);
    const archive = new PartialArchive(paths, layout, fingerprint, undefined);
    await archive.save();
    return archive;
  }

  /** Whether the blob is in the archive, verified. */
  isDone(digest: string): boolean {
    return this.#done.has(digest);
  }

  /** Bytes held for `digest` by an earlier run or this one (0 when none). */
  held(digest: string): number {
    return this.#held.get(digest) ?? 0;
  }

  /** Opens the blob's place in the archive, continuing after the bytes already held. */
  openRegion(digest: string, size: number): Promise<ArchiveRegion> {
    const offset = this.#layout.blobOffsets.get(digest);
    if (offset === undefined) {
      throw new PusherError("internal", `blob ${digest} has no place in the archive`);
    }
    return ArchiveRegion.open(this.paths.archive, offset, size, Math.min(this.held(digest), size));
  }

  /** Records that `bytes` of the blob are written; saved now and then. */
  noteProgress(digest: string, bytes: number): void {
    this.#held.set(digest, bytes);
    if (Date.now() - this.#lastSave >= SAVE_INTERVAL_MS) void this.save().catch(() => {});
  }

  /**
   * Records a verified blob, and saves. Its bytes start going to disk in the background, so that
   * the flush of {@link complete} has only the last blobs' bytes left to wait for.
   */
  async markDone(digest: string): Promise<void> {
    this.#done.add(digest);
    this.#held.delete(digest);
    this.#flushSoon();
    await this.save();
  }

  /** Waits for the work still running in the background (flushes, a progress save). */
  async settle(): Promise<void> {
    await Promise.all([this.#flushing, this.#saving.catch(() => {})]);
  }

  /** Queues a flush of the archive file, unless one is queued that has not started yet. */
  #flushSoon(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // A failure here is met again by the flush of `complete`, which reports it.
    this.#flushing = this.#flushing.then(() => {
      this.#flushQueued = false;
      return syncFile(this.paths.archive);
    }).catch(() => {});
  }

  /** Writes `progress.json` (through a temporary file, so a kill leaves the old or the new). */
  save(): Promise<void> {
    this.#lastSave = Date.now();
    const record: ProgressRecord = {
      version: PROGRESS_VERSION,
      layout: this.#fingerprint,
      done: [...this.#done],
      held: Object.fromEntries(this.#held),
    };
    const text = JSON.stringify(record);
    this.#saving = this.#saving.catch(() => {}).then(async () => {
      const temporary = `${this.paths.progress}.tmp`;
      await Deno.writeTextFile(temporary, text);
      await Deno.rename(temporary, this.paths.progress);
    });
    return this.#saving;
  }

  /**
   * Flushes the complete archive to disk and renames it to `output`, then removes the partial
   * directory. Throws an internal error when a blob is missing.
   */
  async complete(output: string): Promise<void> {
    const missing = [...this.#layout.blobOffsets.keys()].filter((digest) =>
      !this.#done.has(digest)
    );
    if (missing.length > 0) {
      throw new PusherError("internal", `the archive is missing ${missing.length} blob(s)`);
    }
    await this.settle();
    await syncFile(this.paths.archive);
    await Deno.rename(this.paths.archive, output);
    await Deno.remove(this.paths.dir, { recursive: true });
  }
}
