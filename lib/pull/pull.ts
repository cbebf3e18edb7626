/**
 * The orchestrator of one pull: read every source's manifests, plan one archive holding every
 * blob once, then download the blobs in parallel straight into their places inside a partial
 * archive (`<output>.partial.d/archive.tar`, see {@link ./partial_archive.ts}), and rename it to
 * the output only when every blob is in and verified. A killed pull, run again, continues from
 * the partial archive. `-o -` fills a temporary partial archive and then streams it to stdout.
 *
 * Round trips are what a far registry costs: the sources are read at once, the registry check
 * (`GET /v2/`, once per registry) goes out beside their manifest `GET`s, and a token comes from
 * the realm an earlier run learnt, fetched beside the first requests.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { PusherError } from "../errors.ts";
import { planArchive } from "../image/archive_plan.ts";
import { IMAGE_CONFIG_TYPES } from "../oci/media_types.ts";
import type { BlobInfo, EventSink, PulledImage } from "../logging/events.ts";
import { Redactor } from "../logging/redact.ts";
import { type RetrySettings, retrySettings } from "../transfer/retry.ts";
import { type RequestContext, retrying } from "../transfer/retrying_request.ts";
import { deadlineSignal, type RunHooks } from "../transfer/run.ts";
import { schedule, type Task } from "../transfer/scheduler.ts";
import type { RegistryClient } from "../registry/client.ts";
import { ClientPool } from "../registry/client_pool.ts";
import { cacheDirectory } from "../state/cache_dir.ts";
import { realmStore } from "../state/realm_memory.ts";
import { reportedError, startRegistryChecks } from "../transfer/registry_check.ts";
import { formatReference, parseReference } from "../registry/reference.ts";
import { parsePlatform } from "../oci/platform.ts";
import { archiveLayout } from "./archive_layout.ts";
import { receiveBlob } from "./blob_fetch.ts";
import { requireFreeSpace } from "./disk_space.ts";
import type { PullOptions } from "./options.ts";
import { PartialArchive } from "./partial_archive.ts";
import { resolveSource, type SourceImage } from "./source_image.ts";

/** What a pull did. */
export interface PullResult {
  /** The archive written (`-` for standard output). */
  output: string;
  /** The images in it, in the order given. */
  images: PulledImage[];
  /** Size of the archive in bytes. */
  size: number;
  /** Bytes received from registries by this run. */
  bytesDownloaded: number;
  /** Wall time in milliseconds. */
  durationMs: number;
  /** Nothing was downloaded or written. */
  dryRun: boolean;
}

/** The blob counters of a run. */
interface Tally {
  downloaded: number;
  present: number;
  bytesDownloaded: number;
}

/** What the download phase shares. */
interface Downloads {
  archive: PartialArchive;
  sources: Map<string, RegistryClient>;
  retry: RetrySettings;
  stallTimeoutMs: number;
  emit: EventSink;
  tally: Tally;
}

function blobInfo(digest: string, size: number, mediaType: string): BlobInfo {
  return {
    id: digest,
    digest,
    size,
    role: IMAGE_CONFIG_TYPES.includes(mediaType) ? "config" : "layer",
  };
}

/** Downloads one blob into its place in the archive, unless an earlier run put it there. */
async function downloadBlob(ctx: Downloads, blob: BlobInfo, signal: AbortSignal): Promise<void> {
  const digest = blob.id;
  if (ctx.archive.isDone(digest)) {
    ctx.tally.present++;
    ctx.emit({ type: "blob", blob, state: "present" });
    return;
  }
  const source = ctx.sources.get(digest);
  if (source === undefined) throw new PusherError("internal", `no source repository for ${digest}`);
  const region = await ctx.archive.openRegion(digest, blob.size);
  ctx.emit({ type: "blob", blob, state: "downloading" });
  try {
    const received = await receiveBlob(region, {
      source,
      digest,
      size: blob.size,
      retry: {
        ...ctx.retry,
        onRetry: (info) => {
          const reason = info.error instanceof Error ? info.error.message : String(info.error);
          ctx.emit({ type: "blob", blob, state: "retrying", reason });
          ctx.emit({
            type: "retry",
            what: `download of ${digest}`,
            attempt: info.attempt,
            delayMs: info.delayMs,
            reason,
          });
        },
      },
      stallTimeoutMs: ctx.stallTimeoutMs,
      signal,
      onProgress: (bytes) => {
        ctx.archive.noteProgress(digest, bytes);
        ctx.emit({ type: "progress", id: digest, bytes, total: blob.size });
      },
    });
    ctx.tally.bytesDownloaded += received.downloaded;
  } catch (error) {
    // Bytes that failed verification are no use to a re-run.
    if (error instanceof PusherError && error.kind === "verify") {
      ctx.archive.noteProgress(digest, 0);
    }
    throw error;
  } finally {
    region.close();
  }
  await ctx.archive.markDone(digest);
  ctx.tally.downloaded++;
  ctx.emit({ type: "blob", blob, state: "downloaded" });
}

/** Copies the finished archive at `path` to standard output. */
async function streamToStdout(path: string): Promise<void> {
  const file = await Deno.open(path, { read: true });
  await file.readable.pipeTo(Deno.stdout.writable, { preventClose: true });
}

function pulledImage(source: SourceImage): PulledImage {
  return {
    source: source.source,
    sourceDigest: source.sourceDigest,
    digest: source.digest,
    mediaType: source.mediaType,
    size: source.size,
    platforms: source.platforms,
  };
}

/**
 * Pulls images from registries into one Docker-25-style archive (OCI layout plus
 * `manifest.json`), readable by `docker load`, `podman load`, skopeo, `ctr import` and `push`.
 *
 * @example
 * ```ts
 * import { DEFAULT_PUSH_SETTINGS, pull } from "./mod.ts";
 * const result = await pull({
 *   ...DEFAULT_PUSH_SETTINGS,
 *   sources: ["localhost:5000/app:1.0"],
 *   output: "app.tar",
 *   platforms: [],
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 * });
 * console.log(result.images[0]?.digest, result.size);
 * ```
 *
 * @throws {PusherError} kind `usage` for a bad source or platform, `verify` when a blob does not
 * match its digest (the archive is not completed), `input` when the disk is too small, and the
 * registry's errors (`auth`, `network`, `registry`).
 */
export async function pull(options: PullOptions, runtime: RunHooks = {}): Promise<PullResult> {
  const started = Date.now();
  const emit: EventSink = runtime.events ?? (() => {});
  if (options.sources.length === 0) {
    throw new PusherError("usage", "no image to pull", { hint: "name at least one SOURCE" });
  }
  const platforms = options.platforms.map(parsePlatform);
  const references = options.sources.map(parseReference);
  const { signal, abort, dispose } = deadlineSignal(
    runtime.signal,
    options.timeoutSeconds,
    "pull",
  );
  const retry = retrySettings(options.retryAttempts);
  const stallTimeoutMs = options.stallTimeoutSeconds * 1000;
  const pool = await ClientPool.open(references, options, runtime.redactor ?? new Redactor(), {
    realms: realmStore(cacheDirectory()),
    signal,
  });
  const requests: RequestContext = { emit, signal, retry, stallTimeoutMs };
  let checks: Promise<void> = Promise.resolve();
  let temporary: string | undefined;
  try {
    const endpoints = await Promise.all(references.map(async (reference) => ({
      reference,
      client: await pool.client(reference, "pull", options.credentials),
    })));
    checks = startRegistryChecks(requests, pool, endpoints, abort);
    const request = <T>(what: string, operation: (signal: AbortSignal) => Promise<T>) =>
      retrying(requests, what, operation);
    const resolved = await Promise.all(
      endpoints.map(({ reference, client }) =>
        resolveSource(reference, platforms, {
          label: formatReference(reference),
          manifest: (name) =>
            request(`GET manifest ${name}`, (attempt) => client.getManifest(name, attempt)),
          blob: (digest) =>
            request(`GET config ${digest}`, async (attempt) => {
              const download = await client.getBlob(digest, { signal: attempt });
              return new Uint8Array(await new Response(download.body).arrayBuffer());
            }),
        })
      ),
    );
    await checks;
    const sources = new Map<string, RegistryClient>();
    resolved.forEach((source, i) => {
      const client = endpoints[i]?.client;
      if (client === undefined) throw new PusherError("internal", "a source has no client");
      for (const digest of source.blobs) {
        if (!sources.has(digest)) sources.set(digest, client);
      }
    });
    const plan = planArchive(resolved.map((source) => source.image));
    const layout = archiveLayout(plan);
    const blobs = plan.fetched.map((blob) => blobInfo(blob.digest, blob.size, blob.mediaType));
    emit({
      type: "start",
      action: "pull",
      file: options.output,
      targets: resolved.map((source) => source.source),
      blobs,
      totalBytes: blobs.reduce((sum, blob) => sum + blob.size, 0),
      dryRun: options.dryRun,
    });
    for (const source of resolved.filter((image) => image.digest !== image.sourceDigest)) {
      emit({
        type: "warning",
        message: `${source.source}: keeping ${source.platforms.join(", ")} only, so the index ` +
          `digest changed from ${source.sourceDigest} to ${source.digest} (the platform ` +
          `manifests keep their digests)`,
      });
    }
    const tally: Tally = { downloaded: 0, present: 0, bytesDownloaded: 0 };
    if (!options.dryRun) {
      const toStdout = options.output === "-";
      if (toStdout) temporary = await Deno.makeTempDir({ prefix: "docker-image-pusher-pull-" });
      const target = temporary === undefined ? resolve(options.output) : `${temporary}/archive.tar`;
      const reusable = await PartialArchive.reusableBytes(target, layout);
      await requireFreeSpace(
        dirname(target),
        layout.size - reusable,
        `the archive ${options.output}`,
      );
      const archive = await PartialArchive.open(target, layout);
      const ctx: Downloads = { archive, sources, retry, stallTimeoutMs, emit, tally };
      const tasks: Task<void>[] = blobs.map((blob) => ({
        weight: blob.size,
        run: (taskSignal) => downloadBlob(ctx, blob, taskSignal),
      }));
      try {
        await schedule(tasks, options.maxConcurrent, signal);
      } finally {
        await archive.save();
      }
      await archive.complete(target);
      if (toStdout) await streamToStdout(target);
    }
    const result: PullResult = {
      output: options.output,
      images: resolved.map(pulledImage),
      size: layout.size,
      bytesDownloaded: tally.bytesDownloaded,
      durationMs: Date.now() - started,
      dryRun: options.dryRun,
    };
    if (options.dryRun) {
      for (const blob of blobs) emit({ type: "blob", blob, state: "planned" });
    }
    emit({
      type: "pulled",
      output: result.output,
      images: result.images,
      size: result.size,
      bytesDownloaded: result.bytesDownloaded,
      blobs: {
        downloaded: tally.downloaded,
        present: tally.present,
        planned: options.dryRun ? blobs.length : 0,
        plannedBytes: options.dryRun ? blobs.reduce((sum, blob) => sum + blob.size, 0) : 0,
      },
      durationMs: result.durationMs,
      dryRun: result.dryRun,
    });
    return result;
  } catch (error) {
    throw await reportedError(checks, signal.aborted ? signal.reason : error);
  } finally {
    dispose();
    await pool.close();
    if (temporary !== undefined) await Deno.remove(temporary, { recursive: true }).catch(() => {});
  }
}
