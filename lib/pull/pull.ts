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
import { type ArchivePlan, type BlobDescriptor, planArchive } from "../image/archive_plan.ts";
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
import { heldLayers } from "./exclusion.ts";
import { type PullSource, pullSources } from "./list_sources.ts";
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
  /** Layers a delta leaves out (`excludeFrom`): how many, and their bytes. */
  omitted: { layers: number; bytes: number };
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

/** Runs `work`; a failure is told with the LIST line that named the source, when one did. */
function atSource<T>(source: PullSource | undefined, work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw placed(source, error);
  }
}

/** {@link atSource} for asynchronous work. */
async function atSourceAsync<T>(
  source: PullSource | undefined,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw placed(source, error);
  }
}

/** `error`, its message led by the source's LIST place (`images.txt:3: …`) when it has one. */
function placed(source: PullSource | undefined, error: unknown): unknown {
  if (source?.location === undefined || !(error instanceof PusherError)) return error;
  return new PusherError(error.kind, `${source.location}: ${error.message}`, {
    ...(error.hint !== undefined ? { hint: error.hint } : {}),
    cause: error,
  });
}

/**
 * The archive's plan: every blob of every image, less the layers the far side holds when
 * `excludeFrom` asks for a delta.
 */
async function planBundle(
  options: PullOptions,
  resolved: readonly SourceImage[],
  requests: RequestContext,
  redactor: Redactor | undefined,
): Promise<ArchivePlan> {
  const images = resolved.map((source) => source.image);
  const full = planArchive(images);
  if (options.excludeFrom === undefined) return full;
  const layers = new Map<string, BlobDescriptor>(
    full.fetched.filter((blob) => !IMAGE_CONFIG_TYPES.includes(blob.mediaType))
      .map((blob) => [blob.digest, blob]),
  );
  const held = await heldLayers(
    options.excludeFrom,
    resolved.map((source) => ({
      name: source.image.names[0] ?? source.source,
      layers: source.blobs.flatMap((digest) => {
        const layer = layers.get(digest);
        return layer === undefined ? [] : [layer];
      }),
    })),
    {
      requests,
      flatten: options.flatten ?? false,
      concurrency: options.maxConcurrent,
      skipTls: options.skipTls,
      caCertFiles: options.caCertFiles,
      ...(redactor !== undefined ? { redactor } : {}),
    },
  );
  return planArchive(images, { omit: held });
}

/**
 * Pulls images from registries into one Docker-25-style archive (OCI layout plus
 * `manifest.json`), readable by `docker load`, `podman load`, skopeo, `ctr import` and `push`.
 *
 * @example
 * ```ts
 * import { DEFAULT_PUSH_SETTINGS, pull } from "../mod.ts";
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
 * With `from`, the images of a LIST are pulled too (each line's `--platform=` applies to it); with
 * `excludeFrom`, the archive is a delta bundle: the layers an earlier bundle holds, or a mirror
 * under a registry prefix has, are left out and listed in `omitted-layers.json`.
 *
 * @throws {PusherError} kind `usage` for a bad source or platform (naming its LIST line), `verify` when a blob does not
 * match its digest (the archive is not completed), `input` when the disk is too small, and the
 * registry's errors (`auth`, `network`, `registry`).
 */
export async function pull(options: PullOptions, runtime: RunHooks = {}): Promise<PullResult> {
  const started = Date.now();
  const emit: EventSink = runtime.events ?? (() => {});
  const wanted = await pullSources(options.sources, options.platforms, options.from);
  const parsed = wanted.map((source) =>
    atSource(source, () => ({
      reference: parseReference(source.reference),
      platforms: source.platforms.map(parsePlatform),
    }))
  );
  const references = parsed.map((source) => source.reference);
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
      parsed.map(({ reference, platforms }, i) => {
        const client = endpoints[i]?.client;
        if (client === undefined) throw new PusherError("internal", "a source has no client");
        return atSourceAsync(wanted[i], () =>
          resolveSource(reference, platforms, {
            label: formatReference(reference),
            manifest: (name) =>
              request(`GET manifest ${name}`, (attempt) => client.getManifest(name, attempt)),
            blob: (digest) =>
              request(`GET config ${digest}`, async (attempt) => {
                const download = await client.getBlob(digest, { signal: attempt });
                return new Uint8Array(await new Response(download.body).arrayBuffer());
              }),
          }));
      }),
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
    const plan = await planBundle(options, resolved, requests, runtime.redactor);
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
        await archive.settle();
      }
      await archive.complete(target);
      if (toStdout) await streamToStdout(target);
    }
    const result: PullResult = {
      output: options.output,
      images: resolved.map(pulledImage),
      size: layout.size,
      bytesDownloaded: tally.bytesDownloaded,
      omitted: {
        layers: plan.omitted.length,
        bytes: plan.omitted.reduce((sum, layer) => sum + layer.size, 0),
      },
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
      ...(result.omitted.layers > 0 ? { omitted: result.omitted } : {}),
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
