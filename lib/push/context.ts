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
import type { BlobClaims } from "../transfer/blob_claims.ts";
import type { RetrySettings } from "../transfer/retry.ts";
import type { RepositoryClient } from "./clients.ts";
import type { CompressionChoice } from "./layer_source.ts";
import type { CompressionPool } from "../pipeline/compress.ts";

/** What a push is told: fixed for the whole run. */
export interface PushSettings {
  /** The push settings. */
  readonly options: PushOptions;
  /** Retry policy of every request. */
  readonly retry: RetrySettings;
  /** A request with no bytes moving for this long is aborted and retried. */
  readonly stallTimeoutMs: number;
}

/** What a push works with: the target registry, local state, events and the run's abort. */
export interface PushServices {
  /** The first target repository: where blobs are uploaded. */
  readonly primary: RepositoryClient;
  /** The registry's layer cache, unless `--no-cache`. */
  readonly cache: LayerCache | undefined;
  /** Open upload sessions kept for a re-run, unless `--no-cache` or a dry run. */
  readonly uploads: UploadState | undefined;
  /** The request-body size known to pass the registry's proxies (this run only with `--no-cache`). */
  readonly chunkLimit: ChunkLimit;
  /** Saves the layer cache now (after a layer finished), one save at a time. */
  readonly checkpoint: () => Promise<void>;
  /** The run's compression workers (closed when the run ends). */
  readonly compressionPool: CompressionPool;
  /** Event receiver. */
  readonly emit: EventSink;
  /** Aborts everything (Ctrl-C, `--timeout`, a failed registry check). */
  readonly signal: AbortSignal;
  /** Stops the run with `reason`: a failure beside the uploads that ends it (check, lookup). */
  readonly abort: (reason: unknown) => void;
  /**
   * Layers in flight across the pushes of one operation (`push --all`): a layer is claimed before
   * it is looked for, so two images sharing it never upload it at once; absent for a lone push.
   */
  readonly blobClaims: BlobClaims | undefined;
}

/** What a push learns on the way and steers by. */
export interface PushLearnt {
  /** Compression settings for uncompressed layers (Docker media types, once refused, want gzip). */
  compression: CompressionChoice;
  /** Names the compression settings in the layer cache. */
  encoder: string;
  /**
   * Whether the config is already in the repository (a lookup sent at the start): then large
   * layers are worth compressing once without uploading, to look them up by digest.
   */
  imageSeenBefore: Promise<boolean>;
  /** The registry refused a blob in the closing `PUT`: no more small blobs go up that way. */
  monolithicRefused: boolean;
}

/** The result being accumulated: what went up and how each blob ended. */
export interface BlobAccount {
  /** Bytes uploaded so far. */
  bytesSent: number;
  /** How many blobs ended in each final state. */
  tally: BlobTally;
}

/** One push run: its settings, its services, what it learnt and what it has done so far. */
export interface RunContext extends PushSettings, PushServices {
  /** What the run learnt on the way. */
  readonly learnt: PushLearnt;
  /** What the run has done so far. */
  readonly result: BlobAccount;
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
export interface BlobEventContext {
  /** Event receiver. */
  readonly emit: EventSink;
  /** Where the final states are counted. */
  readonly result: Pick<BlobAccount, "tally">;
}

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
  if (state === "uploaded" || state === "exists" || state === "mounted") ctx.result.tally[state]++;
  if (state === "planned") {
    ctx.result.tally.planned++;
    ctx.result.tally.plannedBytes += blob.uploadSize ?? blob.size;
  }
  ctx.emit({ type: "blob", blob, state, ...(reason !== undefined ? { reason } : {}) });
}
