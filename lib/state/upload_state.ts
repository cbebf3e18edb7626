/**
 * Resume state across runs: for one registry, the upload sessions still open — per target
 * repository, source layer and encoder, the newest `Location` and the bytes the registry
 * acknowledged. A re-run after Ctrl-C, a kill, a reboot or a lost link asks the registry about
 * each one and continues where it stands. Finished layers are not kept here: the layer cache
 * records them.
 *
 * The file is written atomically and at most once per `minIntervalMs` while uploads run (a kill
 * loses at most that much acknowledged progress), and at once before a final PUT
 * ({@link UploadState.finishing}) and on {@link UploadState.flush}. A
 * corrupt or foreign file is ignored with a warning; sessions older than a week are dropped
 * (registries purge them after 7 days).
 *
 * @module
 */

import { join } from "node:path";
import { type BlobRef, isBlobRef } from "../oci/descriptor.ts";
import { moduleLogger } from "../logging/logger.ts";
import { readRegistryFile, registryFilePath, writeFileAtomic } from "./cache_dir.ts";

/** An open upload session as saved. */
export interface SavedUpload {
  /** The newest `Location` of the session (absolute URL). */
  location: string;
  /** Bytes the registry acknowledged. */
  offset: number;
  /** When it was last saved (epoch milliseconds). */
  updatedAt: number;
  /**
   * What the uploaded bytes are, once every byte went up and the final PUT (which may land
   * unacknowledged) is about to be sent.
   */
  blob?: BlobRef;
}

/** The part of the state one upload uses: its own saved session. */
export interface SessionMemory {
  /** The saved session, if any. */
  recall(): SavedUpload | undefined;
  /** Saves the session's newest location and acknowledged offset (throttled). */
  remember(session: { location: URL; offset: number }): void;
  /** Drops the saved session (the upload finished or was abandoned). */
  forget(): void;
}

/** Options of {@link UploadState.load}. */
export interface UploadStateOptions {
  /** Least time between two writes while uploads run; 1000 ms by default. */
  minIntervalMs?: number;
  /** Clock; `Date.now` by default. */
  now?: () => number;
}

interface StateFile {
  format: "docker-image-pusher/uploads";
  version: 1;
  registry: string;
  uploads: Record<string, SavedUpload>;
}

const FORMAT = "docker-image-pusher/uploads";
const MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
const MAX_ENTRIES = 1000;
const log = moduleLogger("cache");

function isSavedUpload(value: unknown): value is SavedUpload {
  if (typeof value !== "object" || value === null) return false;
  const entry = value as Record<string, unknown>;
  if (typeof entry["location"] !== "string" || !URL.canParse(entry["location"])) return false;
  return typeof entry["offset"] === "number" && Number.isSafeInteger(entry["offset"]) &&
    entry["offset"] >= 0 && typeof entry["updatedAt"] === "number" &&
    Number.isFinite(entry["updatedAt"]) &&
    (entry["blob"] === undefined || isBlobRef(entry["blob"]));
}

/** The open upload sessions of one registry, loaded from and saved to one JSON file. */
export class UploadState {
  readonly #path: string;
  readonly #registry: string;
  readonly #minIntervalMs: number;
  readonly #now: () => number;
  readonly #uploads = new Map<string, SavedUpload>();
  #dirty = false;
  #lastWrite = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #writes = 0;

  private constructor(path: string, registry: string, options: UploadStateOptions) {
    this.#path = path;
    this.#registry = registry;
    this.#minIntervalMs = options.minIntervalMs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** The state file of a registry inside `directory`. */
  static pathFor(directory: string, registry: string): string {
    return registryFilePath(directory, "uploads", registry);
  }

  /** The key of one upload: target repository, source layer and encoder settings. */
  static key(repository: string, source: string, encoder: string): string {
    return `${repository}|${source}|${encoder}`;
  }

  /**
   * Loads the state of `registry`; a missing file is empty, a corrupt or foreign one is ignored
   * with a warning (and replaced on the next write).
   */
  static async load(
    directory: string,
    registry: string,
    options: UploadStateOptions = {},
  ): Promise<UploadState> {
    const state = new UploadState(UploadState.pathFor(directory, registry), registry, options);
    const file = await readRegistryFile(state.#path, "resume state", FORMAT, registry);
    const uploads = (file as Partial<StateFile> | undefined)?.uploads ?? {};
    const oldest = state.#now() - MAX_AGE_MS;
    for (const [key, value] of Object.entries(uploads)) {
      if (isSavedUpload(value) && value.updatedAt >= oldest) state.#uploads.set(key, value);
    }
    return state;
  }

  /** The saved session of an upload. */
  recall(key: string): SavedUpload | undefined {
    return this.#uploads.get(key);
  }

  /**
   * Saves an upload's session (keeping what its blob is, when known: the key fixes the bytes);
   * written within `minIntervalMs`.
   */
  remember(key: string, session: { location: URL; offset: number }): void {
    const blob = this.#uploads.get(key)?.blob;
    this.#uploads.delete(key);
    this.#uploads.set(key, {
      location: session.location.href,
      offset: session.offset,
      updatedAt: this.#now(),
      ...(blob !== undefined ? { blob } : {}),
    });
    this.#changed();
  }

  /** Drops an upload's session. */
  forget(key: string): void {
    if (this.#uploads.delete(key)) this.#changed();
  }

  /**
   * Adds what the finished blob is to an upload's saved session and writes the file at once:
   * a re-run after a kill between the final PUT and its answer finds the blob by HEAD.
   */
  async finishing(key: string, blob: BlobRef): Promise<void> {
    const entry = this.#uploads.get(key);
    if (entry === undefined) return;
    const { digest, size, compression } = blob;
    this.#uploads.set(key, {
      ...entry,
      blob: { digest, size, compression },
      updatedAt: this.#now(),
    });
    this.#dirty = true;
    await this.flush();
  }

  /** The {@link SessionMemory} of one upload. */
  memory(key: string): SessionMemory {
    return {
      recall: () => this.recall(key),
      remember: (session) => this.remember(key, session),
      forget: () => this.forget(key),
    };
  }

  /** Number of writes started so far (lets tests see the throttle work). */
  get writes(): number {
    return this.#writes;
  }

  /** Writes pending changes now and waits for every write to finish. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dirty) this.#write();
    await this.#writing;
  }

  /** Schedules a write: at once when the last one is old enough, else when it will be. */
  #changed(): void {
    this.#dirty = true;
    if (this.#timer !== undefined) return;
    const wait = this.#lastWrite + this.#minIntervalMs - this.#now();
    if (wait <= 0) {
      this.#write();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#write();
    }, wait);
    Deno.unrefTimer(this.#timer);
  }

  /** Queues one atomic write of the current entries after the previous write. */
  #write(): void {
    this.#dirty = false;
    this.#lastWrite = this.#now();
    const file: StateFile = {
      format: FORMAT,
      version: 1,
      registry: this.#registry,
      uploads: Object.fromEntries([...this.#uploads.entries()].slice(-MAX_ENTRIES)),
    };
    const text = JSON.stringify(file);
    this.#writes++;
    this.#writing = this.#writing.then(async () => {
      try {
        await Deno.mkdir(join(this.#path, ".."), { recursive: true });
        await writeFileAtomic(this.#path, text);
      } catch (error) {
        log.warn(`cannot save the resume state ${this.#path}: ${String(error)}`);
      }
    });
  }
}
