/**
 * The watchdog every registry request of a push runs under, so a hung registry never hangs the
 * tool: a request is aborted with a retryable stall error when no bytes moved for the stall
 * timeout — while its body streams (the caller reports each chunk with `touch`) and while it waits
 * for the answer. A body held in memory reports no progress on its way out, so it gets one stall
 * window per started MiB.
 *
 * @module
 */

import { type Clock, StallWatchdog } from "./stall.ts";

/** Bytes of an in-memory body that one stall window covers. */
export const BYTES_PER_WINDOW = 1024 * 1024;

/** How one request is guarded. */
export interface GuardSettings {
  /** Stall timeout in milliseconds. */
  timeoutMs: number;
  /** Names the request in the stall error, e.g. `PATCH of sha256:ab…`. */
  label: string;
  /** Size of an in-memory request body, which gets a longer window. */
  bodyBytes?: number;
  /** Time source; defaults to the real clock. */
  clock?: Clock;
}

/** The reason an aborted signal gives, or a generic `AbortError`. */
function reasonOf(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("the operation was aborted", "AbortError");
}

/**
 * Runs `run` with a signal that aborts when `outer` does or when the request stalls; `touch`
 * records activity. Settles as soon as either happens, even if `run` ignores its signal. A stall
 * rejects with the watchdog's retryable network error; an abort of `outer` with its reason.
 */
export async function guardRequest<T>(
  outer: AbortSignal,
  settings: GuardSettings,
  run: (signal: AbortSignal, touch: () => void) => Promise<T>,
): Promise<T> {
  if (outer.aborted) throw reasonOf(outer);
  const controller = new AbortController();
  const onOuterAbort = (): void => controller.abort(reasonOf(outer));
  outer.addEventListener("abort", onOuterAbort, { once: true });
  const windows = Math.max(1, Math.ceil((settings.bodyBytes ?? 0) / BYTES_PER_WINDOW));
  const watchdog = new StallWatchdog({
    timeoutMs: settings.timeoutMs * windows,
    controller,
    label: settings.label,
    ...(settings.clock !== undefined ? { clock: settings.clock } : {}),
  });
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = (): void => reject(reasonOf(controller.signal));
    controller.signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    return await Promise.race([run(controller.signal, () => watchdog.touch()), aborted]);
  } catch (error) {
    if (controller.signal.aborted) throw reasonOf(controller.signal);
    throw error;
  } finally {
    watchdog.stop();
    outer.removeEventListener("abort", onOuterAbort);
    if (onAbort !== undefined) controller.signal.removeEventListener("abort", onAbort);
  }
}
