/**
 * `push --all`: every image of a multi-image archive (a bundle from `pull`, `docker save a b`,
 * `podman save --multi-image-archive`, an OCI layout with several names) goes under one prefix,
 * each image through `push()` chosen by its digest, a few at a time. The pushes share one table
 * of layers in flight, so a layer two images share goes up once and the other image mounts it.
 * A delta bundle is checked first: when the registry lacks a layer the archive leaves out,
 * nothing is pushed (see {@link ./delta_check.ts}). An image that fails is reported and the others
 * go on, as in a sync.
 *
 * @module
 */

import { type ErrorKind, firstFailureExitCode, PusherError, toPusherError } from "../errors.ts";
import { readArchiveEntries } from "../image/archive_listing.ts";
import { listLayout } from "../image/layout.ts";
import type { EventSink } from "../logging/events.ts";
import { Redactor } from "../logging/redact.ts";
import { push } from "../push/push.ts";
import { checkPrefix, type TargetNaming } from "../sync/target_name.ts";
import { BlobClaims } from "../transfer/blob_claims.ts";
import { retrySettings } from "../transfer/retry.ts";
import type { RunHooks } from "../transfer/run.ts";
import { schedule } from "../transfer/scheduler.ts";
import { type BundleImage, placeImages } from "./bundle_images.ts";
import { checkOmittedLayers } from "./delta_check.ts";
import { type BundlePushOptions, DEFAULT_PARALLEL_IMAGES } from "./options.ts";

/** How one image of the bundle ended. */
export interface BundleImageOutcome {
  /** Its first name in the archive (or its digest). */
  image: string;
  /** Where it went (or was to go). */
  targets: string[];
  /** `pushed` (or, in a dry run, planned) or `failed`. */
  status: "pushed" | "failed";
  /** `registry/repository@sha256:…` for each target repository, once pushed. */
  digestReferences: string[];
  /** Bytes uploaded for it. */
  bytesSent: number;
  /** Why it failed. */
  error?: {
    /** The failure's class, which gives the exit code. */
    kind: ErrorKind;
    /** One line, secrets redacted. */
    message: string;
    /** What to try next. */
    hint?: string;
  };
}

/** What `push --all` did. */
export interface BundlePushResult {
  /** Every image's outcome, in archive order. */
  images: BundleImageOutcome[];
  /** Bytes uploaded over all images. */
  bytesSent: number;
  /** Wall time in milliseconds. */
  durationMs: number;
  /** Nothing was written. */
  dryRun: boolean;
}

/**
 * The exit code of a bundle push: 0 when every image went, else the code of the first failed
 * image's kind, in archive order.
 */
export function bundleExitCode(result: BundlePushResult): number {
  return firstFailureExitCode(result.images);
}

/**
 * Pushes every image of an archive under a prefix: `PREFIX/<repository path>:<tag>` per name
 * (`PREFIX/<last segment>:<tag>` with `flatten`).
 *
 * @example
 * ```ts
 * import { bundleExitCode, DEFAULT_PUSH_SETTINGS, pushAll } from "../mod.ts";
 * const result = await pushAll({
 *   ...DEFAULT_PUSH_SETTINGS,
 *   file: "bundle.tar",
 *   prefix: "registry.internal:5000/mirror",
 *   flatten: false,
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 *   forceUpload: false,
 *   noCache: false,
 * });
 * for (const image of result.images) console.log(image.image, image.digestReferences);
 * Deno.exitCode = bundleExitCode(result);
 * ```
 *
 * @throws {PusherError} kind `usage` for a bad prefix or two images with one target, `input` for
 * an unreadable archive or a delta whose left-out layers the registry lacks — all before anything
 * is pushed; `interrupted` when `hooks.signal` aborts. An image's own failure is in the result.
 */
export async function pushAll(
  options: BundlePushOptions,
  hooks: RunHooks = {},
): Promise<BundlePushResult> {
  const started = Date.now();
  const naming: TargetNaming = { prefix: checkPrefix(options.prefix), flatten: options.flatten };
  if (options.file === "-") {
    throw new PusherError("usage", "push --all reads the archive once per image, not from stdin", {
      hint: "save the archive to a file first",
    });
  }
  const images = placeImages(await listLayout(await readArchiveEntries(options.file)), naming);
  const emit: EventSink = hooks.events ?? (() => {});
  const redactor = hooks.redactor ?? new Redactor();
  const signal = hooks.signal ?? new AbortController().signal;
  await checkOmittedLayers(images, {
    requests: {
      emit,
      signal,
      retry: retrySettings(options.retryAttempts),
      stallTimeoutMs: options.stallTimeoutSeconds * 1000,
    },
    naming,
    credentials: options.credentials,
    redactor,
    concurrency: options.maxConcurrent,
    dryRun: options.dryRun,
    skipTls: options.skipTls,
    caCertFiles: options.caCertFiles,
  });
  const claims = new BlobClaims();
  const outcomes = await schedule(
    images.map((image) => ({
      weight: 0,
      run: () => pushImage(options, image, { ...hooks, redactor }, claims),
    })),
    options.parallelImages ?? DEFAULT_PARALLEL_IMAGES,
    hooks.signal,
  );
  return {
    images: outcomes,
    bytesSent: outcomes.reduce((sum, image) => sum + image.bytesSent, 0),
    durationMs: Date.now() - started,
    dryRun: options.dryRun,
  };
}

/** Pushes one image of the bundle; its failure becomes its outcome (an abort is rethrown). */
async function pushImage(
  options: BundlePushOptions,
  image: BundleImage,
  hooks: RunHooks & { redactor: Redactor },
  claims: BlobClaims,
): Promise<BundleImageOutcome> {
  const outcome: BundleImageOutcome = {
    image: image.label,
    targets: image.targets,
    status: "failed",
    digestReferences: [],
    bytesSent: 0,
  };
  const failed = (error: unknown): BundleImageOutcome => {
    if (hooks.signal?.aborted) throw hooks.signal.reason;
    const problem = toPusherError(error);
    outcome.error = {
      kind: problem.kind,
      message: hooks.redactor.redact(problem.message),
      ...(problem.hint !== undefined ? { hint: hooks.redactor.redact(problem.hint) } : {}),
    };
    return outcome;
  };
  if (image.problem !== undefined) return failed(image.problem);
  const { prefix: _prefix, flatten: _flatten, parallelImages: _parallel, ...settings } = options;
  try {
    const pushed = await push(
      { ...settings, targets: image.targets, image: image.selector },
      { ...hooks, blobClaims: claims },
    );
    return {
      ...outcome,
      status: "pushed",
      digestReferences: pushed.digestReferences,
      bytesSent: pushed.bytesSent,
    };
  } catch (error) {
    return failed(error);
  }
}
