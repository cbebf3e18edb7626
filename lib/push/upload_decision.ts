/**
 * What a blob upload does after a request failed, as a pure function of the error and the
 * upload's state: wait and go on, move to another {@link ChunkMode}, begin again in a new session,
 * or give up. The uploader carries the action out; keeping the choice here lets one table of cases
 * state the whole policy.
 *
 * Order of the checks: an abort ends everything; a registry copy that does not match the blob
 * gets one fresh restart; a registry that refuses a blob in its closing `PUT` (monolithic) gets
 * it by `PATCH` in a new session; a chunk refused as too large (413, as nginx answers over its
 * `client_max_body_size`) makes the chunks smaller until they reach their floor; a registry that
 * refuses chunks gets the blob in one request; a body too large or without a length moves the
 * blob to chunks; then lost sessions, range mismatches and retryable errors wait (while the
 * failure streak allows), and everything else gives up. A new rule is one more check here and one
 * more row in the table.
 *
 * @module
 */

import { isRetryable } from "../transfer/retry.ts";
import { hasErrorCode, needsChunkedUpload, RegistryError } from "../registry/errors.ts";
import { type ChunkMode, isChunked, startingMode } from "./chunk_mode.ts";
import { type ChunkBounds, smallerChunkSize } from "./chunk_size.ts";
import { StaleSession } from "./upload_cursor.ts";

/** What {@link decide} knows about the upload when a request failed. */
export interface RecoveryState {
  /** How the bytes go up now. */
  mode: ChunkMode;
  /** The size of the chunks now, in bytes (within {@link chunkBounds}). */
  chunkSize: number;
  /** The chunk sizes the registry takes. */
  chunkBounds: ChunkBounds;
  /** The source can be opened again (a single streaming pass cannot). */
  reopenable: boolean;
  /** An upload session is open. */
  hasSession: boolean;
  /** The session holds bytes of an earlier opening of the source, or of an earlier run. */
  resumed: boolean;
  /** The one fresh restart (after the registry's copy did not match the blob) was used. */
  restartedFresh: boolean;
  /**
   * The failure streak allows one more retry after this error (a count for most failures, a time
   * budget while the registry is out; see `FailureStreak`).
   */
  retriesLeft: boolean;
  /** Sessions are saved for a later run, so one is kept when the retries run out. */
  keepsSessions: boolean;
  /** The whole upload was aborted (Ctrl-C, `--timeout`). */
  aborted: boolean;
}

/** Why an upload gives up. */
export type GiveUpReason =
  /** The upload was aborted: its abort reason is the error. */
  | "aborted"
  /** Trying again cannot cure the error (403, unknown repository, 400, …). */
  | "not-retryable"
  /** The failure streak is spent (too many failures in a row, or an outage past its budget). */
  | "retries-exhausted"
  /** The registry's copy did not match the blob even in a fresh session. */
  | "copy-mismatch";

/** What the upload does next. */
export type UploadAction =
  /**
   * Count a failure, wait (the registry's `Retry-After` when it gave one, else backoff), then
   * check the session and go on; a session the registry lost is dropped first.
   */
  | { kind: "retry"; dropSession: boolean }
  /** Keep the session and send the rest in `mode`, at once (nothing to wait for). */
  | { kind: "switch-mode"; mode: ChunkMode }
  /** Go on in chunks of `chunkSize` bytes, smaller than the one refused, at once. */
  | { kind: "shrink-chunks"; chunkSize: number }
  /** Drop the session and send the whole blob in one request in a new one (`stream-only`). */
  | { kind: "send-whole" }
  /**
   * The registry refused the blob in the closing `PUT`: drop the session and send it in `mode`
   * in a new one; the run sends no more blobs that way.
   */
  | { kind: "leave-monolithic"; mode: ChunkMode }
  /** Drop the session and begin again from byte 0 in a new one; allowed once. */
  | { kind: "restart-fresh" }
  /** End the upload with an error, dropping the session first when `dropSession`. */
  | { kind: "give-up"; why: GiveUpReason; dropSession: boolean };

/** Error codes with which a registry says an upload session is gone or unusable. */
const SESSION_LOST_CODES = ["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"];

/** Statuses with which a registry refuses a chunk (Artifact Registry, GHCR's size cap, …). */
const CHUNK_REFUSED_STATUSES = [400, 405, 413, 501];

/**
 * Statuses with which a registry refuses bytes in the closing `PUT`: a proxy's body limit (413),
 * a registry that routes only an empty `PUT` (404, 405, 501), one that wants a length (411) or
 * ignores the body and then finds the digest wrong (400 `DIGEST_INVALID`).
 */
const MONOLITHIC_REFUSED_STATUSES = [400, 404, 405, 411, 413, 501];

/** Whether a registry's answer to a `PUT` carrying the blob says it does not take blobs that way. */
function refusesMonolithic(error: unknown): boolean {
  if (!(error instanceof RegistryError) || sessionLost(error)) return false;
  return MONOLITHIC_REFUSED_STATUSES.includes(error.status ?? 0);
}

/** True when a registry answer says the session is gone (as Distribution 2.8 says after a cut). */
function sessionLost(error: unknown): boolean {
  return SESSION_LOST_CODES.some((code) => hasErrorCode(error, code));
}

/**
 * Whether a registry's answer to a chunk says it does not take this blob in chunks: Artifact
 * Registry refuses several PATCHes, GHCR caps their size, and a registry that put the chunks
 * together wrongly refuses the digest.
 */
function refusesChunks(error: unknown): boolean {
  if (!(error instanceof RegistryError) || sessionLost(error)) return false;
  return hasErrorCode(error, "DIGEST_INVALID") ||
    CHUNK_REFUSED_STATUSES.includes(error.status ?? 0);
}

/**
 * The chunk mode a 411 (a length is needed: only chunks held in memory have one) or 413 (the body
 * was too large: chunks) moves the upload to, or none when the mode cannot answer it.
 */
function modeForBodyLimit(error: unknown, state: RecoveryState): ChunkMode | undefined {
  if (!needsChunkedUpload(error)) return undefined;
  const needsLength = error instanceof RegistryError && error.status === 411;
  if (state.mode === "stream") {
    return needsLength ? "held-chunks" : startingMode(true, state.reopenable);
  }
  return needsLength && state.mode === "streamed-chunks" ? "held-chunks" : undefined;
}

/** Whether the registry, or a proxy in front of it, refused the request body as too large. */
function tooLarge(error: unknown): boolean {
  return error instanceof RegistryError && error.status === 413;
}

function giveUp(why: GiveUpReason, dropSession: boolean): UploadAction {
  return { kind: "give-up", why, dropSession };
}

/** Decides what a failed request of an upload in `state` leads to; see the module doc. */
export function decide(error: unknown, state: RecoveryState): UploadAction {
  if (state.aborted) return giveUp("aborted", false);
  if (error instanceof StaleSession || (state.resumed && hasErrorCode(error, "DIGEST_INVALID"))) {
    return state.restartedFresh ? giveUp("copy-mismatch", false) : { kind: "restart-fresh" };
  }
  if (state.mode === "monolithic" && refusesMonolithic(error)) {
    return { kind: "leave-monolithic", mode: state.reopenable ? "stream" : "held-chunks" };
  }
  if (isChunked(state.mode) && tooLarge(error)) {
    const chunkSize = smallerChunkSize(state.chunkSize, state.chunkBounds);
    if (chunkSize !== undefined) return { kind: "shrink-chunks", chunkSize };
  }
  if (isChunked(state.mode) && state.reopenable && refusesChunks(error)) {
    return { kind: "send-whole" };
  }
  const mode = modeForBodyLimit(error, state);
  if (mode !== undefined) return { kind: "switch-mode", mode };
  // 416: the registry holds a different range than the request assumed; asking it where the
  // session stands resolves that.
  const rangeMismatch = error instanceof RegistryError && error.status === 416;
  const lost = !rangeMismatch && state.hasSession && sessionLost(error);
  if (!lost && !rangeMismatch && !isRetryable(error)) return giveUp("not-retryable", true);
  if (!state.retriesLeft) return giveUp("retries-exhausted", lost || !state.keepsSessions);
  return { kind: "retry", dropSession: lost };
}
