/**
 * One error family for the whole tool. Every failure carries a {@link ErrorKind} that maps to a
 * documented process exit code, a one-line message, and an optional hint telling the user what to
 * try next.
 *
 * @module
 */

/** The class of a failure; each maps to one exit code. */
export type ErrorKind =
  | "usage"
  | "input"
  | "auth"
  | "network"
  | "registry"
  | "verify"
  | "interrupted"
  | "internal";

/** Process exit code for each {@link ErrorKind}. Documented in `--help` and the README. */
export const EXIT_CODES: Readonly<Record<ErrorKind, number>> = {
  internal: 1,
  usage: 2,
  input: 3,
  auth: 4,
  network: 5,
  registry: 6,
  verify: 7,
  interrupted: 130,
};

/** Options accepted by {@link PusherError}. */
export interface PusherErrorOptions {
  /** What the user could try next, printed after the message. */
  hint?: string;
  /** The underlying error, shown with `--verbose`. */
  cause?: unknown;
}

/** A failure with a kind (and so an exit code), a one-line message and an optional hint. */
export class PusherError extends Error {
  /** The failure class. */
  readonly kind: ErrorKind;
  /** What the user could try next. */
  readonly hint: string | undefined;

  /** Creates an error of the given kind. */
  constructor(kind: ErrorKind, message: string, options: PusherErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PusherError";
    this.kind = kind;
    this.hint = options.hint;
  }

  /** The exit code for this error's kind. */
  get exitCode(): number {
    return EXIT_CODES[this.kind];
  }
}

/** Wraps any thrown value as a {@link PusherError}, keeping one that already is. */
export function toPusherError(error: unknown): PusherError {
  if (error instanceof PusherError) return error;
  if (error instanceof DOMException && error.name === "AbortError") {
    return new PusherError("interrupted", "the push was interrupted", { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new PusherError("internal", `unexpected error: ${message}`, { cause: error });
}

/**
 * The exit code of a run of several items (a sync's LIST lines, the images of a `push --all`):
 * the code of the first failed item's kind, or 0 when none failed.
 */
export function firstFailureExitCode(
  items: readonly { status: string; error?: { kind: ErrorKind } }[],
): number {
  const failed = items.find((item) => item.status === "failed");
  return failed?.error === undefined ? 0 : EXIT_CODES[failed.error.kind];
}
