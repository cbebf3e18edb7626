/**
 * The orchestrator of one push: open the archive, resolve the image, get every blob into the
 * registry (already there, mounted, or uploaded), then manifests, then tags — tags last, so a
 * failed push never moves a tag.
 *
 * Round trips are what a far registry costs, so nothing waits for what it does not need: the
 * registry check, the lookups of the tags and of the config go out together at the start; the
 * config uploads beside the layers; a re-push whose tags already name the manifest it would
 * write stops there; a bearer token comes from the realm an earlier run learnt, fetched beside
 * the first requests.
 *
 * @module
 */

import { PusherError } from "./errors.ts";
import { openArchive } from "./image/open_archive.ts";
import { resolveLayout } from "./image/layout.ts";
import type { ImageSelection } from "./image/types.ts";
import type { EventSink } from "./logging/events.ts";
import type { PushOptions } from "./options.ts";
import {
  closeSharedCompressionPool,
  DEFAULT_BLOCK_SIZE,
  resolveLevel,
} from "./pipeline/compress.ts";
import { createClients, type RepositoryClient } from "./push/clients.ts";
import { configLookups, pushConfigs } from "./push/config_push.ts";
import { emptyTally, retrying, type RunContext } from "./push/context.ts";
import { CurrentTags } from "./push/current_tags.ts";
import { pushFromFile } from "./push/file_push.ts";
import type { CompressionChoice } from "./push/layer_source.ts";
import type { PushedLayer } from "./push/manifest_builder.ts";
import { type ManifestPlan, planManifests, publish } from "./push/publish.ts";
import { announce } from "./push/selection.ts";
import { pushFromStream } from "./push/stream_push.ts";
import { groupTargets } from "./push/targets.ts";
import { plannedFromKnown, reportPublished } from "./push/unchanged.ts";
import { cacheDirectory } from "./state/cache_dir.ts";
import { LayerCache } from "./state/layer_cache.ts";
import { loadRealm, saveRealm } from "./state/realm_memory.ts";
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
}

/** Base and cap of the retry backoff. */
const RETRY_BASE_MS = 500;
const RETRY_CAP_MS = 30_000;

/**
 * An abort signal that fires on the caller's signal, when the push runs out of time, or when
 * `abort` is called (the registry check failed).
 */
function deadlineSignal(outer: AbortSignal | undefined, timeoutSeconds: number): {
  signal: AbortSignal;
  abort: (reason: unknown) => void;
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
    abort: (reason) => controller.abort(reason),
    dispose: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}

/** The compression settings and their name in the layer cache. */
function compressionSettings(options: PushOptions): { choice: CompressionChoice; encoder: string } {
  if (options.compression === "none") return { choice: { target: "none" }, encoder: "none" };
  const level = resolveLevel(options.compression);
  return {
    choice: { target: options.compression, level },
    encoder: `${options.compression}-${level}-${DEFAULT_BLOCK_SIZE}`,
  };
}

function imageOption(options: PushOptions): { image?: string } {
  return options.image !== undefined ? { image: options.image } : {};
}

/** The result of a push that got this far, also sent as the `result` event. */
function finish(
  ctx: RunContext,
  started: number,
  clients: readonly RepositoryClient[],
  plan: ManifestPlan,
  references: string[],
): PushResult {
  const { options, emit } = ctx;
  const result: PushResult = {
    repository: ctx.primary.name,
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
}

/**
 * Pushes an image archive to one or more repositories of one registry.
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
  const { signal, abort, dispose } = deadlineSignal(runtime.signal, options.timeoutSeconds);
  const source = await openArchive(options.file);
  const { clients, transport } = await createClients(targets, options);
  const primary = clients[0] as RepositoryClient;
  const registry = primary.reference.registry;
  const realm = options.noCache ? undefined : await loadRealm(cacheDirectory(), registry);
  if (realm !== undefined) {
    for (const target of clients) target.client.assumeBearer(realm, signal);
  }
  const cache = options.noCache ? undefined : await LayerCache.load(cacheDirectory(), registry);
  const uploads = options.noCache || options.dryRun
    ? undefined
    : await UploadState.load(cacheDirectory(), registry);
  let saving: Promise<void> = Promise.resolve();
  const ctx: RunContext = {
    options,
    compression: choice,
    encoder,
    cache,
    uploads,
    checkpoint: () => {
      saving = saving.then(() => cache?.save());
      return saving;
    },
    imageSeenBefore: Promise.resolve(false),
    monolithicRefused: false,
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
  // The registry check and the tag lookups go out at once, beside the first uploads. The check
  // is awaited before any manifest is written; when it fails it stops the requests sent beside
  // it, and its error is the one reported (not a registry, a redirect loop).
  const pinging = retrying(ctx, "ping", (attempt) => primary.client.probe(attempt));
  pinging.catch((error: unknown) => abort(error));
  const current = CurrentTags.start(ctx, clients);
  try {
    let selection: ImageSelection;
    let layers: Map<string, PushedLayer>;
    let configs: Promise<void>[];
    if (source.mode === "random") {
      selection = await resolveLayout(source.archive, imageOption(options));
      announce(ctx, selection);
      const known = options.forceUpload ? undefined : plannedFromKnown(ctx, selection);
      if (known !== undefined && await current.allPointAt(clients, known.top.digest)) {
        await pinging;
        return finish(
          ctx,
          started,
          clients,
          known,
          reportPublished(ctx, selection, known, clients),
        );
      }
      const lookups = configLookups(ctx, selection);
      const firstConfig = lookups.get(selection.images[0]?.config.digest ?? "");
      ctx.imageSeenBefore = firstConfig?.catch(() => false) ?? Promise.resolve(false);
      // Configs go up beside the layers: their digests are known before any layer is read.
      configs = pushConfigs(ctx, selection, lookups);
      layers = await pushFromFile(ctx, source.archive, selection);
    } else {
      ({ selection, layers } = await pushFromStream(
        ctx,
        source.stream,
        source.name,
        imageOption(options),
      ));
      configs = pushConfigs(ctx, selection, configLookups(ctx, selection));
    }
    await Promise.all(configs);
    await pinging;
    const plan = planManifests(selection, layers);
    const blobDigests = [
      ...new Set([...layers.values()].map((layer) => layer.digest)),
      ...selection.images.map((image) => image.config.digest),
    ];
    const references = await publish(ctx, clients, plan, blobDigests, current);
    return finish(ctx, started, clients, plan, references);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw await pinging.then(() => error, (failed: unknown) => failed);
  } finally {
    dispose();
    const learnt = primary.client.bearerRealm;
    if (learnt !== undefined && !options.noCache) {
      await saveRealm(cacheDirectory(), registry, learnt, realm).catch(() => {});
    }
    await ctx.checkpoint();
    await uploads?.flush();
    transport.close();
    closeSharedCompressionPool();
  }
}
