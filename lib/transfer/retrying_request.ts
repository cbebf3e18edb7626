/**
 * One registry request under both safety nets: the retry policy (backoff, `Retry-After`, the
 * outage budget) around it, and the stall guard on every attempt. Free of any command's state, so
 * push, pull and copy run their requests the same way.
 *
 * @module
 */

import { guardRequest } from "./request_guard.ts";
import { type RetryInfo, type RetryPolicy, withRetry } from "./retry.ts";

/** How {@link retryingRequest} runs a request. */
export interface RetryingRequestSettings {
  /** The run's retry policy (its own `signal` and `onRetry` are replaced by the fields below). */
  policy: Omit<RetryPolicy, "signal" | "onRetry">;
  /** Aborts the request and the waits between attempts. */
  signal: AbortSignal;
  /** An attempt with no bytes moving for this long is aborted and counts as failed. */
  stallTimeoutMs: number;
  /** Size of an in-memory request body, which gets a longer stall window. */
  bodyBytes?: number;
  /** Told before each wait for a retry. */
  onRetry?: (info: RetryInfo) => void;
}

/**
 * Runs `operation` (named `what` in stall errors) until it succeeds or the policy gives up. Each
 * attempt gets a signal that aborts on `settings.signal` or when no answer came for the stall
 * timeout; a stall is a retryable failure like a lost connection.
 */
export async function retryingRequest<T>(
  what: string,
  operation: (signal: AbortSignal) => Promise<T>,
  settings: RetryingRequestSettings,
): Promise<T> {
  const guard = {
    timeoutMs: settings.stallTimeoutMs,
    label: what,
    bodyBytes: settings.bodyBytes ?? 0,
  };
  return await withRetry(
    () => guardRequest(settings.signal, guard, (signal) => operation(signal)),
    {
      ...settings.policy,
      signal: settings.signal,
      ...(settings.onRetry !== undefined ? { onRetry: settings.onRetry } : {}),
    },
  );
}
