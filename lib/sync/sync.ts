/**
 * The orchestrator of a sync: many images, from registries or archives, into one target prefix —
 * the nightly mirror job. The LIST is read and checked whole before anything moves; then every
 * line is looked at with two manifest `HEAD`s (many lines at once) and an image whose target tag
 * already names the source's digest is left alone. A line that needs moving starts as soon as its
 * own look is done, while the other lines are still being looked at, a few images at a time:
 * registry sources through `copy()`, archives through `push()`, with the clients (tokens,
 * connections, registry checks) of the looks, and one table of blobs in flight so two images with
 * a common layer upload it once. A failing line is reported and the others go on.
 * Every event of a line carries its LIST line number; the run opens with a `syncing` event naming
 * every line and closes with a `synced` count.
 *
 * @module
 */

import { type ErrorKind, firstFailureExitCode, toPusherError } from "../errors.ts";
import type { EventSink, SyncLineReport, SyncLineStatus } from "../logging/events.ts";
import { Redactor } from "../logging/redact.ts";
import { ClientPool } from "../registry/client_pool.ts";
import { parseReference, type Reference } from "../registry/reference.ts";
import { BlobClaims } from "../transfer/blob_claims.ts";
import { retrySettings } from "../transfer/retry.ts";
import type { RunHooks } from "../transfer/run.ts";
import { schedule } from "../transfer/scheduler.ts";
import { cacheDirectory } from "../state/cache_dir.ts";
import { realmStore } from "../state/realm_memory.ts";
import { checkLine, type CredentialsFor, type LineCheck } from "./line_check.ts";
import { type LineTransfer, transferLine } from "./line_transfer.ts";
import { readSyncList, type SyncLine } from "./list_file.ts";
import type { SyncOptions } from "./options.ts";
import { Slots } from "./slots.ts";
import { checkPrefix } from "./target_name.ts";

/** How one line ended. */
export interface LineOutcome extends SyncLineReport {
  /** 1-based line number in the LIST. */
  line: number;
  /** Why the line failed (or, in a dry run, would fail). */
  error?: {
    /** The failure's class, which gives the exit code. */
    kind: ErrorKind;
    /** One line, secrets redacted. */
    message: string;
    /** What to try next. */
    hint?: string;
  };
}

/** What a sync did. */
export interface SyncResult {
  /** Every line's outcome, in LIST order. */
  lines: LineOutcome[];
  /** Bytes uploaded over all lines. */
  bytesSent: number;
  /** Wall time in milliseconds. */
  durationMs: number;
  /** Nothing was written. */
  dryRun: boolean;
}

/**
 * The process exit code of a sync: 0 when no line failed, else the code of the kind of the first
 * failed line in LIST order.
 */
export function syncExitCode(result: SyncResult): number {
  return firstFailureExitCode(result.lines);
}

/**
 * Syncs every image of a LIST into a target prefix.
 *
 * @example
 * ```ts
 * import { DEFAULT_SYNC_SETTINGS, sync, syncExitCode } from "../mod.ts";
 * const result = await sync({
 *   ...DEFAULT_SYNC_SETTINGS,
 *   from: "images.txt",
 *   to: "registry.example.com/mirror",
 *   skipTls: false,
 *   caCertFiles: [],
 *   dryRun: false,
 *   noCache: false,
 * });
 * for (const line of result.lines) console.log(line.line, line.status, line.target);
 * Deno.exitCode = syncExitCode(result);
 * ```
 *
 * @throws {PusherError} kind `usage` for a bad prefix or LIST (naming the line), `input` for an
 * unreadable LIST — before anything is transferred; `interrupted` when `hooks.signal` aborts.
 * A line's own failure is not thrown: it is in the result.
 */
export async function sync(options: SyncOptions, hooks: RunHooks = {}): Promise<SyncResult> {
  const started = Date.now();
  const prefix = checkPrefix(options.to);
  const lines = await readSyncList(options.from, { prefix, flatten: options.flatten });
  const emit: EventSink = hooks.events ?? (() => {});
  emit({
    type: "syncing",
    from: options.from,
    to: prefix,
    lines: lines.map((line) => ({
      line: line.line,
      source: sourceText(line),
      target: line.target,
    })),
    dryRun: options.dryRun,
  });
  const redactor = hooks.redactor ?? new Redactor();
  const prefixRegistry = parseReference(`${prefix}/probe`).registry;
  const credentialsFor: CredentialsFor = (reference) =>
    reference.registry === prefixRegistry ? options.credentials : undefined;
  const outcomes: LineOutcome[] = [];
  const finish = (line: SyncLine, outcome: Omit<LineOutcome, "line" | "source" | "target">) => {
    const done: LineOutcome = {
      line: line.line,
      source: sourceText(line),
      target: line.target,
      ...outcome,
    };
    outcomes.push(done);
    emit({
      type: "sync",
      line: line.line,
      source: done.source,
      target: done.target,
      status: done.status,
      bytesSent: done.bytesSent,
      ...(done.digest !== undefined ? { digest: done.digest } : {}),
      ...(done.error !== undefined || done.message !== undefined
        ? { message: done.error?.message ?? done.message ?? "" }
        : {}),
    });
  };
  const failed = (line: SyncLine, error: unknown): void => {
    if (hooks.signal?.aborted) throw hooks.signal.reason;
    const problem = toPusherError(error);
    finish(line, {
      status: "failed",
      bytesSent: 0,
      error: {
        kind: problem.kind,
        message: redactor.redact(problem.message),
        ...(problem.hint !== undefined ? { hint: redactor.redact(problem.hint) } : {}),
      },
    });
  };
  const lineHooks = (line: SyncLine): RunHooks => ({
    ...hooks,
    redactor,
    events: (event) => emit({ ...event, line: line.line }),
  });

  const clients = await ClientPool.open(
    lines.flatMap(lineReferences),
    options,
    redactor,
    {
      ...(options.noCache ? {} : { realms: realmStore(cacheDirectory()) }),
      ...(hooks.signal !== undefined ? { signal: hooks.signal } : {}),
    },
  );
  const claims = new BlobClaims();
  const transfers = new Slots(options.parallelImages);
  const moving: Promise<void>[] = [];
  const move = async (line: SyncLine, check: LineCheck): Promise<void> => {
    let moved: LineTransfer;
    try {
      moved = await transfers.run(
        () =>
          transferLine(
            { options, credentialsFor, hooks: lineHooks(line), claims, clients },
            line,
            check,
          ),
        hooks.signal,
      );
    } catch (error) {
      failed(line, error);
      return;
    }
    finish(line, moved);
  };
  // A line's check settles it at once: unchanged, failed, or handed to a transfer slot while the
  // other lines are still being looked at.
  const settle = (line: SyncLine, check: LineCheck | Error): void => {
    if (check instanceof Error) {
      failed(line, check);
      return;
    }
    const unchanged = unchangedDigest(line, check);
    if (unchanged === undefined) {
      moving.push(move(line, check));
      return;
    }
    finish(line, {
      status: "unchanged",
      digest: unchanged,
      bytesSent: 0,
      message: "the target tag already names the source's digest",
    });
  };
  try {
    const look = (line: SyncLine, signal: AbortSignal): Promise<LineCheck> =>
      checkLine(
        {
          emit: lineHooks(line).events ?? (() => {}),
          signal,
          retry: retrySettings(options.retryAttempts),
          stallTimeoutMs: options.stallTimeoutSeconds * 1000,
        },
        clients,
        credentialsFor,
        line,
      );
    const checked = await checkAll(lines, look, settle, options.parallelChecks, hooks.signal)
      .then(() => undefined, (error: unknown) => ({ error }));
    // Every transfer settles before the run ends, even when it is being aborted.
    const moved = await Promise.allSettled(moving);
    if (checked !== undefined) throw checked.error;
    for (const transfer of moved) {
      if (transfer.status === "rejected") throw transfer.reason;
    }
  } finally {
    await clients.close();
  }
  outcomes.sort((a, b) => a.line - b.line);
  const result: SyncResult = {
    lines: outcomes,
    bytesSent: outcomes.reduce((sum, line) => sum + line.bytesSent, 0),
    durationMs: Date.now() - started,
    dryRun: options.dryRun,
  };
  emit({
    type: "synced",
    lines: countStatuses(outcomes),
    bytesSent: result.bytesSent,
    durationMs: result.durationMs,
    dryRun: result.dryRun,
  });
  return result;
}

/** How many lines ended each way. */
function countStatuses(outcomes: readonly LineOutcome[]): Record<SyncLineStatus, number> {
  const counts: Record<SyncLineStatus, number> = {
    transferred: 0,
    unchanged: 0,
    failed: 0,
    planned: 0,
  };
  for (const outcome of outcomes) counts[outcome.status]++;
  return counts;
}

/** The source as the outcome shows it. */
function sourceText(line: SyncLine): string {
  return line.source.kind === "registry" ? line.source.reference : line.source.path;
}

/**
 * The digest, when the `HEAD`s show the line has nothing to do: a registry source without
 * `--platform` whose digest the target tag names. (Archives and `--platform` lines write a
 * manifest the source does not have; their digest is learnt by a dry run, see `line_transfer.ts`.)
 */
function unchangedDigest(line: SyncLine, check: LineCheck): string | undefined {
  const comparable = line.source.kind === "registry" && line.platforms.length === 0;
  return comparable && check.sourceDigest === check.targetDigest ? check.sourceDigest : undefined;
}

/** The registries a line talks to: its target's, and its source's when that is a registry. */
function lineReferences(line: SyncLine): Reference[] {
  return [
    parseReference(line.target),
    ...(line.source.kind === "registry" ? [parseReference(line.source.reference)] : []),
  ];
}

/**
 * Looks at every line with `look`, `parallel` at a time, and hands each check (or its failure) to
 * `settle` as soon as it is known. Rejects with `signal`'s reason when the run is aborted.
 */
async function checkAll(
  lines: readonly SyncLine[],
  look: (line: SyncLine, signal: AbortSignal) => Promise<LineCheck>,
  settle: (line: SyncLine, check: LineCheck | Error) => void,
  parallel: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  await schedule(
    lines.map((line) => ({
      weight: 0,
      run: (taskSignal: AbortSignal) =>
        look(line, taskSignal).then(
          (check) => settle(line, check),
          (error: unknown) => {
            if (signal?.aborted) throw signal.reason;
            settle(line, error instanceof Error ? error : new Error(String(error)));
          },
        ),
    })),
    parallel,
    signal,
  );
}
