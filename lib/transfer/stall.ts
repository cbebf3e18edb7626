/**
 * A stall watchdog: aborts an `AbortController` when no bytes moved for a while. Built on
 * `setTimeout` through an injectable {@link Clock} (not `AbortSignal.timeout`), so tests can drive
 * it with fake time. Activity costs one clock read; the timer is re-armed only when it fires.
 *
 * @module
 */

import { PusherError } from "../errors.ts";

/** The time source of a {@link StallWatchdog}. */
export interface Clock {
  /** Current time in milliseconds (any origin). */
  now(): number;
  /** Runs `callback` after `ms` milliseconds; returns a handle for {@link clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a pending {@link setTimeout}. */
  clearTimeout(handle: unknown): void;
}

/** The real clock: `performance.now` and the global timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Options of a {@link StallWatchdog}. */
export interface StallWatchdogOptions {
  /** How long without activity counts as a stall, in milliseconds. */
  timeoutMs: number;
  /** Aborted on a stall, with a {@link stallError} as the reason. */
  controller: AbortController;
  /** Names what stalled in the error, e.g. `upload of sha256:ab…`. */
  label?: string;
  /** Time source; defaults to {@link systemClock}. */
  clock?: Clock;
}

/**
 * The abort reason of a stall: a network {@link PusherError} marked `retryable` (see
 * {@link ./retry.ts}), as a stalled transfer may well succeed when tried again.
 */
export function stallError(timeoutMs: number, label = "transfer"): PusherError {
  const seconds = timeoutMs / 1000;
  const error = new PusherError("network", `${label} stalled: no data moved for ${seconds} s`, {
    hint: "check the connection to the registry",
  });
  return Object.assign(error, { retryable: true });
}

/** Watches for activity and aborts its controller when none came for `timeoutMs`. */
export class StallWatchdog {
  readonly #options: StallWatchdogOptions;
  readonly #clock: Clock;
  #last: number;
  #timer: unknown;
  #stopped = false;
  readonly #onAbort = (): void => this.stop();

  /** Starts watching at once; the first stall window runs from now. */
  constructor(options: StallWatchdogOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#last = this.#clock.now();
    if (options.controller.signal.aborted) {
      this.#stopped = true;
      return;
    }
    options.controller.signal.addEventListener("abort", this.#onAbort, { once: true });
    this.#arm(options.timeoutMs);
  }

  /** Records activity: the stall window starts again from now. */
  touch(): void {
    this.#last = this.#clock.now();
  }

  /** Stops watching; the controller is left as it is. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#options.controller.signal.removeEventListener("abort", this.#onAbort);
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Arms the timer to check again after `ms`. */
  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(() => this.#check(), ms);
  }

  /** Aborts when the window elapsed without activity, else waits for the rest of the window. */
  #check(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    const idle = this.#clock.now() - this.#last;
    if (idle < this.#options.timeoutMs) {
      this.#arm(this.#options.timeoutMs - idle);
      return;
    }
    this.stop();
    this.#options.controller.abort(stallError(this.#options.timeoutMs, this.#options.label));
  }
}
