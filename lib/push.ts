/**
 * The orchestrator of one push: open the archive, resolve the image, get every blob into the
 * registry (already there, mounted, or uploaded), then manifests, then tags — tags last, so a
 * failed push never moves a tag.
 *
 * @module
 */

import { PusherError } from "./errors.ts";
import { openContainerdStore } from "./image/containerd_store.ts";
import { type ArchiveSource, openArchive } from "./image/open_archive.ts";
import { resolveLayout } from "./image/layout.ts";
import type { ImageSelection } from "./image/types.ts";
import type { EventSink } from "./logging/events.ts";
import { Redactor } from "./logging/redact.ts";
import type { PushOptions } from "./options.ts";
import { CompressionPool, DEFAULT_BLOCK_SIZE, resolveLevel } from "./pipeline/compress.ts";
import { createClients, type RepositoryClient } from "./push/clients.ts";
import { emptyTally, retrying, type RunContext } from "./push/context.ts";
import { pushFromFile } from "./push/file_push.ts";
import { pushBytes } from "./push/layer_push.ts";
import type { CompressionChoice } from "./push/layer_source.ts";
import type { BlobRef } from "./oci/descriptor.ts";
import { planManifests, publish } from "./push/publish.ts";
import { announce } from "./push/selection.ts";
import { pushFromStream } from "./push/stream_push.ts";
import { groupTargets } from "./push/targets.ts";
import { cacheDirectory } from "./state/cache_dir.ts";
import { ChunkLimit } from "./state/chunk_limit.ts";
import { LayerCache } from "./state/layer_cache.ts";
import { UploadState } from "./state/upload_state.ts";

/** What a push did. */
export interface PushResult {
  /** `registry/repository` of the first target. */
  repository: string;
  /** Every reference written (`registry/repository:tag`). */
  references: string[];
  /** Every target repository with the pushed digest (`registry/repository@sha256:…`). */
  digestReferences: string[];
  /** Digest of the pushed manifest (or index). */
  digest: string;
  /** Its media type. */
  mediaType: string;
  /** Its size in bytes. */
  size: number;
  /** Bytes uploaded, retries included. */
  bytesSent: number;
  /** Wall time in milliseconds. */
  durationMs: number;
  /** Nothing was written. */
  dryRun: boolean;
}

/** Hooks of a push run. */
export interface PushRuntime {
  /** Receives progress events. */
  events?: EventSink;
  /** Aborts the push (Ctrl-C). */
  signal?: AbortSignal;
  /**
   * The run's redaction: the secrets of the credentials it resolves are registered here, and its
   * `--verbose` request log is redacted with it. Pass the one your log sink redacts with; by
   * default each run gets its own.
   */
  redactor?: Redactor;
}

/** Base and cap of the retry backoff. */
const RETRY_BASE_MS = 500;
const RETRY_CAP_MS = 30_000;

/** An abort signal that fires on the caller's signal or when the push runs out of time. */
function deadlineSignal(outer: AbortSignal | undefined, timeoutSeconds: number): {
  signal: AbortSignal;
  dispose: () => void;
} {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new PusherError("interrupted", `the push took longer than --timeout ${timeoutSeconds}s`, {
        hint: "raise --timeout; a re-run skips what already went up",
      }),
    );
  }, timeoutSeconds * 1000);
  Deno.unrefTimer(Number(timer));
  const onAbort = (): void => controller.abort(outer?.reason);
  if (outer?.aborted) onAbort();
  outer?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}

/**
 * The compression settings and their name in the layer cache. A compressing run gets its own
 * worker pool, closed when the run ends, so concurrent runs in one process never stop each
 * other's workers.
 */
function compressionSettings(options: PushOptions): { choice: CompressionChoice; encoder: string } {
  if (options.compression === "none") return { choice: { target: "none" }, encoder: "none" };
  const level = resolveLevel(options.compression);
  return {
    choice: { target: options.compression, level, pool: new CompressionPool() },
    encoder: `${options.compression}-${level}-${DEFAULT_BLOCK_SIZE}`,
  };
}

function imageOption(options: PushOptions): { image?: string } {
  return options.image !== undefined ? { image: options.image } : {};
}

/**
 * Pushes an image archive, or an image of a containerd store, to one or more repositories of one
 * registry.
 *
 * @example
 * ```ts
 * import { push } from "./mod.ts";
 * const result = await push({
 *   file: "app.tar",
 *   targets: ["localhost:5000/app:1.0"],
 *   timeoutSeconds: 600,
 *   stallTimeoutSeconds: 60,
 *   largeLayerThreshold: 1 << 30,
 *   maxConcurrent: 4,
 *   retryAttempts: 3,
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 *   forceUpload: false,
 *   compression: "gzip",
 *   noCache: false,
 * });
 * console.log(result.digest);
 * ```
 */
export async function push(options: PushOptions, runtime: PushRuntime = {}): Promise<PushResult> {
  const started = Date.now();
  const emit: EventSink = runtime.events ?? (() => {});
  const targets = groupTargets(options.targets);
  const { choice, encoder } = compressionSettings(options);
  const { signal, dispose } = deadlineSignal(runtime.signal, options.timeoutSeconds);
  const source: ArchiveSource = options.containerdRoot === undefined
    ? await openArchive(options.file)
    : {
      mode: "random",
      archive: await openContainerdStore(options.containerdRoot, { namespace: options.namespace }),
    };
  const redactor = runtime.redactor ?? new Redactor();
  const { clients, transport } = await createClients(targets, options, redactor);
  const primary = clients[0] as RepositoryClient;
  const registry = primary.reference.registry;
  const cache = options.noCache ? undefined : await LayerCache.load(cacheDirectory(), registry);
  const uploads = options.noCache || options.dryRun
    ? undefined
    : await UploadState.load(cacheDirectory(), registry);
  const chunkLimit = options.noCache
    ? ChunkLimit.unsaved(registry)
    : await ChunkLimit.load(cacheDirectory(), registry);
  let saving: Promise<void> = Promise.resolve();
  const ctx: RunContext = {
    options,
    compression: choice,
    encoder,
    cache,
    uploads,
    chunkLimit,
    checkpoint: () => {
      saving = saving.then(() => cache?.save());
      return saving;
    },
    imageSeenBefore: false,
    emit,
    signal,
    primary,
    retry: {
      attempts: options.retryAttempts,
      baseDelayMs: RETRY_BASE_MS,
      maxDelayMs: RETRY_CAP_MS,
    },
    stallTimeoutMs: options.stallTimeoutSeconds * 1000,
    bytesSent: 0,
    tally: emptyTally(),
  };
  try {
    await retrying(ctx, "ping", (attempt) => primary.client.ping(attempt));
    let selection: ImageSelection;
    let layers: Map<string, BlobRef>;
    if (source.mode === "random") {
      selection = await resolveLayout(source.archive, imageOption(options));
      announce(ctx, selection);
      const config = selection.images[0]?.config;
      if (config && !options.forceUpload) {
        const seen = await retrying(
          ctx,
          `HEAD ${config.digest}`,
          (attempt) => primary.client.blobExists(config.digest, attempt),
        );
        ctx.imageSeenBefore = seen.exists;
      }
      layers = await pushFromFile(ctx, source.archive, selection);
    } else {
      ({ selection, layers } = await pushFromStream(
        ctx,
        source.stream,
        source.name,
        imageOption(options),
      ));
    }
    for (const image of selection.images) {
      await pushBytes(ctx, image.config.bytes, image.config.digest);
    }
    const plan = planManifests(selection, layers);
    const blobDigests = [
      ...new Set([...layers.values()].map((layer) => layer.digest)),
      ...selection.images.map((image) => image.config.digest),
    ];
    const references = await publish(ctx, clients, plan, blobDigests);
    const result: PushResult = {
      repository: primary.name,
      references,
      digestReferences: clients.map((target) => `${target.name}@${plan.top.digest}`),
      digest: plan.top.digest,
      mediaType: plan.top.mediaType,
      size: plan.top.bytes.length,
      bytesSent: ctx.bytesSent,
      durationMs: Date.now() - started,
      dryRun: options.dryRun,
    };
    emit({
      type: "result",
      repository: result.repository,
      references,
      digest: result.digest,
      size: result.size,
      durationMs: result.durationMs,
      bytesSent: result.bytesSent,
      dryRun: options.dryRun,
      blobs: { ...ctx.tally },
    });
    return result;
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw error;
  } finally {
    dispose();
    await ctx.checkpoint();
    await uploads?.flush();
    await chunkLimit.flush();
    transport.close();
    choice.pool?.close();
  }
}
