/**
 * The common shape of the three progress displays (terminal, plain lines, JSON events), and the
 * bookkeeping they share: per-blob state, bytes moved, overall speed.
 *
 * @module
 */

import type { BlobInfo, BlobState, PushEvent } from "./events.ts";

/** Something that shows a push to the user. */
export interface Display {
  /** Takes one push event. */
  onEvent(event: PushEvent): void;
  /** Prints one log line without garbling the display. */
  log(line: string): void;
  /** Stops timers and leaves the terminal clean. */
  close(): void;
}

/** What the displays know about one blob. */
export interface BlobProgress {
  /** The blob. */
  info: BlobInfo;
  /** Its current state. */
  state: BlobState;
  /** Bytes sent (or processed) so far. */
  bytes: number;
  /** Total bytes expected. */
  total: number;
  /** Why it is retrying, when it is. */
  reason?: string;
}

const FINISHED: ReadonlySet<BlobState> = new Set([
  "exists",
  "mounted",
  "uploaded",
  "planned",
  "downloaded",
  "present",
]);
const MOVING: ReadonlySet<BlobState> = new Set(["uploading", "downloading"]);

/** Whether a blob state is final. */
export function isFinished(state: BlobState): boolean {
  return FINISHED.has(state);
}

/** Whether bytes of a blob are moving (up or down). */
export function isMoving(state: BlobState): boolean {
  return MOVING.has(state);
}

/** Per-blob and overall progress, updated from events. */
export class ProgressBook {
  /** Blobs in the order the push announced them. */
  readonly blobs: Map<string, BlobProgress> = new Map();
  /** Total bytes of the push. */
  totalBytes = 0;
  private readonly startedAt: number;
  private readonly clock: () => number;

  /** Creates an empty book; `clock` is injectable for tests. */
  constructor(clock: () => number = Date.now) {
    this.clock = clock;
    this.startedAt = clock();
  }

  /** Applies an event; returns the blob it touched, if any. */
  apply(event: PushEvent): BlobProgress | undefined {
    switch (event.type) {
      case "start":
        this.totalBytes = event.totalBytes;
        for (const info of event.blobs) {
          this.blobs.set(info.id, { info, state: "waiting", bytes: 0, total: info.size });
        }
        return undefined;
      case "blob": {
        const entry = this.blobs.get(event.blob.id) ??
          { info: event.blob, state: event.state, bytes: 0, total: event.blob.size };
        entry.info = event.blob;
        entry.state = event.state;
        if (event.reason === undefined) delete entry.reason;
        else entry.reason = event.reason;
        if (isFinished(event.state)) entry.bytes = entry.total;
        this.blobs.set(event.blob.id, entry);
        return entry;
      }
      case "progress": {
        const entry = this.blobs.get(event.id);
        if (!entry) return undefined;
        entry.bytes = event.bytes;
        if (event.total > 0) entry.total = event.total;
        return entry;
      }
      default:
        return undefined;
    }
  }

  /** Bytes done across all blobs (finished ones count whole). */
  doneBytes(): number {
    let done = 0;
    for (const blob of this.blobs.values()) done += Math.min(blob.bytes, blob.total);
    return done;
  }

  /** Bytes expected across all blobs. */
  expectedBytes(): number {
    let total = 0;
    for (const blob of this.blobs.values()) total += blob.total;
    return Math.max(total, this.totalBytes);
  }

  /** Average speed since the start, bytes per second. */
  speed(): number {
    const seconds = (this.clock() - this.startedAt) / 1000;
    return seconds > 0 ? this.doneBytes() / seconds : 0;
  }

  /** Estimated milliseconds left, or Infinity when unknown. */
  etaMs(): number {
    const speed = this.speed();
    if (speed <= 0) return Infinity;
    return ((this.expectedBytes() - this.doneBytes()) / speed) * 1000;
  }
}
