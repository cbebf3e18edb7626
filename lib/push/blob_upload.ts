/**
 * Uploads one blob and survives bad networks: a session (new, or one saved by an earlier run),
 * the bytes in one streamed `PATCH` (or, for large blobs and registries that refuse large bodies,
 * several streamed `PATCH`es of at most the chunk size each), then the closing `PUT ?digest=`.
 * A small blob skips the `PATCH`: it is read into memory and carried by the closing `PUT` itself
 * (one round trip less); a registry that refuses that gets it by `PATCH` in a new session.
 * Every request runs under a stall watchdog. Streamed bodies keep memory flat; chunks are held in
 * memory (and sent with a Content-Length) only for a source that can be read once, and after a
 * registry asked for a length (411).
 *
 * When a request fails with a retryable error (connection loss, stall, 408/429/5xx) the upload
 * waits (exponential backoff with full jitter and a cap, or the registry's `Retry-After`), asks
 * the registry how far the session got (`GET` → `Range`, newest `Location`) and continues from
 * there: a chunk held in memory and not acknowledged is sent again from memory, otherwise the
 * source is re-opened and the bytes already stored are skipped (compression is deterministic, so
 * a regenerated stream has the same bytes). A session the registry lost or answers about
 * unusably is abandoned (`DELETE`) for a new one. A final `PUT` that failed may have landed, so
 * the blob is looked up before anything is sent again. A 411/413 switches the blob to chunks; a
 * 413 to a chunk halves the chunks (down to a floor, see `chunk_size.ts`), and the size that got
 * through is reported for the next push; a registry that refuses chunks (a 4xx to one, a 413 to
 * the smallest, or a digest they did not add up to) gets the blob again in one request, in a new
 * session. Chunks stay within the sizes the registry takes ({@link chunkBounds}).
 *
 * `retry.attempts` bounds the consecutive failures without progress: an acknowledged chunk, or
 * at least {@link PROGRESS_BYTES} more stored by the registry, starts the count again (a link
 * that breaks after a few bytes every time still gives up). A registry that is out (refused
 * connections, 429, 502–504) is waited for up to the outage budget instead of being counted (see
 * {@link FailureStreak}). Errors that trying again cannot cure (digest mismatch, 403, unknown
 * repository, refused credentials, bad archive bytes) end the upload at once.
 *
 * The pieces: the running read of the source is {@link SourceCursor}, how the bytes go up is a
 * {@link ChunkMode}, and what a failure leads to is {@link decide}; this module runs the requests
 * and carries the decisions out.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { formatBytes } from "../logging/format.ts";
import { FailureStreak, isRetryable, type RetrySettings, sleep } from "../transfer/retry.ts";
import type { Clock } from "../transfer/stall.ts";
import type { RegistryClient, UploadSession } from "../registry/client.ts";
import type { SessionMemory } from "../state/upload_state.ts";
import { type ChunkMode, isChunked, startingMode } from "./chunk_mode.ts";
import { boundedChunkSize, type ChunkBounds, chunkBounds } from "./chunk_size.ts";
import { guardRequest } from "../transfer/request_guard.ts";
import { type BlobOutcome, SourceCursor, type UploadSource } from "./upload_cursor.ts";
import { decide, type GiveUpReason, type RecoveryState } from "./upload_decision.ts";

export type { BlobOutcome, UploadSource } from "./upload_cursor.ts";

/** How to upload. */
export interface UploadSettings {
  /** The registry client of the target repository. */
  client: RegistryClient;
  /** Send in chunks of at most {@link chunkSize} bytes, one PATCH each, instead of one PATCH. */
  chunked: boolean;
  /**
   * A small blob: read it into memory and send it in the closing `PUT` (no `PATCH`). Wins over
   * {@link chunked}.
   */
  monolithic?: boolean;
  /** Called when the registry refused a blob in the closing `PUT`, to send no more that way. */
  onMonolithicRefused?: () => void;
  /**
   * Looks the blob up once its digest is known (a lookup may already be under way beside the
   * upload's start). Awaited before the closing `PUT`: when it found the blob, the session is
   * cancelled and nothing more is sent.
   */
  present?: (outcome: BlobOutcome) => Promise<boolean>;
  /** Chunk size in bytes for chunked uploads (kept within what the registry takes). */
  chunkSize: number;
  /** Retry counts and delays. */
  retry: RetrySettings;
  /** A request with no bytes moving for this long is aborted and retried. */
  stallTimeoutMs: number;
  /** Time source of the stall watchdogs; defaults to the real clock. */
  clock?: Clock;
  /** Keeps the open session for a later run (reopenable sources only). */
  memory?: SessionMemory;
  /** Names the blob in messages. */
  label: string;
  /** Bytes of the blob the registry holds so far. */
  onProgress?: (bytes: number) => void;
  /** Called before each wait for a retry. */
  onRetry: (attempt: number, delayMs: number, reason: string) => void;
  /** Called when the upload continues a session at a non-zero offset. */
  onResume?: (offset: number) => void;
  /**
   * Called when a chunk made smaller after a 413 got through, with the chunk size: request
   * bodies of this size pass the registry and its proxies.
   */
  onChunkSizeFits?: (bytes: number) => void;
  /** Awaited once every byte went up, before the final PUT (to save what the blob is). */
  beforeCompletion?: (outcome: BlobOutcome) => Promise<void>;
  /** Aborts the upload; its open session is kept for a re-run. */
  signal: AbortSignal;
}

/** Result of {@link uploadBlob}. */
export interface UploadResult extends BlobOutcome {
  /** Request-body bytes sent over all attempts. */
  bytesSent: number;
  /** The registry already had it when a retry checked. */
  foundOnRetry: boolean;
  /** Offsets the upload continued from after a break or from a saved session. */
  resumedAt: number[];
  /** Upload sessions started (more than one when a session was lost). */
  sessionsStarted: number;
}

/** Bytes a registry must have stored since the last failure for the retry count to start again. */
export const PROGRESS_BYTES = 1024 * 1024;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One blob's upload: its session, its source position and its failures. */
class BlobUpload {
  readonly #settings: UploadSettings;
  readonly #client: RegistryClient;
  readonly #cursor: SourceCursor;
  /** How the bytes go up; a failure may move it on (see {@link decide}). */
  #mode: ChunkMode;
  /** The chunk size asked for; a 413 to a chunk makes it smaller. */
  #chunkSize: number;
  /** The chunk size shrank and no chunk of the new size got through yet. */
  #shrunk = false;
  readonly #reopenable: boolean;
  #session: UploadSession | undefined;
  /** The session's offset is what the registry holds (no request broke since). */
  #confirmed = false;
  /** The session holds bytes of an earlier opening or run. */
  #resumed = false;
  /** The one fresh restart (after the registry's copy did not match) was used. */
  #restartedFresh = false;
  /** A final PUT was sent and may have landed. */
  #mayHaveLanded = false;
  #outcome: BlobOutcome | undefined;
  readonly #failures: FailureStreak;
  /** The session offset when the failure count last started again. */
  #progressMark = 0;
  #bytesSent = 0;
  #sessionsStarted = 0;
  readonly #resumedAt: number[] = [];

  constructor(source: UploadSource, settings: UploadSettings) {
    this.#settings = settings;
    this.#client = settings.client;
    this.#mode = startingMode(settings.chunked, source.reopenable, settings.monolithic === true);
    this.#chunkSize = settings.chunkSize;
    this.#reopenable = source.reopenable;
    this.#cursor = new SourceCursor(source);
    this.#failures = new FailureStreak(settings.retry);
    const saved = settings.memory?.recall();
    if (saved !== undefined && URL.canParse(saved.location)) {
      this.#session = { location: new URL(saved.location), offset: saved.offset };
    }
  }

  async run(): Promise<UploadResult> {
    try {
      for (;;) {
        try {
          return await this.#attempt();
        } catch (error) {
          await this.#recover(error);
        }
      }
    } finally {
      await this.#cursor.close();
    }
  }

  #result(outcome: BlobOutcome, foundOnRetry: boolean): UploadResult {
    return {
      ...outcome,
      bytesSent: this.#bytesSent,
      foundOnRetry,
      resumedAt: [...this.#resumedAt],
      sessionsStarted: this.#sessionsStarted,
    };
  }

  /** One pass: check, (re)confirm or start the session, send the rest, complete. */
  async #attempt(): Promise<UploadResult> {
    const outcome = this.#outcome;
    if (this.#mayHaveLanded && outcome !== undefined) {
      const existing = await this.#request(
        "lookup",
        0,
        (signal) => this.#client.blobExists(outcome.digest, signal),
      );
      if (existing.exists) {
        await this.#abandon();
        return this.#result(outcome, true);
      }
      this.#mayHaveLanded = false;
    }
    if (this.#session !== undefined && !this.#confirmed) await this.#confirm(this.#session);
    let session = this.#session;
    if (session === undefined) {
      session = await this.#request("start", 0, (signal) => this.#client.startUpload(signal));
      this.#sessionsStarted++;
      this.#accept(session);
    }
    const done = this.#outcome !== undefined && session.offset === this.#outcome.size;
    let finalBytes: Uint8Array | undefined;
    let sent: BlobOutcome;
    if (done) sent = this.#outcome as BlobOutcome;
    else if (this.#mode === "monolithic") {
      ({ outcome: sent, bytes: finalBytes } = await this.#hold(session));
    } else sent = await this.#sendRest(session);
    this.#outcome = sent;
    const last = this.#session as UploadSession;
    if (await this.#settings.present?.(sent).catch(() => false)) {
      await this.#abandon();
      return this.#result(sent, true);
    }
    await this.#settings.beforeCompletion?.(sent);
    this.#mayHaveLanded = true;
    this.#confirmed = false;
    const size = finalBytes?.byteLength ?? 0;
    this.#bytesSent += size;
    await this.#request(
      "completion",
      size,
      (signal) => this.#client.completeUpload(last, sent.digest, finalBytes, signal),
    );
    this.#cursor.acknowledge();
    if (finalBytes !== undefined) this.#settings.onProgress?.(session.offset + size);
    this.#session = undefined;
    this.#settings.memory?.forget();
    return this.#result(sent, false);
  }

  /** Asks the registry how far the session got; drops a session that is gone or unusable. */
  async #confirm(session: UploadSession): Promise<void> {
    let status: { offset: number; session: UploadSession };
    try {
      status = await this.#request(
        "status check",
        0,
        (signal) => this.#client.uploadStatus(session, signal),
      );
    } catch (error) {
      if (isRetryable(error) || this.#settings.signal.aborted) throw error;
      await this.#abandon();
      return;
    }
    const size = this.#outcome?.size;
    if (status.offset < session.offset || (size !== undefined && status.offset > size)) {
      await this.#abandon();
      return;
    }
    if (status.offset - this.#progressMark >= PROGRESS_BYTES) this.#progressed(status.offset);
    if (status.offset > 0) {
      this.#resumed = true;
      this.#resumedAt.push(status.offset);
      this.#settings.onResume?.(status.offset);
    }
    this.#accept(status.session);
  }

  /** The upload got somewhere: the failure count starts again. */
  #progressed(offset: number): void {
    this.#failures.reset();
    this.#progressMark = offset;
  }

  /** Takes a session the registry just answered about as the newest one; saves it for a re-run. */
  #accept(session: UploadSession): void {
    this.#session = session;
    this.#confirmed = true;
    this.#settings.memory?.remember(session);
  }

  /** Cancels the session (ignoring the answer) and forgets it. */
  async #abandon(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    this.#confirmed = false;
    this.#resumed = false;
    this.#progressMark = 0;
    this.#settings.memory?.forget();
    if (session === undefined || this.#settings.signal.aborted) return;
    await this.#request("cancellation", 0, (signal) => this.#client.cancelUpload(session, signal))
      .catch(() => {});
  }

  /** Sends the bytes from the session's offset on; returns the blob's digest and size. */
  async #sendRest(session: UploadSession): Promise<BlobOutcome> {
    await this.#cursor.seek(session.offset);
    if (this.#mode === "held-chunks") {
      for (;;) {
        const limit = this.#chunkLength(session);
        const pending = await this.#cursor.nextChunk(limit);
        if (pending === undefined) break;
        const current = this.#session as UploadSession;
        this.#confirmed = false;
        this.#bytesSent += pending.bytes.byteLength;
        const next = await this.#request(
          "upload",
          pending.bytes.byteLength,
          (signal) => this.#client.patchChunk(current, pending.bytes, signal),
        );
        this.#cursor.acknowledge();
        this.#progressed(next.offset);
        this.#accept(next);
        this.#settings.onProgress?.(next.offset);
        this.#chunkWent(pending.bytes.byteLength, limit);
      }
    } else {
      // Bytes skipped after a re-opening are read before the request starts, so regenerating
      // them never looks like a stall.
      const limit = isChunked(this.#mode) ? this.#chunkLength(session) : Number.POSITIVE_INFINITY;
      for (;;) {
        const body = await this.#cursor.nextStream(limit);
        if (body === undefined) break;
        const current = this.#session as UploadSession;
        const next = await this.#sendStream(current, body);
        this.#progressed(next.offset);
        this.#accept(next);
        this.#chunkWent(next.offset - current.offset, limit);
      }
    }
    const outcome = this.#cursor.outcome;
    if (outcome === undefined) throw new PusherError("internal", "the upload source never opened");
    return await outcome;
  }

  /**
   * Reads the rest of a small blob from the session's offset into memory, for the closing `PUT`
   * to carry (held until the registry stored it, so a retry sends it again from memory).
   */
  async #hold(session: UploadSession): Promise<{ outcome: BlobOutcome; bytes: Uint8Array }> {
    await this.#cursor.seek(session.offset);
    const pending = await this.#cursor.nextChunk(Number.MAX_SAFE_INTEGER);
    const outcome = this.#cursor.outcome;
    if (outcome === undefined) throw new PusherError("internal", "the upload source never opened");
    return { outcome: await outcome, bytes: pending?.bytes ?? new Uint8Array(0) };
  }

  /** The chunk sizes the registry takes, with the minimum `session` was opened with. */
  #bounds(session: UploadSession | undefined): ChunkBounds {
    return chunkBounds(this.#client.registry, session?.minChunkLength);
  }

  /** The size of the chunks sent in `session`: the one asked for, within the registry's bounds. */
  #chunkLength(session: UploadSession | undefined): number {
    return boundedChunkSize(this.#chunkSize, this.#bounds(session));
  }

  /** A chunk of `sent` bytes got through; a full one after a shrink is reported. */
  #chunkWent(sent: number, limit: number): void {
    if (!this.#shrunk || sent !== limit) return;
    this.#shrunk = false;
    this.#settings.onChunkSizeFits?.(limit);
  }

  /** Sends `body` in one streamed PATCH (no length) at the session's offset. */
  #sendStream(session: UploadSession, body: ReadableStream<Uint8Array>): Promise<UploadSession> {
    this.#confirmed = false;
    return this.#request("upload", 0, (signal, touch) => {
      let counted = 0;
      const onSent = (sent: number): void => {
        touch();
        this.#bytesSent += sent - counted;
        counted = sent;
        this.#settings.onProgress?.(session.offset + sent);
      };
      return this.#client.patchStream(session, body, onSent, signal);
    });
  }

  /** Runs one registry request (`what`: upload, completion, …) under the stall watchdog. */
  #request<T>(
    what: string,
    bodyBytes: number,
    run: (signal: AbortSignal, touch: () => void) => Promise<T>,
  ): Promise<T> {
    const settings = this.#settings;
    return guardRequest(settings.signal, {
      timeoutMs: settings.stallTimeoutMs,
      label:
        `${what} of ${settings.label} to ${settings.client.registry}/${settings.client.repository}`,
      bodyBytes,
      ...(settings.clock !== undefined ? { clock: settings.clock } : {}),
    }, run);
  }

  /** What {@link decide} needs to know about this upload. */
  #recoveryState(error: unknown): RecoveryState {
    return {
      mode: this.#mode,
      chunkSize: this.#chunkLength(this.#session),
      chunkBounds: this.#bounds(this.#session),
      reopenable: this.#reopenable,
      hasSession: this.#session !== undefined,
      resumed: this.#resumed,
      restartedFresh: this.#restartedFresh,
      retriesLeft: this.#failures.wouldRetry(error),
      keepsSessions: this.#settings.memory !== undefined,
      aborted: this.#settings.signal.aborted,
    };
  }

  /** Carries out what {@link decide} says a failure means: go on (after a wait) or throw. */
  async #recover(error: unknown): Promise<void> {
    const action = decide(error, this.#recoveryState(error));
    switch (action.kind) {
      case "retry":
        if (action.dropSession) await this.#abandon();
        await this.#wait(error);
        return;
      case "switch-mode":
        this.#mode = action.mode;
        this.#confirmed = false;
        return;
      case "shrink-chunks":
        this.#chunkSize = action.chunkSize;
        this.#shrunk = true;
        this.#confirmed = false;
        this.#settings.onRetry(
          this.#failures.failures + 1,
          0,
          `${messageOf(error)}; trying chunks of ${formatBytes(action.chunkSize)}`,
        );
        return;
      case "leave-monolithic":
        this.#mode = action.mode;
        this.#settings.onMonolithicRefused?.();
        // A re-readable source is read again as a stream; a held one goes from memory.
        if (this.#reopenable) await this.#cursor.close();
        await this.#startOver();
        return;
      case "send-whole":
        this.#mode = "stream-only";
        await this.#startOver();
        this.#settings.onRetry(
          this.#failures.failures + 1,
          0,
          `${messageOf(error)}; sending it in one request instead of chunks`,
        );
        return;
      case "restart-fresh":
        this.#restartedFresh = true;
        await this.#startOver();
        return;
      case "give-up":
        if (action.dropSession) await this.#abandon();
        throw this.#finalError(action.why, error);
    }
  }

  /**
   * Records the failure in the streak and waits before the next attempt ({@link decide} only
   * retries while the streak allows one more).
   */
  async #wait(error: unknown): Promise<void> {
    const { retry, signal } = this.#settings;
    const delayMs = this.#failures.next(error) ?? 0;
    this.#settings.onRetry(this.#failures.failures + 1, delayMs, messageOf(error));
    await (retry.sleep ?? sleep)(delayMs, signal);
  }

  /** Drops the session for a new one from byte 0; no earlier final PUT can have landed. */
  async #startOver(): Promise<void> {
    this.#mayHaveLanded = false;
    await this.#abandon();
  }

  /** The error an upload that gives up for `why` after `error` ends with. */
  #finalError(why: GiveUpReason, error: unknown): unknown {
    if (why === "aborted") return this.#settings.signal.reason ?? error;
    if (why !== "copy-mismatch") return error;
    return new PusherError("verify", `${this.#settings.label}: ${messageOf(error)}`, {
      cause: error,
      hint: "the registry's copy of the upload does not match; try again with --no-cache",
    });
  }
}

/** Uploads a blob, resuming across breaks (and runs, given `memory`); see the module doc. */
export async function uploadBlob(
  source: UploadSource,
  settings: UploadSettings,
): Promise<UploadResult> {
  return await new BlobUpload(source, settings).run();
}
