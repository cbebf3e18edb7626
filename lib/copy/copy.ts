/**
 * The orchestrator of one copy from a registry to a registry: read the source's manifests (and
 * filter an index by `--platform`), get every blob into the target (already there, mounted, or
 * streamed from the source's `GET` into the target's upload without touching the disk), then the
 * child manifests by digest, then the top manifest under the tag — the tag last, so a failed copy
 * never moves it. Manifests are copied byte for byte: without a platform filter the target's
 * digests are the source's.
 *
 * Nothing waits for what it does not need: the registry checks of both ends go out beside the
 * source manifest's `GET` (no `ping` before it), a token comes from the realm an earlier run
 * learnt, fetched beside the checks — the first requests, which wait for it, then go out on the
 * checks' connections —, the target's token allows the mounts from the start, and small blobs
 * are read while their upload opens and carried by its closing `PUT`. Whether the target
 * repository is new (no tags) is asked beside the registry checks too: into a new repository,
 * small blobs are read and their uploads opened beside their lookups rather than after them. At
 * first contact with a token target (its realm not known to this run or an earlier one) that
 * question meets the bearer challenge, and asked again it would be answered with the lookups, a
 * round trip after the token: it is not asked again, and small blobs go beside their lookups
 * too. The cost of that bet is bounded: for each small blob the target already holds, one
 * source `GET` and one upload opened and then cancelled beside the manifests (no round trip
 * more), only at first contact (a run that knows the realm asks with the token, before the
 * lookups are answered).
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { RawDocument } from "../oci/descriptor.ts";
import { parsePlatform } from "../oci/platform.ts";
import type { BlobInfo, EventSink } from "../logging/events.ts";
import { Redactor } from "../logging/redact.ts";
import { schedule } from "../transfer/scheduler.ts";
import { retrySettings } from "../transfer/retry.ts";
import type { BlobClaims } from "../transfer/blob_claims.ts";
import { deadlineSignal, resultEvent, type RunHooks, type WriteResult } from "../transfer/run.ts";
import { emptyTally } from "../push/context.ts";
import { type RequestContext, retrying } from "../transfer/retrying_request.ts";
import { putChildManifest, putChildManifests, putTopManifest } from "../push/publish.ts";
import {
  type ManifestSource,
  type ManifestTree,
  readManifestTree,
} from "../registry/manifest_tree.ts";
import type { RegistryClient } from "../registry/client.ts";
import { ClientPool } from "../registry/client_pool.ts";
import { formatReference, parseReference, type Reference } from "../registry/reference.ts";
import { cacheDirectory } from "../state/cache_dir.ts";
import { realmStore } from "../state/realm_memory.ts";
import { reportedError, startRegistryChecks } from "../transfer/registry_check.ts";
import { type BlobCopyContext, copyBlob } from "./blob_copy.ts";
import type { CopyOptions } from "./options.ts";

/** What a copy did (its digest is the source's unless platforms were dropped). */
export interface CopyResult extends WriteResult {
  /** The source as read (`registry/repository:tag` or `…@digest`). */
  source: string;
  /** Digest of the source's top manifest. */
  sourceDigest: string;
  /** `registry/repository@sha256:…` of the manifest or index the target now holds. */
  digestReference: string;
}

/** Hooks of a copy run. */
export interface CopyHooks extends RunHooks {
  /**
   * Blobs in flight across several copies of one operation (a sync's images): a blob another
   * copy is putting into the same target registry is waited for, then found or mounted.
   */
  blobClaims?: BlobClaims;
  /**
   * The clients of a larger operation (a sync's): the copy takes its clients from there, with
   * their tokens and connections, checks each registry only if the operation has not, and leaves
   * closing them to the operation.
   */
  clients?: ClientPool;
}

/**
 * Copies an image from one registry repository to another (or to another tag), keeping its
 * digest unless `platforms` drops children of an index.
 *
 * @example
 * ```ts
 * import { copy } from "../mod.ts";
 * const result = await copy({
 *   source: "docker.io/library/alpine:3.20",
 *   target: "localhost:5000/mirror/alpine:3.20",
 *   platforms: ["linux/amd64"],
 *   timeoutSeconds: 600,
 *   stallTimeoutSeconds: 60,
 *   maxConcurrent: 4,
 *   retryAttempts: 3,
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 * });
 * console.log(result.digest, result.bytesSent);
 * ```
 *
 * @throws {PusherError} kind `usage` for a bad reference or `--platform`, or a wanted platform
 * the image lacks; `input` for a malformed source manifest; `verify` when a blob's bytes don't match its digest or the target pins another
 * digest; `auth`, `network`, `registry` as the registries answer.
 */
export async function copy(options: CopyOptions, runtime: CopyHooks = {}): Promise<CopyResult> {
  const started = Date.now();
  const emit: EventSink = runtime.events ?? (() => {});
  const platforms = options.platforms.map(parsePlatform);
  const sourceReference = parseReference(options.source);
  const targetReference = parseReference(options.target);
  const { signal, abort, dispose } = deadlineSignal(
    runtime.signal,
    options.timeoutSeconds,
    "copy",
  );
  const pool = runtime.clients ?? await ClientPool.open(
    [sourceReference, targetReference],
    options,
    runtime.redactor ?? new Redactor(),
    { realms: realmStore(cacheDirectory()), signal },
  );
  let checks: Promise<void> = Promise.resolve();
  const cancelling: Promise<void>[] = [];
  const sameRegistry = sourceReference.apiBase.href === targetReference.apiBase.href;
  const mountFrom = sameRegistry && sourceReference.repository !== targetReference.repository
    ? sourceReference.repository
    : undefined;
  try {
    // The target's first token already allows the mounts (pull on the source repository).
    const [source, target] = await Promise.all([
      pool.client(sourceReference, "pull", options.sourceCredentials),
      pool.client(
        targetReference,
        "push",
        options.credentials,
        mountFrom !== undefined ? [mountFrom] : [],
      ),
    ]);
    const requests: RequestContext = {
      emit,
      signal,
      retry: retrySettings(options.retryAttempts),
      stallTimeoutMs: options.stallTimeoutSeconds * 1000,
    };
    // The checks first: the requests waiting for a token then wait for them too, and go out on
    // their connections.
    checks = startRegistryChecks(requests, pool, [
      { reference: sourceReference, client: source },
      { reference: targetReference, client: target },
    ], abort);
    const ctx: BlobCopyContext = {
      ...requests,
      result: { tally: emptyTally() },
      source,
      target,
      mountFrom,
      dryRun: options.dryRun,
      learnt: { monolithicRefused: false },
      readBesideLookup: options.dryRun ? Promise.resolve(false) : readBesideLookup(target, signal),
      cancelling,
      ...(runtime.blobClaims !== undefined
        ? { claims: { table: runtime.blobClaims, registry: targetReference.apiBase.href } }
        : {}),
    };
    const tree = await readManifestTree(
      manifestSource(ctx, formatReference(sourceReference)),
      sourceReference.digest ?? sourceReference.tag ?? "latest",
      platforms,
    );
    checkPinnedDigest(targetReference, tree);
    announce(ctx, options, sourceReference, targetReference, tree);
    const sent = await schedule(
      tree.blobs.map((blob) => ({
        weight: blob.size,
        // The run's signal too: an upload left cancelling its session outlives the schedule.
        run: (taskSignal: AbortSignal) =>
          copyBlob({ ...ctx, signal: AbortSignal.any([taskSignal, signal]) }, blob),
      })),
      options.maxConcurrent,
      signal,
    );
    await checks;
    const references = await writeManifests(ctx, targetReference, tree);
    const name = `${targetReference.registry}/${targetReference.repository}`;
    const result: CopyResult = {
      source: formatReference(sourceReference),
      sourceDigest: tree.sourceDigest,
      repository: name,
      references,
      digestReference: `${name}@${tree.top.digest}`,
      digest: tree.top.digest,
      mediaType: tree.top.mediaType,
      size: tree.top.bytes.byteLength,
      bytesSent: sent.reduce((sum, bytes) => sum + bytes, 0),
      durationMs: Date.now() - started,
      dryRun: options.dryRun,
    };
    emit(resultEvent(result, { ...ctx.result.tally }));
    return result;
  } catch (error) {
    throw await reportedError(checks, signal.aborted ? signal.reason : error);
  } finally {
    await Promise.all(cancelling);
    dispose();
    if (runtime.clients === undefined) await pool.close();
  }
}

/**
 * Asks whether the target repository has tags; settles true as soon as the question meets the
 * target's bearer challenge (it is not asked again: see `BlobCopyContext.readBesideLookup`), else
 * true for a repository without tags, false for one with tags or when the answer could not be had.
 */
function readBesideLookup(target: RegistryClient, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    target.hasTags(signal, () => resolve(true)).then(
      (has) => resolve(has !== true),
      () => resolve(false),
    );
  });
}

/** Reads manifests and small blobs from the source, each request with the run's retries. */
function manifestSource(ctx: BlobCopyContext, label: string): ManifestSource {
  return {
    label,
    manifest: (reference) =>
      retrying(
        ctx,
        `manifest ${reference} of the source`,
        (signal) => ctx.source.getManifest(reference, signal),
      ),
    blob: (digest) =>
      retrying(ctx, `blob ${digest} of the source`, async (signal) => {
        const download = await ctx.source.getBlob(digest, { signal });
        return new Uint8Array(await new Response(download.body).arrayBuffer());
      }),
  };
}

/** Refuses a target pinned to a digest the copy would not have (before anything is written). */
function checkPinnedDigest(target: Reference, tree: ManifestTree): void {
  if (target.digest === undefined || target.digest === tree.top.digest) return;
  throw new PusherError(
    "verify",
    `the copy would be ${tree.top.digest}, not ${target.digest} as the target reference asks`,
    tree.filtered ? { hint: "--platform built a new index, which has a new digest" } : {},
  );
}

/** Emits the start event and warnings about what the copy changes or leaves out. */
function announce(
  ctx: BlobCopyContext,
  options: CopyOptions,
  source: Reference,
  target: Reference,
  tree: ManifestTree,
): void {
  const blobs: BlobInfo[] = tree.blobs.map((blob) => ({
    id: blob.digest,
    digest: blob.digest,
    size: blob.size,
    role: blob.role,
  }));
  ctx.emit({
    type: "start",
    file: formatReference(source),
    targets: [formatReference(target)],
    blobs,
    totalBytes: blobs.reduce((sum, blob) => sum + blob.size, 0),
    dryRun: options.dryRun,
  });
  if (tree.filtered) {
    ctx.emit({
      type: "warning",
      message: `--platform ${options.platforms.join(" ")} kept ${tree.children.length} of the ` +
        `index's manifests: the index digest changed from ${tree.sourceDigest} to ` +
        `${tree.top.digest} (the platform manifests keep theirs)`,
    });
  }
  for (const digest of tree.foreignLayers) {
    ctx.emit({
      type: "warning",
      message: `layer ${digest} is a foreign layer (it has URLs): not copied`,
    });
  }
}

/**
 * Writes the child manifests by digest (the image manifests at once), then the top one under the tag (or its digest when the
 * target names none); in a dry run, only the references. Returns the references.
 */
async function writeManifests(
  ctx: BlobCopyContext,
  target: Reference,
  tree: ManifestTree,
): Promise<string[]> {
  const name = `${target.registry}/${target.repository}`;
  const tag = target.tag ?? tree.top.digest;
  const reference = target.tag !== undefined ? `${name}:${tag}` : `${name}@${tag}`;
  if (ctx.dryRun) return [reference];
  await putChildManifests(
    tree.children,
    (child: RawDocument) => putChildManifest(ctx, ctx.target, name, child),
  );
  await putTopManifest(ctx, ctx.target, tag, tree.top, reference);
  ctx.emit({
    type: "manifest",
    digest: tree.top.digest,
    mediaType: tree.top.mediaType,
    size: tree.top.bytes.byteLength,
    reference,
  });
  if (target.tag !== undefined) ctx.emit({ type: "tag", reference, digest: tree.top.digest });
  return [reference];
}
