/**
 * The orchestrator of a sync: many images, from registries or archives, into one target prefix —
 * the nightly mirror job. The LIST is read and checked whole before anything moves; then every
 * line is looked at with two manifest `HEAD`s (many lines at once) and an image whose target tag
 * already names the source's digest is left alone; the rest move a few images at a time, registry
 * sources through `copy()`, archives through `push()`, sharing one table of blobs in flight so two
 * images with a common layer upload it once. A failing line is reported and the others go on.
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
  try {
    const checks = await checkAll(lines, options, hooks, clients, credentialsFor, lineHooks);
    const claims = new BlobClaims();
    const moving: Array<{ line: SyncLine; check: LineCheck }> = [];
    for (const [index, line] of lines.entries()) {
      const check = checks[index];
      if (check === undefined) continue;
      if (check instanceof Error) {
        failed(line, check);
        continue;
      }
      const unchanged = unchangedDigest(line, check);
      if (unchanged !== undefined) {
        finish(line, {
          status: "unchanged",
          digest: unchanged,
          bytesSent: 0,
          message: "the target tag already names the source's digest",
        });
      } else moving.push({ line, check });
    }
    await schedule(
      moving.map(({ line, check }) => ({
        weight: 0,
        run: async () => {
          let moved: LineTransfer;
          try {
            moved = await transferLine(
              { options, credentialsFor, hooks: lineHooks(line), claims, clients },
              line,
              check,
            );
          } catch (error) {
            failed(line, error);
            return;
          }
          finish(line, moved);
        },
      })),
      options.parallelImages,
      hooks.signal,
    );
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

/** Checks every line, `parallelChecks` at a time; a failure is kept as such. */
async function checkAll(
  lines: readonly SyncLine[],
  options: SyncOptions,
  hooks: RunHooks,
  clients: ClientPool,
  credentialsFor: CredentialsFor,
  lineHooks: (line: SyncLine) => RunHooks,
): Promise<Array<LineCheck | Error>> {
  return await schedule(
    lines.map((line) => ({
      weight: 0,
      run: (signal: AbortSignal) =>
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
        ).catch((error: unknown) => {
          if (hooks.signal?.aborted) throw hooks.signal.reason;
          return error instanceof Error ? error : new Error(String(error));
        }),
    })),
    options.parallelChecks,
    hooks.signal,
  );
}
