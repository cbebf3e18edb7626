/**
 * The time limit of a whole run (`--timeout`): one abort signal that fires on the caller's
 * signal (Ctrl-C) or when the run has lasted too long.
 *
 * @module
 */

import { PusherError } from "../errors.ts";

/** A run's abort signal and the function that releases its timer. */
export interface Deadline {
  /** Aborts on the outer signal, or with an `interrupted` error at the deadline. */
  signal: AbortSignal;
  /** Stops the timer and detaches from the outer signal. */
  dispose: () => void;
}

/** A signal that aborts on `outer` or after `timeoutSeconds`; `what` names the run (`the pull`). */
export function deadlineSignal(
  outer: AbortSignal | undefined,
  timeoutSeconds: number,
  what: string,
): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new PusherError("interrupted", `${what} took longer than --timeout ${timeoutSeconds}s`, {
        hint: "raise --timeout; a re-run continues where this one stopped",
      }),
    );
  }, timeoutSeconds * 1000);
  Deno.unrefTimer(Number(timer));
  const onAbort = (): void => controller.abort(outer?.reason);
  if (outer?.aborted) onAbort();
  outer?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}
