/**
 * The orchestrator of one push: open the archive, resolve the image, get every blob into the
 * registry (already there, mounted, or uploaded), then manifests, then tags — tags last, so a
 * failed push never moves a tag.
 *
 * @module
 */

import { PusherError } from "./errors.ts";
import { openArchive } from "./image/open_archive.ts";
import { resolveLayout } from "./image/layout.ts";
import type { RandomAccessArchive } from "./image/random_access.ts";
import { scanArchiveStream } from "./image/stream_scan.ts";
import type { ArchiveLayer, EntryView, ImageSelection } from "./image/types.ts";
import type { BlobInfo, BlobState, EventSink, PushEvent } from "./logging/events.ts";
import { moduleLogger } from "./logging/logger.ts";
import type { PushOptions } from "./options.ts";
import { schedule } from "./pipeline/scheduler.ts";
import { withRetry } from "./pipeline/retry.ts";
import { uploadBlob, type UploadRetry } from "./push/blob_upload.ts";
import { createClients, type RepositoryClient } from "./push/clients.ts";
import { layerUpload } from "./push/layer_source.ts";
import {
  buildImageManifest,
  buildIndex,
  type BuiltManifest,
  type PushedLayer,
  sha256Digest,
} from "./push/manifest_builder.ts";
import { groupTargets } from "./push/targets.ts";

/** What a push did. */
export interface PushResult {
  /** `registry/repository` of the first target. */
  repository: string;
  /** Every reference written (`registry/repository:tag`). */
  references: string[];
  /** Every repository with the pushed digest (`registry/repository@sha256:…`). */
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

const log = moduleLogger("push");

/** Shared state of one run. */
interface RunContext {
  options: PushOptions;
  /** Compression settings for uncompressed layers. */
  compression: CompressionChoice;
  /** Names the compression settings in the layer cache. */
  encoder: string;
  /** The registry's layer cache, unless `--no-cache`. */
  cache: LayerCache | undefined;
  /** The config is already in the repository: worth computing digests to skip layers. */
  imageSeenBefore: boolean;
  emit: EventSink;
  signal: AbortSignal;
  primary: RepositoryClient;
  retry: UploadRetry;
  bytesSent: number;
}

function blobInfo(layer: ArchiveLayer): BlobInfo {
  return { id: layer.storedDigest ?? layer.diffId ?? layer.entry, size: layer.size, role: "layer" };
}

function emitBlob(ctx: RunContext, blob: BlobInfo, state: BlobState, reason?: string): void {
  ctx.emit({ type: "blob", blob, state, ...(reason !== undefined ? { reason } : {}) });
}

async function retrying<T>(ctx: RunContext, what: string, operation: () => Promise<T>): Promise<T> {
  return await withRetry(() => operation(), {
    ...ctx.retry,
    signal: ctx.signal,
    onRetry: (info) => {
      const reason = info.error instanceof Error ? info.error.message : String(info.error);
      ctx.emit({ type: "retry", what, attempt: info.attempt, delayMs: info.delayMs, reason });
    },
  });
}

/** The digest a layer will have in the registry when that is known without reading it. */
function knownOutcome(ctx: RunContext, layer: ArchiveLayer): PushedLayer | undefined {
  const { options } = ctx;
  if (layer.compression !== "none" && layer.storedDigest !== undefined) {
    return { digest: layer.storedDigest, size: layer.size, compression: layer.compression };
  }
  if (options.compression === "none") {
    const digest = layer.storedDigest ?? layer.diffId;
    if (digest !== undefined) return { digest, size: layer.size, compression: "none" };
  }
  const source = layer.diffId ?? layer.storedDigest;
  if (ctx.cache === undefined || source === undefined) return undefined;
  const cached = ctx.cache.lookup(source, ctx.encoder);
  return cached
    ? { digest: cached.digest, size: cached.size, compression: cached.compression }
    : undefined;
}

/** Remembers where a layer went, so a later push needs neither compression nor upload. */
function remember(ctx: RunContext, layer: ArchiveLayer, pushed: PushedLayer): void {
  const source = layer.diffId ?? layer.storedDigest;
  if (ctx.cache === undefined || source === undefined || ctx.options.dryRun) return;
  ctx.cache.record(source, ctx.encoder, pushed, ctx.primary.repository);
}

/** Repositories of this registry that may hold a blob: the cache's, then `--mount-from`. */
function mountSources(ctx: RunContext, layer: ArchiveLayer): string[] {
  const sources: string[] = [];
  const source = layer.diffId ?? layer.storedDigest;
  const cached = source !== undefined ? ctx.cache?.lookup(source, ctx.encoder) : undefined;
  for (const repository of cached?.repositories ?? []) sources.push(repository);
  if (ctx.options.mountFrom !== undefined) sources.push(ctx.options.mountFrom);
  return [...new Set(sources)].filter((repository) => repository !== ctx.primary.repository)
    .slice(0, 3);
}

/** Compresses and hashes a layer without uploading, to learn its digest. */
async function measure(
  ctx: RunContext,
  layer: ArchiveLayer,
  open: () => ReadableStream<Uint8Array>,
): Promise<PushedLayer> {
  const upload = layerUpload(layer, open, ctx.compression, true);
  const { stream } = upload.source.open();
  await stream.pipeTo(new WritableStream());
  const result = await upload.pushed();
  return { digest: result.digest, size: result.size, compression: result.compression };
}

/** Looks for a layer in the registry (HEAD, then mounts); true when it is there now. */
async function alreadyThere(
  ctx: RunContext,
  layer: ArchiveLayer,
  found: PushedLayer,
  blob: BlobInfo,
): Promise<boolean> {
  const described = { ...blob, digest: found.digest, size: found.size };
  emitBlob(ctx, described, "checking");
  const client = ctx.primary.client;
  const existing = await retrying(ctx, `HEAD ${found.digest}`, () => client.blobExists(found.digest));
  if (existing.exists) {
    emitBlob(ctx, described, "exists");
    return true;
  }
  if (ctx.options.dryRun) return false;
  for (const from of mountSources(ctx, layer)) {
    const mounted = await retrying(ctx, `mount ${found.digest}`, () => client.mountBlob(found.digest, from));
    if (mounted) {
      emitBlob(ctx, described, "mounted", `from ${from}`);
      return true;
    }
  }
  return false;
}

/** Gets one layer into the primary repository from a re-readable source. */
async function pushLayer(
  ctx: RunContext,
  layer: ArchiveLayer,
  open: () => ReadableStream<Uint8Array>,
): Promise<PushedLayer> {
  const blob = blobInfo(layer);
  const { options } = ctx;
  let known = knownOutcome(ctx, layer);
  if (!known && !options.forceUpload && (options.dryRun || ctx.imageSeenBefore)) {
    emitBlob(ctx, blob, "checking", "computing the compressed digest");
    known = await measure(ctx, layer, open);
  }
  if (known && !options.forceUpload && await alreadyThere(ctx, layer, known, blob)) {
    remember(ctx, layer, known);
    return known;
  }
  if (options.dryRun) {
    const planned = known ?? await measure(ctx, layer, open);
    emitBlob(ctx, { ...blob, digest: planned.digest, size: planned.size }, "planned", `would upload ${planned.size} bytes`);
    return planned;
  }
  const upload = layerUpload(layer, open, ctx.compression, true);
  emitBlob(ctx, blob, "uploading");
  const result = await uploadBlob(upload.source, uploadSettings(ctx, blob, layer.size, layer.entry));
  ctx.bytesSent += result.bytesSent;
  const pushed = await upload.pushed();
  const outcome: PushedLayer = { digest: pushed.digest, size: pushed.size, compression: pushed.compression };
  remember(ctx, layer, outcome);
  emitBlob(ctx, { ...blob, digest: pushed.digest, size: pushed.size }, result.foundOnRetry ? "exists" : "uploaded");
  return outcome;
}

/** Upload settings for one blob of `size` stored bytes. */
function uploadSettings(ctx: RunContext, blob: BlobInfo, size: number, what: string): UploadSettings {
  return {
    client: ctx.primary.client,
    chunked: size > ctx.options.largeLayerThreshold,
    chunkSize: chunkSizeFor(ctx.options.largeLayerThreshold),
    retry: ctx.retry,
    signal: ctx.signal,
    onProgress: (bytes) => ctx.emit({ type: "progress", id: blob.id, bytes, total: size }),
    onRetry: (attempt, delayMs, reason) => {
      emitBlob(ctx, blob, "retrying", reason);
      ctx.emit({ type: "retry", what, attempt, delayMs, reason });
    },
  };
}

/** Chunk size for chunked uploads: the threshold, kept between 5 MiB (ECR's minimum) and 64 MiB. */
export function chunkSizeFor(threshold: number): number {
  return Math.min(64 * 1024 * 1024, Math.max(5 * 1024 * 1024, threshold));
}

/** Gets a small in-memory blob (a config) into the primary repository. */
async function pushBytes(ctx: RunContext, bytes: Uint8Array, digest: string): Promise<void> {
  const blob: BlobInfo = { id: digest, digest, size: bytes.length, role: "config" };
  emitBlob(ctx, blob, "checking");
  if (!ctx.options.forceUpload) {
    const existing = await retrying(
      ctx,
      `HEAD ${digest}`,
      () => ctx.primary.client.blobExists(digest),
    );
    if (existing.exists) {
      emitBlob(ctx, blob, "exists");
      return;
    }
  }
  if (ctx.options.dryRun) {
    emitBlob(ctx, blob, "planned", `would upload ${bytes.length} bytes`);
    return;
  }
  emitBlob(ctx, blob, "uploading");
  const result = await uploadBlob({
    reopenable: true,
    open: () => ({
      stream: new Blob([bytes]).stream(),
      outcome: Promise.resolve({ digest: sha256Digest(bytes), size: bytes.length }),
    }),
  }, uploadSettings(ctx, blob, bytes.length, `config ${digest}`));
  ctx.bytesSent += result.bytesSent;
  emitBlob(ctx, blob, "uploaded");
}

function uniqueLayers(selection: ImageSelection): ArchiveLayer[] {
  const byEntry = new Map<string, ArchiveLayer>();
  for (const image of selection.images) {
    for (const layer of image.layers) {
      if (!byEntry.has(layer.entry)) byEntry.set(layer.entry, layer);
    }
  }
  return [...byEntry.values()];
}

function announce(ctx: RunContext, selection: ImageSelection): void {
  const layers = uniqueLayers(selection);
  const blobs: BlobInfo[] = layers.map(blobInfo);
  for (const image of selection.images) {
    blobs.push({
      id: image.config.digest,
      digest: image.config.digest,
      size: image.config.bytes.length,
      role: "config",
    });
  }
  ctx.emit({
    type: "start",
    file: ctx.options.file,
    targets: ctx.options.targets,
    blobs,
    totalBytes: blobs.reduce((sum, blob) => sum + blob.size, 0),
    dryRun: ctx.options.dryRun,
  });
  for (const platform of selection.skippedPlatforms) {
    ctx.emit({
      type: "warning",
      message: `platform ${platform} is named in the archive but its blobs are absent: left out`,
    });
  }
}

/** Random access: every layer read in place, several at a time, largest first. */
async function pushFromFile(
  ctx: RunContext,
  archive: RandomAccessArchive,
  selection: ImageSelection,
): Promise<Map<string, PushedLayer>> {
  const layers = uniqueLayers(selection);
  const results = await schedule(
    layers.map((layer) => ({
      weight: layer.size,
      run: () => pushLayer(ctx, layer, () => archive.openEntry(layer.entry)),
    })),
    ctx.options.maxConcurrent,
    ctx.signal,
  );
  return new Map(layers.map((layer, index) => [layer.entry, results[index] as PushedLayer]));
}

const BLOB_PATH = /^blobs\/sha256\/([0-9a-f]{64})$/;

/** A streamed entry's layer as far as its path tells. */
function streamedLayer(path: string, size: number): ArchiveLayer {
  const named = path.match(BLOB_PATH)?.[1];
  return {
    entry: path,
    size,
    compression: "none",
    ...(named !== undefined ? { storedDigest: `sha256:${named}` } : {}),
  };
}

/** Uploads (or, in a dry run, digests) one large entry as it streams past. */
async function pushStreamedEntry(
  ctx: RunContext,
  path: string,
  size: number,
  body: ReadableStream<Uint8Array>,
): Promise<PushedLayer & { diffId?: string }> {
  const layer = streamedLayer(path, size);
  const upload = layerUpload(layer, () => body, ctx.compression, false);
  const blob = blobInfo(layer);
  if (ctx.options.dryRun) {
    emitBlob(ctx, blob, "checking", "computing the digest");
    const { stream } = upload.source.open();
    await stream.pipeTo(new WritableStream());
    return await upload.pushed();
  }
  emitBlob(ctx, blob, "uploading");
  const result = await uploadBlob(upload.source, uploadSettings(ctx, blob, size, `layer ${path}`));
  ctx.bytesSent += result.bytesSent;
  const pushed = await upload.pushed();
  emitBlob(ctx, { ...blob, digest: pushed.digest, size: pushed.size }, "uploaded");
  return pushed;
}

/** One streaming pass: large entries go up as they pass; the layout is resolved at the end. */
async function pushFromStream(
  ctx: RunContext,
  stream: ReadableStream<Uint8Array>,
  name: string,
): Promise<{ selection: ImageSelection; layers: Map<string, PushedLayer> }> {
  ctx.emit({
    type: "start",
    file: ctx.options.file,
    targets: ctx.options.targets,
    blobs: [],
    totalBytes: 0,
    dryRun: ctx.options.dryRun,
  });
  const scan = await scanArchiveStream(
    stream,
    (path, size, body) => pushStreamedEntry(ctx, path, size, body),
    { name },
  );
  const selection = await resolveLayout(scan.view, imageOption(ctx.options));
  reportSkipped(ctx, selection);
  const layers = new Map<string, PushedLayer>();
  for (const layer of uniqueLayers(selection)) {
    const streamed = scan.large.get(layer.entry);
    if (!streamed) {
      const bytes = await scan.view.read(layer.entry);
      layers.set(layer.entry, await pushLayer(ctx, layer, () => new Blob([bytes]).stream()));
      continue;
    }
    if (
      layer.diffId !== undefined && streamed.diffId !== undefined &&
      streamed.diffId !== layer.diffId
    ) {
      throw new PusherError(
        "verify",
        `layer ${layer.entry} has diff_id ${streamed.diffId} but the config says ${layer.diffId}`,
      );
    }
    layers.set(layer.entry, streamed);
  }
  return { selection, layers };
}

function imageOption(options: PushOptions): { image?: string } {
  return options.image !== undefined ? { image: options.image } : {};
}

function reportSkipped(ctx: RunContext, selection: ImageSelection): void {
  for (const platform of selection.skippedPlatforms) {
    ctx.emit({
      type: "warning",
      message: `platform ${platform} is named in the archive but its blobs are absent: left out`,
    });
  }
}

/** The manifests to write: children (by digest) and the top one (by tag). */
function buildManifests(
  selection: ImageSelection,
  layers: Map<string, PushedLayer>,
): { children: BuiltManifest[]; top: BuiltManifest } {
  const manifests = selection.images.map((image) =>
    buildImageManifest(
      image,
      selection.family,
      image.layers.map((layer) => {
        const pushed = layers.get(layer.entry);
        if (!pushed) throw new Error(`layer ${layer.entry} was not pushed`);
        return pushed;
      }),
    )
  );
  if (manifests.length === 1) return { children: [], top: manifests[0] as BuiltManifest };
  return { children: manifests, top: buildIndex(selection, manifests) };
}

/** Makes every blob of the first repository present in the other target repositories. */
async function copyBlobsToOtherRepositories(
  ctx: RunContext,
  others: readonly RepositoryClient[],
  digests: readonly string[],
): Promise<void> {
  for (const target of others) {
    for (const digest of digests) {
      const existing = await retrying(
        ctx,
        `HEAD ${digest}`,
        () => target.client.blobExists(digest),
      );
      if (existing.exists || ctx.options.dryRun) continue;
      const mounted = await retrying(
        ctx,
        `mount ${digest}`,
        () => target.client.mountBlob(digest, ctx.primary.repository),
      );
      if (!mounted) {
        throw new PusherError(
          "registry",
          `could not mount ${digest} from ${ctx.primary.repository} into ${target.repository}`,
          { hint: "push to that repository in a separate run" },
        );
      }
    }
  }
}

function combinedSignal(outer: AbortSignal | undefined, timeoutSeconds: number): {
  signal: AbortSignal;
  dispose: () => void;
} {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new PusherError("interrupted", `the push took longer than --timeout ${timeoutSeconds}s`),
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
 * Pushes an image archive to one or more repositories of one registry.
 *
 * @example
 * ```ts
 * import { push } from "./mod.ts";
 * const result = await push({
 *   file: "app.tar",
 *   targets: ["localhost:5000/app:1.0"],
 *   timeoutSeconds: 600, stallTimeoutSeconds: 60, largeLayerThreshold: 1 << 30,
 *   maxConcurrent: 4, retryAttempts: 3, skipTls: false, caCertFiles: [],
 *   dryRun: false, forceUpload: false, compression: "gzip", noCache: false,
 * });
 * console.log(result.digest);
 * ```
 */
export async function push(options: PushOptions, runtime: PushRuntime = {}): Promise<PushResult> {
  const started = Date.now();
  const emit: EventSink = runtime.events ?? ((_event: PushEvent) => {});
  const targets = groupTargets(options.targets);
  const { signal, dispose } = combinedSignal(runtime.signal, options.timeoutSeconds);
  try {
    const source = await openArchive(options.file);
    const clients = await createClients(targets, options, signal);
    const primary = clients[0] as RepositoryClient;
    const ctx: RunContext = {
      options,
      emit,
      signal,
      primary,
      retry: { attempts: options.retryAttempts, baseDelayMs: 500, maxDelayMs: 30_000 },
      bytesSent: 0,
    };
    await retrying(ctx, "ping", () => primary.client.ping());
    let selection: ImageSelection;
    let layers: Map<string, PushedLayer>;
    if (source.mode === "random") {
      selection = await resolveLayout(source.archive, imageOption(options));
      announce(ctx, selection);
      layers = await pushFromFile(ctx, source.archive, selection);
    } else {
      ({ selection, layers } = await pushFromStream(ctx, source.stream, source.name));
    }
    for (const image of selection.images) {
      await pushBytes(ctx, image.config.bytes, image.config.digest);
    }
    const { children, top } = buildManifests(selection, layers);
    const blobDigests = [
      ...new Set([...layers.values()].map((layer) => layer.digest)),
      ...selection.images.map((image) => image.config.digest),
    ];
    await copyBlobsToOtherRepositories(ctx, clients.slice(1), blobDigests);
    const references: string[] = [];
    for (const target of clients) {
      if (target.pinnedDigest !== undefined && target.pinnedDigest !== top.digest) {
        throw new PusherError(
          "verify",
          `the pushed manifest would be ${top.digest}, not the ${target.pinnedDigest} given in -r`,
        );
      }
      if (options.dryRun) continue;
      for (const child of children) {
        await retrying(
          ctx,
          `manifest ${child.digest}`,
          () => target.client.putManifest(child.digest, child.bytes, child.mediaType),
        );
        emit({
          type: "manifest",
          digest: child.digest,
          mediaType: child.mediaType,
          size: child.bytes.length,
          reference: `${target.name}@${child.digest}`,
        });
      }
    }
    for (const target of clients) {
      const tags = target.tags.length > 0 ? target.tags : [top.digest];
      for (const tag of tags) {
        const reference = tag.startsWith("sha256:")
          ? `${target.name}@${tag}`
          : `${target.name}:${tag}`;
        references.push(reference);
        if (options.dryRun) continue;
        await retrying(
          ctx,
          `manifest ${reference}`,
          () => target.client.putManifest(tag, top.bytes, top.mediaType),
        );
        emit({
          type: "manifest",
          digest: top.digest,
          mediaType: top.mediaType,
          size: top.bytes.length,
          reference,
        });
        emit({ type: "tag", reference, digest: top.digest });
      }
    }
    const result: PushResult = {
      repository: primary.name,
      references,
      digestReferences: clients.map((target) => `${target.name}@${top.digest}`),
      digest: top.digest,
      mediaType: top.mediaType,
      size: top.bytes.length,
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
    });
    log.debug(`pushed ${references.join(", ")} as ${top.digest}`);
    return result;
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw error;
  } finally {
    dispose();
  }
}
