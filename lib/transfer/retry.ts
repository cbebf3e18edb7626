/**
 * Retrying an operation with exponential backoff, full jitter, a cap, `Retry-After` and abort.
 *
 * The contract with the code that throws: an error is retried only when it has
 * `retryable === true` (the registry client sets it on network errors and on 408, 429 and 5xx
 * answers). It may carry `retryAfterMs` (from a `Retry-After` header), which replaces the computed
 * delay, capped at {@link RetryPolicy.maxRetryAfterMs}. Every other error passes straight through.
 *
 * @module
 */

/** The fields {@link withRetry} reads from a thrown error. */
export interface RetryableError {
  /** `true` when trying again may succeed. */
  retryable?: boolean;
  /** How long the server asked to wait before the next attempt, in milliseconds. */
  retryAfterMs?: number;
}

/** What {@link RetryPolicy.onRetry} is told before each wait. */
export interface RetryInfo {
  /** The attempt about to be made, counting the first as 1 (so the first retry is 2). */
  attempt: number;
  /** How long the wait before it lasts. */
  delayMs: number;
  /** The error of the attempt that failed. */
  error: unknown;
}

/** How {@link withRetry} retries. */
export interface RetryPolicy {
  /** Retries after the first attempt (0: no retry). */
  attempts: number;
  /** Upper bound of the first retry's delay; doubles for each further retry. */
  baseDelayMs: number;
  /** Cap of the computed delay. */
  maxDelayMs: number;
  /** Cap of a server's `Retry-After`; defaults to {@link MAX_RETRY_AFTER_MS}. */
  maxRetryAfterMs?: number;
  /** Aborts the waits and the attempt in progress. */
  signal?: AbortSignal;
  /** Waits `ms`, rejecting with the signal's reason on abort; defaults to {@link sleep}. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Returns a number in [0, 1); defaults to `Math.random`. */
  random?: () => number;
  /** Called before each wait. */
  onRetry?: (info: RetryInfo) => void;
}

/** Default cap of a server's `Retry-After`: 10 minutes. */
export const MAX_RETRY_AFTER_MS = 10 * 60 * 1000;

/** Whether an error says trying again may succeed (`retryable === true`). */
export function isRetryable(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as RetryableError).retryable === true;
}

/** The `retryAfterMs` an error carries, when it is a finite non-negative number. */
export function retryAfterOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const value = (error as RetryableError).retryAfterMs;
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** The reason a signal aborted, as an `AbortError` when it gave none. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("the operation was aborted", "AbortError");
}

/**
 * Waits `ms` milliseconds on `setTimeout`; rejects with the signal's reason as soon as `signal`
 * aborts (at once when it already has).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The full-jitter backoff delay before retry number `retry` (1 for the first retry):
 * a uniform draw from [0, min(maxDelayMs, baseDelayMs × 2^(retry−1))).
 */
export function backoffDelay(
  retry: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number,
): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

/** Settles like `promise`, or rejects with the signal's reason as soon as `signal` aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Runs `operation` (given the attempt number, from 1) until it succeeds, it throws an error that
 * is not retryable, or `policy.attempts` retries have failed; then returns its value or throws its
 * last error unchanged. Between attempts waits the server's `retryAfterMs` when the error has one,
 * else {@link backoffDelay}. When `policy.signal` aborts, rejects at once with its reason, even
 * while an attempt is still running (the attempt should watch the same signal to stop).
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
): Promise<T> {
  const wait = policy.sleep ?? sleep;
  const random = policy.random ?? Math.random;
  const maxRetryAfter = policy.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS;
  for (let attempt = 1;; attempt++) {
    if (policy.signal?.aborted) throw abortReason(policy.signal);
    try {
      return await raceAbort(operation(attempt), policy.signal);
    } catch (error) {
      if (policy.signal?.aborted || attempt > policy.attempts || !isRetryable(error)) throw error;
      const retryAfter = retryAfterOf(error);
      const delayMs = retryAfter === undefined
        ? backoffDelay(attempt, policy.baseDelayMs, policy.maxDelayMs, random)
        : Math.min(retryAfter, maxRetryAfter);
      policy.onRetry?.({ attempt: attempt + 1, delayMs, error });
      await wait(delayMs, policy.signal);
    }
  }
}
