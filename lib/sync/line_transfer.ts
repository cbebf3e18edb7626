/**
 * Moves one line's image once the look found it needs moving: a registry source through `copy()`,
 * an archive through `push()`. When a `HEAD` can't tell what the line would write — an archive
 * (its manifest is built by the push) or a `--platform` line (the filtered index is new) — and the
 * target tag exists, a dry run of the copy or push learns the digest first, writing nothing; the
 * real one runs only when it differs. A sync's dry run stops after that dry run.
 *
 * @module
 */

import { copy } from "../copy/copy.ts";
import type { CopyOptions } from "../copy/options.ts";
import type { SyncLineStatus } from "../logging/events.ts";
import type { PushOptions } from "../options.ts";
import type { BlobClaims } from "../transfer/blob_claims.ts";
import type { RunHooks } from "../transfer/run.ts";
import type { ClientPool } from "../registry/client_pool.ts";
import { parseReference } from "../registry/reference.ts";
import type { CredentialsFor, LineCheck } from "./line_check.ts";
import type { SyncLine } from "./list_file.ts";
import type { SyncOptions } from "./options.ts";

/** What moving a line did. */
export interface LineTransfer {
  /** `transferred`, `unchanged`, or `planned` (dry run). */
  status: Exclude<SyncLineStatus, "failed">;
  /** The digest the target tag names now (or would name). */
  digest?: string;
  /** Bytes uploaded. */
  bytesSent: number;
  /** What a dry run would do, or why the line is unchanged. */
  message?: string;
}

/** What moving a line needs of the sync. */
export interface LineTransferContext {
  /** The sync's settings. */
  options: SyncOptions;
  /** Explicit credentials of a repository, if any. */
  credentialsFor: CredentialsFor;
  /** Hooks for the copy or push (the sink already adds the line number). */
  hooks: RunHooks;
  /** Blobs in flight across the sync's images. */
  claims: BlobClaims;
  /** The sync's registry clients, which copies share (with their tokens and connections). */
  clients: ClientPool;
}

/** A copy or push of the line, dry or real; resolves to the digest written and bytes sent. */
type Mover = (dryRun: boolean) => Promise<{ digest: string; bytesSent: number }>;

/**
 * The hooks of a dry run: the caller's in a dry sync; without the event sink when the dry run
 * only learns the digest before a real run (its "planned" events would mislead a display).
 */
function hooksOf(ctx: LineTransferContext): RunHooks {
  if (ctx.options.dryRun) return ctx.hooks;
  const { events: _events, ...quiet } = ctx.hooks;
  return quiet;
}

/** The copy or push that moves the line. */
function mover(ctx: LineTransferContext, line: SyncLine): Mover {
  const { options } = ctx;
  const credentials = ctx.credentialsFor(parseReference(line.target));
  const common = {
    timeoutSeconds: options.timeoutSeconds,
    stallTimeoutSeconds: options.stallTimeoutSeconds,
    maxConcurrent: options.maxConcurrent,
    retryAttempts: options.retryAttempts,
    skipTls: options.skipTls,
    caCertFiles: options.caCertFiles,
    ...(credentials !== undefined ? { credentials } : {}),
  };
  const source = line.source;
  if (source.kind === "registry") {
    const sourceCredentials = ctx.credentialsFor(parseReference(source.reference));
    return (dryRun) => {
      const settings: CopyOptions = {
        ...common,
        ...(sourceCredentials !== undefined ? { sourceCredentials } : {}),
        source: source.reference,
        target: line.target,
        platforms: line.platforms,
        dryRun,
      };
      const hooks = dryRun ? hooksOf(ctx) : { ...ctx.hooks, blobClaims: ctx.claims };
      return copy(settings, { ...hooks, clients: ctx.clients });
    };
  }
  return async (dryRun) => {
    // Loaded only for a LIST with archive lines: a registry-only sync never needs the push code.
    const { push } = await import("../push/push.ts");
    const settings: PushOptions = {
      ...common,
      file: source.path,
      targets: [line.target],
      largeLayerThreshold: options.largeLayerThreshold,
      compression: options.compression,
      noCache: options.noCache,
      forceUpload: false,
      dryRun,
    };
    return await push(settings, dryRun ? hooksOf(ctx) : ctx.hooks);
  };
}

/**
 * Moves (or, in a dry run, plans) one line whose check did not show it unchanged.
 *
 * @throws whatever the copy or push throws.
 */
export async function transferLine(
  ctx: LineTransferContext,
  line: SyncLine,
  check: LineCheck,
): Promise<LineTransfer> {
  const move = mover(ctx, line);
  const headTells = line.source.kind === "registry" && line.platforms.length === 0;
  const dryRun = ctx.options.dryRun;
  if (headTells && dryRun) {
    return {
      status: "planned",
      ...(check.sourceDigest !== undefined ? { digest: check.sourceDigest } : {}),
      bytesSent: 0,
      message: check.targetDigest === undefined
        ? "would copy: the target tag does not exist"
        : `would copy: the target tag names ${check.targetDigest}`,
    };
  }
  if (!headTells && (dryRun || check.targetDigest !== undefined)) {
    const planned = await move(true);
    if (planned.digest === check.targetDigest) {
      return {
        status: "unchanged",
        digest: planned.digest,
        bytesSent: 0,
        message: "the target tag already names the digest a dry run computed",
      };
    }
    if (dryRun) {
      return {
        status: "planned",
        digest: planned.digest,
        bytesSent: 0,
        message: check.targetDigest === undefined
          ? "would write a new tag"
          : `would replace ${check.targetDigest}`,
      };
    }
  }
  const moved = await move(false);
  return { status: "transferred", digest: moved.digest, bytesSent: moved.bytesSent };
}
