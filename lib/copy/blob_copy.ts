/**
 * Gets one blob of a copy into the target repository: already there (`HEAD`), mounted from the
 * source repository when both are on one registry, or streamed from the source's `GET` into the
 * target's upload (the push's uploader, with its retries and session handling). A small blob is
 * read whole beside the upload's start and carried by its closing `PUT`: `HEAD`, then `GET` and
 * `POST` together, then `PUT`. Into a new repository (no tags: nothing to find there, short of a
 * copy that failed half-way) the small blob does not wait for its lookup: `HEAD`, `GET` and
 * `POST` go out together, and the closing `PUT` waits for the lookup — a blob found there is not
 * sent, only read for nothing, and its session is cancelled while the copy goes on (see
 * {@link BlobCopyContext.cancelling}). So too at first contact with a token target, whose tag
 * question is answered no sooner than the lookups (see {@link BlobCopyContext.readBesideLookup}).
 * A dry run stops after the `HEAD` and reports what it would transfer. With blob claims (a sync's
 * images), the blob is claimed first, so an image sharing it with another waits, then finds or
 * mounts it.
 *
 * @module
 */

import type { BlobInfo } from "../logging/events.ts";
import { uploadBlob } from "../push/blob_upload.ts";
import { type BlobEventContext, emitBlob } from "../push/context.ts";
import { type RequestContext, retrying } from "../transfer/retrying_request.ts";
import { chunkSizeFor, MONOLITHIC_MAX_BYTES } from "../push/chunk_size.ts";
import { DEFAULT_PUSH_SETTINGS } from "../options.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { BlobClaims } from "../transfer/blob_claims.ts";
import { heldBlobSource, registryBlobSource } from "./blob_source.ts";
import type { TreeBlob } from "../registry/manifest_tree.ts";

/** What copying a blob needs of the run. */
export interface BlobCopyContext extends RequestContext, BlobEventContext {
  /** Reads from the source repository. */
  source: RegistryClient;
  /** Writes to the target repository. */
  target: RegistryClient;
  /** The source repository, when it is on the target's registry (blobs are mounted from it). */
  mountFrom: string | undefined;
  /** Write nothing. */
  dryRun: boolean;
  /** Blobs in flight across the images of one operation, and the target registry's key in it. */
  claims?: { table: BlobClaims; registry: string };
  /** What the copy learnt of the target: it refused a blob carried by the closing `PUT`. */
  learnt: { monolithicRefused: boolean };
  /**
   * Settles true when a small blob need not wait for its lookup before it is read and its upload
   * opened: the target repository proved new (no tags), or the question whether it is new met
   * the target's bearer challenge (first contact with a token registry: asked again with the
   * token, it would be answered with the lookups, when the uploads could already be open).
   * Settles false when the repository has tags or that could not be told.
   */
  readBesideLookup: Promise<boolean>;
  /**
   * Uploads opened beside a lookup that then found their blob in the target: they end by
   * cancelling their sessions, which the copy waits for beside its manifests, not before them.
   */
  cancelling: Promise<void>[];
}

/** Progress events at most this often per blob. */
const PROGRESS_INTERVAL_MS = 200;

/** Gets one blob into the target; returns the request-body bytes the upload sent. */
export async function copyBlob(ctx: BlobCopyContext, blob: TreeBlob): Promise<number> {
  if (ctx.claims === undefined || ctx.dryRun) return await placeBlob(ctx, blob, []);
  const claim = await ctx.claims.table.claim(ctx.claims.registry, blob.digest, ctx.signal);
  try {
    const landedIn = claim.landedIn !== undefined ? [claim.landedIn] : [];
    const sent = await placeBlob(ctx, blob, landedIn);
    claim.landed(ctx.target.repository);
    return sent;
  } finally {
    claim.release();
  }
}

/** {@link copyBlob} once claimed; `alsoMountFrom` are repositories that got it in this operation. */
async function placeBlob(
  ctx: BlobCopyContext,
  blob: TreeBlob,
  alsoMountFrom: readonly string[],
): Promise<number> {
  const { digest, size } = blob;
  const info: BlobInfo = { id: digest, digest, size, uploadSize: size, role: blob.role };
  emitBlob(ctx, info, "checking");
  const lookup = retrying(
    ctx,
    `HEAD ${digest}`,
    (signal) => ctx.target.blobExists(digest, signal),
  );
  lookup.catch(() => {});
  const mountSources = new Set([
    ...(ctx.mountFrom !== undefined ? [ctx.mountFrom] : []),
    ...alsoMountFrom,
  ]);
  mountSources.delete(ctx.target.repository);
  const small = size <= MONOLITHIC_MAX_BYTES && !ctx.learnt.monolithicRefused;
  // Whichever tells first: read at once (a new repository, or first contact), or the lookup.
  const readAtOnce = small && !ctx.dryRun && mountSources.size === 0 &&
    await Promise.race([ctx.readBesideLookup, lookup.then(() => false, () => false)]);
  if (!readAtOnce) {
    const existing = await lookup;
    if (existing.exists) {
      emitBlob(ctx, info, "exists");
      return 0;
    }
    if (ctx.dryRun) {
      const how = ctx.mountFrom !== undefined ? `mount from ${ctx.mountFrom} or copy` : "copy";
      emitBlob(ctx, info, "planned", `would ${how} ${size} bytes`);
      return 0;
    }
    for (const from of mountSources) {
      const mounted = await retrying(
        ctx,
        `mount ${digest}`,
        (signal) => ctx.target.mountBlob(digest, from, signal),
      );
      if (mounted) {
        emitBlob(ctx, info, "mounted", `from ${from}`);
        return 0;
      }
    }
  }
  emitBlob(ctx, info, "uploading");
  const onRetry = (attempt: number, delayMs: number, reason: string): void => {
    emitBlob(ctx, info, "retrying", reason);
    ctx.emit({ type: "retry", what: `blob ${digest}`, attempt, delayMs, reason });
  };
  const reading = {
    source: ctx.source,
    digest,
    size,
    retry: ctx.retry,
    signal: ctx.signal,
    onRetry,
  };
  const source = small ? heldBlobSource(reading) : registryBlobSource(reading);
  const upload = uploadBlob(source, {
    client: ctx.target,
    monolithic: small,
    onMonolithicRefused: () => {
      ctx.learnt.monolithicRefused = true;
    },
    chunked: false,
    chunkSize: chunkSizeFor(DEFAULT_PUSH_SETTINGS.largeLayerThreshold),
    retry: ctx.retry,
    stallTimeoutMs: ctx.stallTimeoutMs,
    label: `blob ${digest}`,
    signal: ctx.signal,
    onProgress: throttledProgress(ctx, digest, size),
    onRetry,
    onResume: (offset) => emitBlob(ctx, info, "uploading", `resuming at byte ${offset}`),
    ...(readAtOnce ? { present: async () => (await lookup).exists } : {}),
  });
  upload.catch(() => {});
  if (readAtOnce && await lookup.then((found) => found.exists, () => false)) {
    // The upload ends by cancelling its session, which the blob's place no longer waits for.
    ctx.cancelling.push(upload.then(() => {}, () => {}));
    emitBlob(ctx, info, "exists");
    return 0;
  }
  const result = await upload;
  emitBlob(ctx, info, result.foundOnRetry ? "exists" : "uploaded");
  return result.bytesSent;
}

/** Reports the bytes the target holds, at most every {@link PROGRESS_INTERVAL_MS} and at the end. */
function throttledProgress(
  ctx: RequestContext,
  id: string,
  total: number,
): (bytes: number) => void {
  let last = 0;
  return (bytes) => {
    const now = Date.now();
    if (bytes < total && now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    ctx.emit({ type: "progress", id, bytes, total });
  };
}
