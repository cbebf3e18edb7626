/**
 * Gets one layer (or a small in-memory blob) into the primary repository: already there (HEAD,
 * with the digest known from the layout, the local cache, or by compressing without uploading),
 * mounted from a sibling repository, or uploaded.
 *
 * @module
 */

import { releasingSink } from "../bytes/owned_chunk.ts";
import { PusherError } from "../errors.ts";
import type { OmittedLayer } from "../image/omitted_layers.ts";
import { sha256Digest } from "../bytes/sha256.ts";
import type { ArchiveLayer } from "../image/types.ts";
import type { BlobInfo } from "../logging/events.ts";
import type { BlobRef } from "../oci/descriptor.ts";
import { takesChunkedUploads } from "../registry/quirks.ts";
import type { CachedLayer } from "../state/layer_cache.ts";
import { type SessionMemory, UploadState } from "../state/upload_state.ts";
import { type BlobOutcome, uploadBlob, type UploadSettings } from "./blob_upload.ts";
import { blobInfo, emitBlob, type RunContext } from "./context.ts";
import { retrying } from "../transfer/retrying_request.ts";
import { isCompressible, layerUpload } from "./layer_source.ts";
import { streamOf } from "./progress_stream.ts";
import { chunkSizeFor, MONOLITHIC_MAX_BYTES } from "./chunk_size.ts";

/** Encoder name of layers that go up as they are stored. */
const AS_IS = "as-is";

/**
 * The layer cache key of a layer: a compressed layer by its own digest (it goes up as it is); an
 * uncompressed one by its diff_id and the encoder settings that compress it.
 */
function cacheKey(
  ctx: RunContext,
  layer: ArchiveLayer,
): { source: string; encoder: string } | undefined {
  if (!isCompressible(layer, ctx.learnt.compression)) {
    return layer.storedDigest !== undefined
      ? { source: layer.storedDigest, encoder: AS_IS }
      : undefined;
  }
  const source = layer.diffId ?? layer.storedDigest;
  return source !== undefined ? { source, encoder: ctx.learnt.encoder } : undefined;
}

/** The cache's record of a layer. */
function cached(ctx: RunContext, layer: ArchiveLayer): CachedLayer | undefined {
  const key = cacheKey(ctx, layer);
  return key ? ctx.cache?.lookup(key.source, key.encoder) : undefined;
}

/** The digest a layer will have in the registry when that is known without reading it. */
export function knownOutcome(ctx: RunContext, layer: ArchiveLayer): BlobRef | undefined {
  if (layer.omitted !== undefined) return omittedRef(layer, layer.omitted);
  if (!isCompressible(layer, ctx.learnt.compression) && layer.storedDigest !== undefined) {
    return { digest: layer.storedDigest, size: layer.size, compression: layer.compression };
  }
  if (ctx.learnt.compression.target === "none") {
    const digest = layer.storedDigest ?? layer.diffId;
    if (digest !== undefined) return { digest, size: layer.size, compression: "none" };
  }
  return cached(ctx, layer);
}

/**
 * Remembers where a layer went, so a later push needs neither compression nor upload. A layer
 * declared uncompressed whose bytes proved compressed (`passedThrough`) is keyed by its digest.
 */
function remember(
  ctx: RunContext,
  layer: ArchiveLayer,
  pushed: BlobRef,
  passedThrough = false,
): void {
  if (ctx.cache === undefined || ctx.options.dryRun) return;
  const key = passedThrough ? { source: pushed.digest, encoder: AS_IS } : cacheKey(ctx, layer);
  if (key) ctx.cache.record(key.source, key.encoder, pushed, ctx.primary.repository);
}

/**
 * The key of a layer's open upload session in the resume state: keyed like the layer cache, plus
 * the Deno version for compressed output (its zlib and zstd builds fix the compressed bytes).
 */
function uploadKey(ctx: RunContext, layer: ArchiveLayer): string | undefined {
  const key = cacheKey(ctx, layer);
  if (key === undefined || ctx.uploads === undefined) return undefined;
  const encoder = key.encoder === AS_IS ? AS_IS : `${key.encoder}-deno${Deno.version.deno}`;
  return UploadState.key(ctx.primary.repository, key.source, encoder);
}

/** Cancels a session an earlier run left open for a layer that no longer needs it. */
async function dropSavedSession(ctx: RunContext, memory: SessionMemory | undefined): Promise<void> {
  const saved = memory?.recall();
  if (memory === undefined || saved === undefined) return;
  memory.forget();
  const session = { location: new URL(saved.location), offset: saved.offset };
  await retrying(ctx, "DELETE upload", (signal) => ctx.primary.client.cancelUpload(session, signal))
    .catch(() => {});
}

/**
 * Repositories of this registry that may hold a blob: one that got it earlier in this operation
 * (`landedIn`), the cache's, then `--mount-from`.
 */
function mountSources(
  ctx: RunContext,
  layer: ArchiveLayer,
  landedIn: string | undefined,
): string[] {
  const sources: string[] = landedIn !== undefined ? [landedIn] : [];
  sources.push(...(cached(ctx, layer)?.repositories ?? []));
  if (ctx.options.mountFrom !== undefined) sources.push(ctx.options.mountFrom);
  return [...new Set(sources)].filter((repository) => repository !== ctx.primary.repository)
    .slice(0, 3);
}

/** Compresses and hashes a layer without uploading, to learn its digest. */
async function measure(
  ctx: RunContext,
  layer: ArchiveLayer,
  open: () => ReadableStream<Uint8Array>,
): Promise<BlobRef> {
  const upload = layerUpload(layer, open, ctx.learnt.compression, true);
  const { stream } = upload.source.open();
  await stream.pipeTo(releasingSink());
  return await upload.pushed();
}

/**
 * Whether to compute an unknown layer's digest before uploading (compress and hash without
 * uploading, deterministic, so the upload would give the same digest): for a dry run; with
 * `--mount-from`, whose repository likely holds them to mount; and, for a layer larger than a
 * small blob, when the image's config is already in the repository (the layers likely are too).
 * Otherwise the layer goes straight up: computing first would compress it twice, and a small
 * layer costs less to send again than to wait for the config's lookup.
 */
async function worthMeasuring(ctx: RunContext, layer: ArchiveLayer): Promise<boolean> {
  if (ctx.options.dryRun || ctx.options.mountFrom !== undefined) return true;
  return layer.size > MONOLITHIC_MAX_BYTES && await ctx.learnt.imageSeenBefore;
}

/**
 * Whether a small layer that went up without a lookup (its digest was unknown) is there after
 * all: looked up, once its bytes are read, only when the image's config was there already.
 */
async function seenSmallBlob(ctx: RunContext, digest: string): Promise<boolean> {
  if (!(await ctx.learnt.imageSeenBefore)) return false;
  const existing = await retrying(
    ctx,
    `HEAD ${digest}`,
    (signal) => ctx.primary.client.blobExists(digest, signal),
  );
  return existing.exists;
}

/** Looks for a layer in the registry (HEAD, then mounts); true when it is there now. */
async function alreadyThere(
  ctx: RunContext,
  layer: ArchiveLayer,
  found: BlobRef,
  blob: BlobInfo,
  landedIn: string | undefined,
): Promise<boolean> {
  const described = { ...blob, digest: found.digest, uploadSize: found.size };
  emitBlob(ctx, described, "checking");
  const client = ctx.primary.client;
  const existing = await retrying(
    ctx,
    `HEAD ${found.digest}`,
    (signal) => client.blobExists(found.digest, signal),
  );
  if (existing.exists) {
    emitBlob(ctx, described, "exists");
    return true;
  }
  if (ctx.options.dryRun) return false;
  for (const from of mountSources(ctx, layer, landedIn)) {
    const mounted = await retrying(
      ctx,
      `mount ${found.digest}`,
      (signal) => client.mountBlob(found.digest, from, signal),
    );
    if (mounted) {
      emitBlob(ctx, described, "mounted", `from ${from}`);
      return true;
    }
  }
  return false;
}

/** What a layer a delta bundle leaves out is in the registry: exactly as the manifest names it. */
function omittedRef(layer: ArchiveLayer, omitted: OmittedLayer): BlobRef {
  return { digest: omitted.digest, size: omitted.size, compression: layer.compression };
}

/**
 * The key a layer is claimed under across the pushes of one operation: its registry digest when
 * it goes up as stored (the key a copy claims it under too), else what the layer cache keys it by
 * (the same source bytes compressed the same way give the same blob), else its archive entry.
 */
function claimKey(ctx: RunContext, layer: ArchiveLayer): string {
  if (layer.omitted !== undefined) return layer.omitted.digest;
  const key = cacheKey(ctx, layer);
  if (key === undefined) return `entry ${layer.entry}`;
  return key.encoder === AS_IS ? key.source : `${key.source} ${key.encoder}`;
}

/**
 * Gets one layer into the primary repository from a re-readable source. Within an operation of
 * several pushes (blob claims), the layer is claimed first: a push that finds another putting the
 * same layer into the registry waits for it, then finds or mounts it instead of uploading it too.
 */
export async function pushLayer(
  ctx: RunContext,
  layer: ArchiveLayer,
  open: () => ReadableStream<Uint8Array>,
): Promise<BlobRef> {
  const claims = ctx.blobClaims;
  if (claims === undefined || ctx.options.dryRun) return await placeLayer(ctx, layer, open);
  const claim = await claims.claim(
    ctx.primary.reference.apiBase.href,
    claimKey(ctx, layer),
    ctx.signal,
  );
  try {
    const placed = await placeLayer(ctx, layer, open, claim.landedIn);
    claim.landed(ctx.primary.repository);
    return placed;
  } finally {
    claim.release();
  }
}

/**
 * A layer a delta bundle leaves out: the registry has it in the repository (or it can be mounted
 * from one that has it); it is never read, as the archive does not hold it.
 *
 * @throws {PusherError} kind `input` when the registry has it nowhere this push can see.
 */
async function placeOmittedLayer(
  ctx: RunContext,
  layer: ArchiveLayer,
  omitted: OmittedLayer,
  landedIn: string | undefined,
): Promise<BlobRef> {
  const blob = blobInfo(layer);
  const ref = omittedRef(layer, omitted);
  if (await alreadyThere(ctx, layer, ref, blob, landedIn)) return ref;
  if (ctx.options.dryRun) {
    emitBlob(
      ctx,
      { ...blob, digest: ref.digest, uploadSize: ref.size },
      "planned",
      "left out of the delta archive: the push needs it mounted from the repository that holds it",
    );
    return ref;
  }
  throw new PusherError(
    "input",
    `layer ${omitted.digest} is left out of the delta archive and ${ctx.primary.name} does not ` +
      "have it",
    {
      hint: "push the bundle this delta was made against first, or push it with push --all, " +
        "which mounts left-out layers from the repositories that hold them",
    },
  );
}

/** {@link pushLayer} once claimed; `landedIn` is a repository that got it in this operation. */
async function placeLayer(
  ctx: RunContext,
  layer: ArchiveLayer,
  open: () => ReadableStream<Uint8Array>,
  landedIn?: string,
): Promise<BlobRef> {
  if (layer.omitted !== undefined) {
    return await placeOmittedLayer(ctx, layer, layer.omitted, landedIn);
  }
  const blob = blobInfo(layer);
  const { options } = ctx;
  const key = options.dryRun ? undefined : uploadKey(ctx, layer);
  const memory = key !== undefined ? ctx.uploads?.memory(key) : undefined;
  let known = knownOutcome(ctx, layer) ?? memory?.recall()?.blob;
  // A layer another push of this operation put into the registry is worth computing the digest
  // of: it can be mounted from there instead of uploaded again.
  if (
    !known && !options.forceUpload &&
    (landedIn !== undefined || await worthMeasuring(ctx, layer))
  ) {
    emitBlob(ctx, blob, "checking", "computing the compressed digest");
    known = await measure(ctx, layer, open);
  }
  if (known && !options.forceUpload && await alreadyThere(ctx, layer, known, blob, landedIn)) {
    remember(ctx, layer, known);
    await dropSavedSession(ctx, memory);
    await ctx.checkpoint();
    return known;
  }
  if (options.dryRun) {
    const planned = known ?? await measure(ctx, layer, open);
    emitBlob(
      ctx,
      { ...blob, digest: planned.digest, uploadSize: planned.size },
      "planned",
      `would upload ${planned.size} bytes`,
    );
    return planned;
  }
  const upload = layerUpload(layer, open, ctx.learnt.compression, true, readProgress(ctx, blob));
  emitBlob(ctx, blob, "uploading");
  const settings = uploadSettings(ctx, blob, layer.size, layer.entry);
  const result = await uploadBlob(upload.source, {
    ...settings,
    ...(memory !== undefined ? { memory } : {}),
    ...(settings.monolithic && !options.forceUpload
      ? { present: (outcome: BlobOutcome) => seenSmallBlob(ctx, outcome.digest) }
      : {}),
    beforeCompletion: async () => {
      const pushed = await upload.pushed();
      if (key !== undefined) await ctx.uploads?.finishing(key, pushed);
    },
  });
  ctx.result.bytesSent += result.bytesSent;
  const pushed = await upload.pushed();
  const outcome: BlobRef = {
    digest: pushed.digest,
    size: pushed.size,
    compression: pushed.compression,
  };
  remember(
    ctx,
    layer,
    outcome,
    isCompressible(layer, ctx.learnt.compression) && pushed.diffId === undefined,
  );
  await ctx.checkpoint();
  emitBlob(
    ctx,
    { ...blob, digest: pushed.digest, uploadSize: pushed.size },
    result.foundOnRetry ? "exists" : "uploaded",
  );
  return pushed;
}

/** A progress reporter for the stored bytes of a blob. */
export function readProgress(ctx: RunContext, blob: BlobInfo): (bytes: number) => void {
  return (bytes) => ctx.emit({ type: "progress", id: blob.id, bytes, total: blob.size });
}

/**
 * Upload settings for one blob of `size` stored bytes: in chunks above the large-layer threshold,
 * or above the request-body size a proxy in front of the registry is known to let through (then
 * in chunks of that size).
 */
export function uploadSettings(
  ctx: RunContext,
  blob: BlobInfo,
  size: number,
  what: string,
): UploadSettings {
  const threshold = ctx.options.largeLayerThreshold;
  const limit = ctx.chunkLimit.bytes ?? Number.POSITIVE_INFINITY;
  return {
    client: ctx.primary.client,
    monolithic: size <= MONOLITHIC_MAX_BYTES && !ctx.learnt.monolithicRefused,
    onMonolithicRefused: () => {
      ctx.learnt.monolithicRefused = true;
    },
    chunked: size > Math.min(threshold, limit) && takesChunkedUploads(ctx.primary.client.registry),
    chunkSize: Math.min(chunkSizeFor(threshold), limit),
    retry: ctx.retry,
    stallTimeoutMs: ctx.stallTimeoutMs,
    label: what,
    signal: ctx.signal,
    onRetry: (attempt, delayMs, reason) => {
      emitBlob(ctx, blob, "retrying", reason);
      ctx.emit({ type: "retry", what, attempt, delayMs, reason });
    },
    onResume: (offset) => emitBlob(ctx, blob, "uploading", `resuming at byte ${offset}`),
    onChunkSizeFits: (bytes) => ctx.chunkLimit.learnt(bytes),
  };
}

/**
 * Gets a small in-memory blob (a config) into the primary repository. `present` is a lookup of
 * it already under way (none with `--force-upload`); the upload starts beside it and stops
 * before its closing `PUT` when the lookup found the blob.
 */
export async function pushBytes(
  ctx: RunContext,
  bytes: Uint8Array,
  digest: string,
  present: Promise<boolean> | undefined,
): Promise<void> {
  const blob: BlobInfo = { id: digest, digest, size: bytes.length, role: "config" };
  emitBlob(ctx, blob, "checking");
  if (ctx.options.dryRun) {
    if (await present) emitBlob(ctx, blob, "exists");
    else emitBlob(ctx, blob, "planned", `would upload ${bytes.length} bytes`);
    return;
  }
  emitBlob(ctx, blob, "uploading");
  const result = await uploadBlob({
    reopenable: true,
    open: () => ({
      stream: streamOf(bytes),
      outcome: Promise.resolve({ digest: sha256Digest(bytes), size: bytes.length }),
    }),
  }, {
    ...uploadSettings(ctx, blob, bytes.length, `config ${digest}`),
    ...(present !== undefined ? { present: () => present } : {}),
  });
  ctx.result.bytesSent += result.bytesSent;
  emitBlob(ctx, blob, result.foundOnRetry ? "exists" : "uploaded");
}
