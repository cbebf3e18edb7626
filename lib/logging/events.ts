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

/** Everything a push tells its observers. */
export type PushEvent =
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
  };

/** A receiver of push events. */
export type EventSink = (event: PushEvent) => void;
