/**
 * Events a push or a pull emits. Progress displays, JSON output and logs observe them; they never steer.
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
  | "planned"
  | "downloading"
  | "downloaded"
  | "present";

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

/** An image a pull wrote into its archive. */
export interface PulledImage {
  /** The source as given, normalised (`registry/repository:tag`). */
  source: string;
  /** Digest of the manifest or index the source named. */
  sourceDigest: string;
  /** Digest of the manifest or index in the archive (another when `--platform` rebuilt an index). */
  digest: string;
  /** Its media type. */
  mediaType: string;
  /** Its size in bytes. */
  size: number;
  /** The platforms kept from an index (empty for a single-platform image). */
  platforms: string[];
}

/** How one line of a sync ended (see `lib/sync/sync.ts`). */
export type SyncLineStatus = "transferred" | "unchanged" | "failed" | "planned";

/** One line of a sync's LIST as the `syncing` event announces it. */
export interface SyncLinePlan {
  /** 1-based line number in the LIST. */
  line: number;
  /** The source as written (a reference) or the archive's resolved path. */
  source: string;
  /** The target reference. */
  target: string;
}

/** How one line of a sync ended, as its `sync` event and its outcome report it. */
export interface SyncLineReport {
  /** The source as written (a reference) or the archive's resolved path. */
  source: string;
  /** The target reference. */
  target: string;
  /** `transferred`, `unchanged`, `failed`, or `planned` (dry run). */
  status: SyncLineStatus;
  /** The digest the target tag names now (or would name). */
  digest?: string;
  /** Bytes uploaded for the line. */
  bytesSent: number;
  /** What a dry run would do, why the line is unchanged, or why it failed. */
  message?: string;
}

/** What a push, pull, copy or sync tells its observers, without the sync's line number. */
export type EventBody =
  | {
    type: "start";
    /** What runs; a push when absent. For a pull, `file` is the output and `targets` the sources. */
    action?: "pull";
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
    type: "pulled";
    /** The archive written (`-` for standard output). */
    output: string;
    images: PulledImage[];
    /** Size of the archive in bytes. */
    size: number;
    /** Bytes received from registries by this run. */
    bytesDownloaded: number;
    /** Blobs downloaded by this run, and blobs an earlier run had already put in place. */
    blobs: { downloaded: number; present: number; planned: number; plannedBytes: number };
    /** Layers a delta bundle leaves out (the far side holds them), when it leaves any out. */
    omitted?: { layers: number; bytes: number };
    durationMs: number;
    dryRun: boolean;
  }
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
  | ({
    /** One line of a sync is done (or, in a dry run, planned). */
    type: "sync";
  } & SyncLineReport)
  | {
    /** A sync begins: its LIST was read and every line has its target. */
    type: "syncing";
    /** The LIST file. */
    from: string;
    /** The target prefix. */
    to: string;
    /** Every line to sync, in LIST order. */
    lines: SyncLinePlan[];
    dryRun: boolean;
  }
  | {
    /** A sync is over: how many lines ended each way. */
    type: "synced";
    lines: Record<SyncLineStatus, number>;
    /** Bytes uploaded over all lines. */
    bytesSent: number;
    durationMs: number;
    dryRun: boolean;
  };

/** Everything a push, copy or sync tells its observers; a sync's events name their LIST line. */
export type PushEvent = EventBody & {
  /** The LIST line the event belongs to (sync runs only). */
  line?: number;
};

/** A receiver of push events. */
export type EventSink = (event: PushEvent) => void;
