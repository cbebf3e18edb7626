/**
 * What every command run (push, pull, copy) takes from its caller, and the run's deadline: one
 * abort signal for Ctrl-C and `--timeout` together.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { EventSink, PushEvent } from "../logging/events.ts";
import type { Redactor } from "../logging/redact.ts";

/** Hooks of one run. */
export interface RunHooks {
  /** Receives progress events. */
  events?: EventSink;
  /** Aborts the run (Ctrl-C). */
  signal?: AbortSignal;
  /**
   * The run's redaction: the secrets of the credentials it resolves are registered here, and its
   * `--verbose` request log is redacted with it. Pass the one your log sink redacts with; by
   * default each run gets its own.
   */
  redactor?: Redactor;
}

/** What a run that wrote one image (a manifest or an index) to a registry reports. */
export interface WriteResult {
  /** `registry/repository` of the (first) target. */
  repository: string;
  /** Every reference written (`registry/repository:tag`, or `…@digest` without a tag). */
  references: string[];
  /** Digest of the manifest (or index) written. */
  digest: string;
  /** Its media type. */
  mediaType: string;
  /** Its size in bytes. */
  size: number;
  /** Bytes uploaded, retries included (mounted and present blobs send none). */
  bytesSent: number;
  /** Wall time in milliseconds. */
  durationMs: number;
  /** Nothing was written. */
  dryRun: boolean;
}

/** The `result` event of a run that wrote an image, with how its blobs ended. */
export function resultEvent(
  result: WriteResult,
  blobs: Extract<PushEvent, { type: "result" }>["blobs"],
): PushEvent {
  return {
    type: "result",
    repository: result.repository,
    references: result.references,
    digest: result.digest,
    size: result.size,
    durationMs: result.durationMs,
    bytesSent: result.bytesSent,
    dryRun: result.dryRun,
    blobs,
  };
}

/** A run's abort signal and the disposal of its timer. */
export interface Deadline {
  /** Fires on the caller's signal or when the run is out of time. */
  signal: AbortSignal;
  /** Aborts the run now with `reason` (a failure that ends it, such as the registry check). */
  abort: (reason: unknown) => void;
  /** Stops the timer and detaches from the caller's signal. */
  dispose: () => void;
}

/**
 * An abort signal that fires on the caller's signal or after `timeoutSeconds`, with an
 * `interrupted` error naming the command (`the push took longer than --timeout 60s`).
 */
export function deadlineSignal(
  outer: AbortSignal | undefined,
  timeoutSeconds: number,
  command: string,
): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new PusherError(
        "interrupted",
        `the ${command} took longer than --timeout ${timeoutSeconds}s`,
        {
          hint: "raise --timeout; a re-run skips what is already done",
        },
      ),
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
