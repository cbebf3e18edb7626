/**
 * Events a push emits. Progress displays, JSON output and logs observe them; they never steer.
 *
 * @module
 */

/** What is happening to one blob. */
export type BlobState =
  | "waiting"
  | "checking"
  | "uploading"
  | "retrying"
  | "exists"
  | "mounted"
  | "uploaded"
  | "planned";

/** A blob as the display knows it. */
export interface BlobInfo {
  /** Stable id within the push (the stored digest, diff_id or entry name). */
  id: string;
  /** The registry digest, once known. */
  digest?: string;
  /** Size as stored in the archive (progress is counted against it). */
  size: number;
  /** Size of the bytes that go (or went) up, once known (after compression). */
  uploadSize?: number;
  /** `layer` or `config`. */
  role: "layer" | "config";
}

/** How one line of a sync ended (see `lib/sync/sync.ts`). */
export type SyncLineStatus = "transferred" | "unchanged" | "failed" | "planned";

/** What a push, copy or sync tells its observers, without the sync's line number. */
export type EventBody =
  | {
    type: "start";
    file: string;
    targets: string[];
    blobs: BlobInfo[];
    totalBytes: number;
    dryRun: boolean;
  }
  | { type: "blob"; blob: BlobInfo; state: BlobState; reason?: string }
  | { type: "progress"; id: string; bytes: number; total: number }
  | { type: "retry"; what: string; attempt: number; delayMs: number; reason: string }
  | { type: "manifest"; digest: string; mediaType: string; size: number; reference: string }
  | { type: "tag"; reference: string; digest: string }
  | { type: "warning"; message: string }
  | {
    type: "result";
    repository: string;
    references: string[];
    digest: string;
    size: number;
    durationMs: number;
    bytesSent: number;
    dryRun: boolean;
    /** How many blobs were uploaded, already there, mounted, or (dry run) would be uploaded. */
    blobs: {
      uploaded: number;
      exists: number;
      mounted: number;
      planned: number;
      plannedBytes: number;
    };
  }
  | {
    /** One line of a sync is done (or, in a dry run, planned). */
    type: "sync";
    source: string;
    target: string;
    status: SyncLineStatus;
    /** The digest the target tag names now (or would name). */
    digest?: string;
    /** Bytes uploaded for the line. */
    bytesSent: number;
    /** Why: the failure's message, or what a dry run would do. */
    message?: string;
  };

/** Everything a push, copy or sync tells its observers; a sync's events name their LIST line. */
export type PushEvent = EventBody & {
  /** The LIST line the event belongs to (sync runs only). */
  line?: number;
};

/** A receiver of push events. */
export type EventSink = (event: PushEvent) => void;
