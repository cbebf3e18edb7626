/**
 * One registry request under both safety nets: the retry policy (backoff, `Retry-After`, the
 * outage budget) around it, and the stall guard on every attempt, with each retry reported as an
 * event. Free of any command's state, so push, pull and copy run their requests the same way.
 *
 * @module
 */

import type { EventSink } from "../logging/events.ts";
import { guardRequest } from "./request_guard.ts";
import { type RetrySettings, withRetry } from "./retry.ts";

/** What running a request with retries needs of a run (a push's, a pull's or a copy's). */
export interface RequestContext {
  /** Receives a `retry` event before each wait. */
  readonly emit: EventSink;
  /** Aborts the request and the waits between attempts. */
  readonly signal: AbortSignal;
  /** The run's retry policy. */
  readonly retry: RetrySettings;
  /** An attempt with no bytes moving for this long is aborted and counts as failed. */
  readonly stallTimeoutMs: number;
}

/**
 * Runs `operation` (named `what` in stall errors and retry events) until it succeeds or the policy
 * gives up. Each attempt gets a signal that aborts on the run's signal or when no answer came for
 * the stall timeout; a stall is a retryable failure like a lost connection. `bodyBytes`, the size
 * of an in-memory request body, gets a longer stall window.
 */
export async function retrying<T>(
  ctx: RequestContext,
  what: string,
  operation: (signal: AbortSignal) => Promise<T>,
  bodyBytes = 0,
): Promise<T> {
  const guard = { timeoutMs: ctx.stallTimeoutMs, label: what, bodyBytes };
  return await withRetry(() => guardRequest(ctx.signal, guard, operation), {
    ...ctx.retry,
    signal: ctx.signal,
    onRetry: (info) => {
      const reason = info.error instanceof Error ? info.error.message : String(info.error);
      ctx.emit({ type: "retry", what, attempt: info.attempt, delayMs: info.delayMs, reason });
    },
  });
}
