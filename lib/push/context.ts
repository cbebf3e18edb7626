/**
 * The shared state of one push run and the blob events every step emits.
 *
 * @module
 */

import type { ArchiveLayer } from "../image/types.ts";
import type { BlobInfo, BlobState, EventSink } from "../logging/events.ts";
import type { PushOptions } from "../options.ts";
import type { ChunkLimit } from "../state/chunk_limit.ts";
import type { LayerCache } from "../state/layer_cache.ts";
import type { UploadState } from "../state/upload_state.ts";
import type { RetrySettings } from "../transfer/retry.ts";
import type { RepositoryClient } from "./clients.ts";
import type { CompressionChoice } from "./layer_source.ts";
import type { CompressionPool } from "../pipeline/compress.ts";

/** Shared state of one run. */
export interface RunContext {
  /** The push settings. */
  options: PushOptions;
  /** Compression settings for uncompressed layers. */
  compression: CompressionChoice;
  /** The run's compression workers (closed when the run ends). */
  compressionPool: CompressionPool;
  /** Names the compression settings in the layer cache. */
  encoder: string;
  /** The registry's layer cache, unless `--no-cache`. */
  cache: LayerCache | undefined;
  /** Open upload sessions kept for a re-run, unless `--no-cache` or a dry run. */
  uploads: UploadState | undefined;
  /** The request-body size known to pass the registry's proxies (kept for this run only with `--no-cache`). */
  chunkLimit: ChunkLimit;
  /** Saves the layer cache now (after a layer finished), one save at a time. */
  checkpoint: () => Promise<void>;
  /**
   * Whether the config is already in the repository (a lookup sent at the start): then large
   * layers are worth compressing once without uploading, to look them up by digest.
   */
  imageSeenBefore: Promise<boolean>;
  /** The registry refused a blob in the closing `PUT`: no more small blobs go up that way. */
  monolithicRefused: boolean;
  /** Event receiver. */
  emit: EventSink;
  /** Aborts everything (Ctrl-C, `--timeout`). */
  signal: AbortSignal;
  /** The first target repository: where blobs are uploaded. */
  primary: RepositoryClient;
  /** Retry policy of every request. */
  retry: RetrySettings;
  /** A request with no bytes moving for this long is aborted and retried. */
  stallTimeoutMs: number;
  /** Bytes uploaded so far. */
  bytesSent: number;
  /** How many blobs ended in each final state. */
  tally: BlobTally;
}

/** How many blobs ended up uploaded, already present, mounted, or (dry run) planned. */
export interface BlobTally {
  /** Uploaded by this run. */
  uploaded: number;
  /** Already in the repository. */
  exists: number;
  /** Mounted from another repository. */
  mounted: number;
  /** Would be uploaded (dry run). */
  planned: number;
  /** Bytes that would be uploaded (dry run). */
  plannedBytes: number;
}

/** What emitting blob events needs of a run (a push's or a copy's). */
export type BlobEventContext = Pick<RunContext, "emit" | "tally">;

/** An empty tally. */
export function emptyTally(): BlobTally {
  return { uploaded: 0, exists: 0, mounted: 0, planned: 0, plannedBytes: 0 };
}

/** The blob a layer is shown as before its registry digest is known. */
export function blobInfo(layer: ArchiveLayer): BlobInfo {
  return { id: layer.storedDigest ?? layer.diffId ?? layer.entry, size: layer.size, role: "layer" };
}

/** Emits a blob state change. */
export function emitBlob(
  ctx: BlobEventContext,
  blob: BlobInfo,
  state: BlobState,
  reason?: string,
): void {
  if (state === "uploaded" || state === "exists" || state === "mounted") ctx.tally[state]++;
  if (state === "planned") {
    ctx.tally.planned++;
    ctx.tally.plannedBytes += blob.uploadSize ?? blob.size;
  }
  ctx.emit({ type: "blob", blob, state, ...(reason !== undefined ? { reason } : {}) });
}
