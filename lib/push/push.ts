/**
 * The orchestrator of one push: open the archive, resolve the image, get every blob into the
 * registry (already there, mounted, or uploaded), then manifests, then tags — tags last, so a
 * failed push never moves a tag. When the registry refuses a manifest for its shape (OCI media
 * types, attestation manifests), the manifests are built again in the shape it takes — layers
 * re-encoded to gzip where Docker media types need it — and pushed again, with a warning.
 *
 * Round trips are what a far registry costs, so nothing waits for what it does not need: the
 * registry check, the lookups of the tags and of the config go out together at the start; the
 * config uploads beside the layers; a re-push whose tags already name the manifest it would
 * write stops there; a bearer token comes from the realm an earlier run learnt, fetched beside
 * the first requests.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { DEFAULT_NAMESPACE } from "../image/containerd_namespace.ts";
import { openContainerdStore } from "../image/containerd_store.ts";
import { type ArchiveSource, openArchive } from "../image/open_archive.ts";
import type { RandomAccessArchive } from "../image/random_access.ts";
import { type LayoutOptions, resolveLayout } from "../image/layout.ts";
import type { ImageSelection } from "../image/types.ts";
import type { EventSink } from "../logging/events.ts";
import { Redactor } from "../logging/redact.ts";
import type { BlobRef } from "../oci/descriptor.ts";
import type { PushOptions } from "../options.ts";
import { CompressionPool, DEFAULT_BLOCK_SIZE, resolveLevel } from "../pipeline/compress.ts";
import { createClients, type RepositoryClient } from "./clients.ts";
import { configLookups, pushConfigs } from "./config_push.ts";
import { emptyTally, type RunContext } from "./context.ts";
import { CurrentTags } from "./current_tags.ts";
import { pushFromFile } from "./file_push.ts";
import { pushLayer } from "./layer_push.ts";
import type { CompressionChoice } from "./layer_source.ts";
import { initialShape, type ManifestShape, shapedSelection } from "./manifest_shape.ts";
import { type ManifestPlan, planManifests, publish } from "./publish.ts";
import { decideOnRefusal, ManifestRefused } from "./refusal.ts";
import { announce, uniqueLayers } from "./selection.ts";
import { pushFromStream } from "./stream_push.ts";
import { groupTargets } from "./targets.ts";
import { plannedFromKnown, reportPublished } from "./unchanged.ts";
import { cacheDirectory } from "../state/cache_dir.ts";
import { ChunkLimit } from "../state/chunk_limit.ts";
import { LayerCache } from "../state/layer_cache.ts";
import { loadRealm, saveRealm } from "../state/realm_memory.ts";
import { UploadState } from "../state/upload_state.ts";
import type { BlobClaims } from "../transfer/blob_claims.ts";
import { retrySettings } from "../transfer/retry.ts";
import { retrying } from "../transfer/retrying_request.ts";
import { deadlineSignal, resultEvent, type RunHooks, type WriteResult } from "../transfer/run.ts";
import { schedule } from "../transfer/scheduler.ts";

/** What a push did. */
export interface PushResult extends WriteResult {
  /** Every target repository with the pushed digest (`registry/repository@sha256:…`). */
  digestReferences: string[];
}

/** Hooks of a push run. */
export interface PushRuntime extends RunHooks {
  /**
   * Layers in flight across several pushes of one operation into one registry (the images of a
   * bundle): a layer another push is putting there is waited for, then found or mounted.
   */
  blobClaims?: BlobClaims;
}

/**
 * The compression settings and their name in the layer cache. Docker media types know gzip
 * layers only: for them every tar layer ends up gzip, re-encoded when stored otherwise. `pool` is
 * the run's own worker pool, so concurrent runs in one process never stop each other's workers.
 */
function compressionSettings(
  options: PushOptions,
  shape: ManifestShape,
  pool: CompressionPool,
): { choice: CompressionChoice; encoder: string } {
  const target = shape.family === "docker" ? "gzip" : options.compression;
  if (target === "none") return { choice: { target: "none" }, encoder: "none" };
  const level = resolveLevel(target);
  return {
    choice: { target, level, pool, ...(shape.family === "docker" ? { reencode: true } : {}) },
    encoder: `${target}-${level}-${DEFAULT_BLOCK_SIZE}`,
  };
}

/** Blobs pushed by the transfer step: the selection and what each of its layers became. */
interface Transferred {
  selection: ImageSelection;
  layers: Map<string, BlobRef>;
}

/**
 * Gets the layers and configs of an archive read at random into the primary repository. The
 * configs go up beside the layers (their digests are known before any layer is read), and the
 * first config's lookup tells whether the image was there before.
 */
async function transferFromFile(
  ctx: RunContext,
  archive: RandomAccessArchive,
  selection: ImageSelection,
): Promise<Transferred> {
  const lookups = configLookups(ctx, selection);
  const firstConfig = lookups.get(selection.images[0]?.config.digest ?? "");
  ctx.learnt.imageSeenBefore = firstConfig?.catch(() => false) ?? Promise.resolve(false);
  const configs = pushConfigs(ctx, selection, lookups);
  const layers = await pushFromFile(ctx, archive, selection);
  await Promise.all(configs);
  return { selection, layers };
}

/** Gets the layers and configs of an archive read in one pass into the primary repository. */
async function transferFromStream(
  ctx: RunContext,
  source: Extract<ArchiveSource, { mode: "stream" }>,
): Promise<Transferred> {
  const streamed = await pushFromStream(ctx, source.stream, source.name, imageOption(ctx.options));
  await Promise.all(pushConfigs(ctx, streamed.selection, configLookups(ctx, streamed.selection)));
  return streamed;
}

/**
 * Pushes again, re-encoded to gzip, the layers of the shaped selection that went up otherwise
 * (Docker media types have no zstd or uncompressed layer type). A plain tar is read again in
 * place; a compressed file is streamed again; standard input cannot be read twice.
 */
async function reencodeLayers(
  ctx: RunContext,
  source: ArchiveSource,
  transferred: Transferred,
  shape: ManifestShape,
): Promise<Transferred> {
  const { selection, layers } = transferred;
  const stale = uniqueLayers(shapedSelection(selection, shape).selection)
    .filter((layer) => layers.get(layer.entry)?.compression !== "gzip");
  if (stale.length === 0) return transferred;
  if (source.mode === "stream") {
    if (ctx.options.file === "-") {
      throw new PusherError(
        "input",
        `${stale.length} layer(s) must be re-encoded to gzip for Docker media types, and stdin cannot be read again`,
        { hint: "push the archive from a file, or again with --format docker" },
      );
    }
    const reopened = await openArchive(ctx.options.file);
    return reopened.mode === "stream"
      ? await transferFromStream(ctx, reopened)
      : await transferFromFile(ctx, reopened.archive, selection);
  }
  const archive = source.archive;
  const redone = await schedule(
    stale.map((layer) => ({
      weight: layer.size,
      run: () => pushLayer(ctx, layer, () => archive.openEntry(layer.entry)),
    })),
    ctx.options.maxConcurrent,
    ctx.signal,
  );
  const updated = new Map(layers);
  stale.forEach((layer, index) => updated.set(layer.entry, redone[index] as BlobRef));
  return { selection, layers: updated };
}

/** What a shape changes about the pushed manifests, for warnings. */
function shapeChanges(shape: ManifestShape): string[] {
  const changes: string[] = [];
  if (shape.family === "docker") changes.push("converted to Docker media types");
  if (shape.family === "oci") changes.push("converted to OCI media types");
  if (shape.dropAttestations) changes.push("attestation manifests left out");
  return changes;
}

/** Warns about attestation manifests a plan leaves out, saying why. */
function warnDropped(ctx: RunContext, shape: ManifestShape, plan: ManifestPlan, why: string): void {
  if (plan.droppedAttestations === 0) return;
  const reason = shape.family === "docker" ? "Docker manifest lists cannot carry them" : why;
  ctx.emit({
    type: "warning",
    message: `left out ${plan.droppedAttestations} attestation manifest(s) of the index: ${reason}`,
  });
}

/** The warning for a refused manifest and the shape the push tries next. */
function refusalWarning(refused: ManifestRefused, next: ManifestShape, registry: string): string {
  const answer = refused.answer.message.replace(/^.*? failed with /, "");
  if (refused.refusal === "oci-media-types") {
    return `${registry} refused OCI media types (${answer}); pushing again with Docker media types ` +
      `(schema 2, manifest list, gzip layers), which changes the digest — --format docker skips the refused attempt`;
  }
  const family = next.family === "docker" ? " with Docker media types" : "";
  return `${registry} refused the attestation manifest ${refused.digest} (${answer}); pushing the ` +
    `index again without attestation manifests${family}, which changes the digest — --attestations drop skips the refused attempt`;
}

/**
 * Writes the manifests and tags in the shape the options ask for; when the registry refuses a
 * manifest for its shape, builds them again in the shape it takes (re-encoding layers when needed)
 * and writes them again. Returns the references written and the plan that was written.
 */
async function publishShaped(
  ctx: RunContext,
  clients: readonly RepositoryClient[],
  source: ArchiveSource,
  first: Transferred,
  initial: ManifestShape,
  current: CurrentTags,
): Promise<{ references: string[]; plan: ManifestPlan }> {
  const options = ctx.options;
  const registry = ctx.primary.reference.registry;
  let shape = initial;
  let transferred = first;
  let refusedDigest: string | undefined;
  let dropReason = "--attestations drop asks so";
  for (;;) {
    const { selection, layers } = transferred;
    const plan = planManifests(selection, layers, shape);
    warnDropped(ctx, shape, plan, dropReason);
    const blobDigests = [
      ...new Set([...layers.values()].map((layer) => layer.digest)),
      ...selection.images.map((image) => image.config.digest),
    ];
    try {
      const references = await publish(ctx, clients, plan, blobDigests, current);
      const archived = selection.index?.digest ??
        (selection.images.length === 1 ? selection.images[0]?.sourceManifest?.digest : undefined);
      const before = archived ?? refusedDigest;
      const changes = shapeChanges(shape);
      if (before !== undefined && before !== plan.top.digest && changes.length > 0) {
        ctx.emit({
          type: "warning",
          message: `pushed as ${plan.top.digest}, not ${before} (${changes.join(", ")})`,
        });
      }
      return { references, plan };
    } catch (error) {
      if (!(error instanceof ManifestRefused)) throw error;
      const decision = decideOnRefusal(error, shape, options.format ?? "auto", plan.attestations);
      if (decision.action === "fail") throw decision.error;
      ctx.emit({ type: "warning", message: refusalWarning(error, decision.shape, registry) });
      refusedDigest ??= plan.top.digest;
      dropReason = `${registry} refuses them`;
      shape = decision.shape;
      if (shape.family === "docker") {
        const { choice, encoder } = compressionSettings(options, shape, ctx.compressionPool);
        ctx.learnt.compression = choice;
        ctx.learnt.encoder = encoder;
        transferred = await reencodeLayers(ctx, source, transferred, shape);
      }
    }
  }
}

/** The layout options of a push: the image it names, and how `ls` lists its source. */
function imageOption(options: PushOptions): LayoutOptions {
  const lsArguments = options.containerdRoot === undefined ? [options.file] : [
    "--containerd-root",
    options.containerdRoot,
    "--namespace",
    options.namespace ?? DEFAULT_NAMESPACE,
  ];
  return { image: options.image, lsArguments };
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
    bytesSent: ctx.result.bytesSent,
    durationMs: Date.now() - started,
    dryRun: options.dryRun,
  };
  emit(resultEvent(result, { ...ctx.result.tally }));
  return result;
}

/**
 * Pushes an image archive, or an image of a containerd store, to one or more repositories of one
 * registry.
 *
 * @example
 * ```ts
 * import { push } from "../mod.ts";
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
  const shape = initialShape(options);
  const compressionPool = new CompressionPool();
  const { choice, encoder } = compressionSettings(options, shape, compressionPool);
  const { signal, abort, dispose } = deadlineSignal(runtime.signal, options.timeoutSeconds, "push");
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
  const realm = options.noCache ? undefined : await loadRealm(cacheDirectory(), registry);
  if (realm !== undefined) {
    for (const target of clients) target.client.assumeBearer(realm, signal);
  }
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
    retry: retrySettings(options.retryAttempts),
    stallTimeoutMs: options.stallTimeoutSeconds * 1000,
    primary,
    cache,
    uploads,
    chunkLimit,
    checkpoint: () => {
      saving = saving.then(() => cache?.save());
      return saving;
    },
    compressionPool,
    emit,
    signal,
    abort,
    blobClaims: runtime.blobClaims,
    learnt: {
      compression: choice,
      encoder,
      imageSeenBefore: Promise.resolve(false),
      monolithicRefused: false,
    },
    result: { bytesSent: 0, tally: emptyTally() },
  };
  // The registry check and the tag lookups go out at once, beside the first uploads. The check
  // is awaited before any manifest is written; when it fails it stops the requests sent beside
  // it, and its error is the one reported (not a registry, a redirect loop).
  const pinging = retrying(ctx, "ping", (attempt) => primary.client.probe(attempt));
  pinging.catch((error: unknown) => abort(error));
  const current = CurrentTags.start(ctx, clients);
  try {
    let transferred: Transferred;
    if (source.mode === "random") {
      const selection = await resolveLayout(source.archive, imageOption(options));
      announce(ctx, selection);
      const known = options.forceUpload ? undefined : plannedFromKnown(ctx, selection, shape);
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
      transferred = await transferFromFile(ctx, source.archive, selection);
    } else {
      transferred = await transferFromStream(ctx, source);
    }
    await pinging;
    const { references, plan } = await publishShaped(
      ctx,
      clients,
      source,
      transferred,
      shape,
      current,
    );
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
    await chunkLimit.flush();
    transport.close();
    compressionPool.close();
  }
}
