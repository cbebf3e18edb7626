/**
 * Retrying an operation with exponential backoff, full jitter, a cap, `Retry-After`, an outage
 * budget and abort.
 *
 * The contract with the code that throws: an error is retried only when it has
 * `retryable === true` (the registry client sets it on network errors and on 408, 429 and 5xx
 * answers). It may carry `retryAfterMs` (from a `Retry-After` header), which replaces the computed
 * delay, capped at {@link RetryPolicy.maxRetryAfterMs}. Every other error passes straight through.
 *
 * Two kinds of failure are told apart. An error marked `outage` says the registry is down,
 * restarting or overloaded (a refused connection, 429, 502, 503, 504): nothing was wrong with the
 * request, so it is tried again for as long as the failures in a row have lasted less than
 * {@link RetryPolicy.outageBudgetMs}, with a short backoff cap so that work goes on within
 * seconds of the registry's return. Any other retryable failure (a cut connection, a stall, a 500)
 * counts against {@link RetryPolicy.attempts}.
 *
 * @module
 */

/** The fields {@link withRetry} reads from a thrown error. */
export interface RetryableError {
  /** `true` when trying again may succeed. */
  retryable?: boolean;
  /** How long the server asked to wait before the next attempt, in milliseconds. */
  retryAfterMs?: number;
  /**
   * `true` when the server is down, restarting or overloaded (refused connection, 429, 502, 503,
   * 504): retried for a time budget rather than a count.
   */
  outage?: boolean;
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
  /**
   * Retries after failures in a row that are not outages (0: no retry at all, outages included).
   */
  attempts: number;
  /** Upper bound of the first retry's delay; doubles for each further retry. */
  baseDelayMs: number;
  /** Cap of the computed delay. */
  maxDelayMs: number;
  /**
   * How long failures in a row may last while the registry is out (see
   * {@link RetryableError.outage}); defaults to {@link OUTAGE_BUDGET_MS}.
   */
  outageBudgetMs?: number;
  /** Cap of the computed delay after an outage failure; defaults to {@link OUTAGE_MAX_DELAY_MS}. */
  outageMaxDelayMs?: number;
  /** Cap of a server's `Retry-After`; defaults to {@link MAX_RETRY_AFTER_MS}. */
  maxRetryAfterMs?: number;
  /** Current time in milliseconds, for the outage budget; defaults to `performance.now`. */
  now?: () => number;
  /** Aborts the waits and the attempt in progress. */
  signal?: AbortSignal;
  /** Waits `ms`, rejecting with the signal's reason on abort; defaults to {@link sleep}. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Returns a number in [0, 1); defaults to `Math.random`. */
  random?: () => number;
  /** Called before each wait. */
  onRetry?: (info: RetryInfo) => void;
}

/**
 * The part of a {@link RetryPolicy} that one run shares between all its requests and uploads;
 * each use adds its own `signal` and `onRetry`.
 */
export type RetrySettings = Omit<RetryPolicy, "signal" | "onRetry">;

/** Upper bound of the first retry's delay of every command. */
export const RETRY_BASE_MS = 500;

/** Cap of the computed delay of every command. */
export const RETRY_CAP_MS = 30_000;

/** The retry settings every command runs with, `attempts` from `--retry-attempts`. */
export function retrySettings(attempts: number): RetrySettings {
  return { attempts, baseDelayMs: RETRY_BASE_MS, maxDelayMs: RETRY_CAP_MS };
}

/** Default cap of a server's `Retry-After`: 10 minutes. */
export const MAX_RETRY_AFTER_MS = 10 * 60 * 1000;

/** Default outage budget: 90 s, more than the 10–60 s a registry restart or failover takes. */
export const OUTAGE_BUDGET_MS = 90_000;

/** Default backoff cap while the registry is out: a refused connection costs next to nothing. */
export const OUTAGE_MAX_DELAY_MS = 2_000;

/** Whether an error says trying again may succeed (`retryable === true`). */
export function isRetryable(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as RetryableError).retryable === true;
}

/** Whether an error says the server is out rather than the request failed (`outage === true`). */
export function isOutage(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as RetryableError).outage === true;
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
 * The failures in a row of one request (or of one upload, which starts a new streak when it made
 * progress), and the wait before the next attempt. Outage failures are retried while the streak
 * has lasted less than the outage budget (by the clock, or by the waits alone), with their own
 * short backoff; other failures are counted
 * against `attempts`, each kind with its own exponent, so a long outage does not inflate the wait
 * after the next cut connection.
 */
export class FailureStreak {
  readonly #policy: RetrySettings;
  readonly #now: () => number;
  #counted = 0;
  #outages = 0;
  #since: number | undefined;
  #waited = 0;

  /** Starts with no failures. */
  constructor(policy: RetrySettings) {
    this.#policy = policy;
    this.#now = policy.now ?? (() => performance.now());
  }

  /** Failures in this streak, of both kinds. */
  get failures(): number {
    return this.#counted + this.#outages;
  }

  /**
   * Whether one more failure with `error` would still be retried (the same test {@link next}
   * makes, without recording anything).
   */
  wouldRetry(error: unknown): boolean {
    const policy = this.#policy;
    if (policy.attempts <= 0) return false;
    if (!isOutage(error)) return this.#counted + 1 <= policy.attempts;
    const lasted = Math.max(this.#now() - (this.#since ?? this.#now()), this.#waited);
    return lasted < (policy.outageBudgetMs ?? OUTAGE_BUDGET_MS);
  }

  /**
   * Records a failure worth retrying; returns how long to wait before the next attempt, or
   * `undefined` when the policy is spent (too many counted failures in a row, or an outage that
   * outlasted the budget).
   */
  next(error: unknown): number | undefined {
    const policy = this.#policy;
    const now = this.#now();
    this.#since ??= now;
    if (policy.attempts <= 0) return undefined;
    const random = policy.random ?? Math.random;
    let computed: number;
    if (isOutage(error)) {
      // The waits alone count too, so an injected sleep that moves no clock still ends it.
      const lasted = Math.max(now - this.#since, this.#waited);
      if (lasted >= (policy.outageBudgetMs ?? OUTAGE_BUDGET_MS)) return undefined;
      this.#outages++;
      const cap = Math.min(policy.maxDelayMs, policy.outageMaxDelayMs ?? OUTAGE_MAX_DELAY_MS);
      computed = backoffDelay(this.#outages, policy.baseDelayMs, cap, random);
    } else {
      this.#counted++;
      if (this.#counted > policy.attempts) return undefined;
      computed = backoffDelay(this.#counted, policy.baseDelayMs, policy.maxDelayMs, random);
    }
    const asked = retryAfterOf(error);
    const delayMs = asked === undefined
      ? computed
      : Math.min(asked, policy.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS);
    this.#waited += delayMs;
    return delayMs;
  }

  /** Progress was made: the next failure starts a new streak. */
  reset(): void {
    this.#counted = 0;
    this.#outages = 0;
    this.#since = undefined;
    this.#waited = 0;
  }
}

/**
 * Runs `operation` (given the attempt number, from 1) until it succeeds, it throws an error that
 * is not retryable, or the policy is spent (see {@link FailureStreak}); then returns its value or
 * throws its last error unchanged. Between attempts waits the server's `retryAfterMs` when the
 * error has one, else the backoff. When `policy.signal` aborts, rejects at once with its reason,
 * even while an attempt is still running (the attempt should watch the same signal to stop).
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
): Promise<T> {
  const wait = policy.sleep ?? sleep;
  const streak = new FailureStreak(policy);
  for (let attempt = 1;; attempt++) {
    if (policy.signal?.aborted) throw abortReason(policy.signal);
    try {
      return await raceAbort(operation(attempt), policy.signal);
    } catch (error) {
      if (policy.signal?.aborted || !isRetryable(error)) throw error;
      const delayMs = streak.next(error);
      if (delayMs === undefined) throw error;
      policy.onRetry?.({ attempt: attempt + 1, delayMs, error });
      await wait(delayMs, policy.signal);
    }
  }
}
