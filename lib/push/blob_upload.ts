/**
 * Uploads one blob and survives bad networks: a session (new, or one saved by an earlier run),
 * the bytes in one streamed `PATCH` (or, for large blobs and registries that refuse large bodies,
 * several streamed `PATCH`es of at most the chunk size each), then the closing `PUT ?digest=`.
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
 * registry that refuses chunks (a 4xx to one, or a digest they did not add up to) gets the blob
 * again in one request, in a new session.
 *
 * `retry.attempts` bounds the consecutive failures without progress: an acknowledged chunk, or
 * at least {@link PROGRESS_BYTES} more stored by the registry, starts the count again (a link
 * that breaks after a few bytes every time still gives up). A registry that is out (refused
 * connections, 429, 502–504) is waited for up to the outage budget instead of being counted (see
 * {@link FailureStreak}). Errors that trying again cannot cure (digest mismatch, 403, unknown
 * repository, refused credentials, bad archive bytes) end the upload at once.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { FailureStreak, isRetryable, sleep } from "../transfer/retry.ts";
import type { Clock } from "../transfer/stall.ts";
import type { RegistryClient, UploadSession } from "../registry/client.ts";
import { hasErrorCode, needsChunkedUpload, RegistryError } from "../registry/errors.ts";
import type { SessionMemory } from "../state/upload_state.ts";
import { releaseChunk } from "../pipeline/owned_chunk.ts";
import { guardRequest } from "../transfer/request_guard.ts";

/** The digest and size of uploaded bytes, known once their stream ended. */
export interface BlobOutcome {
  /** `sha256:` digest of the uploaded bytes. */
  digest: string;
  /** Their size in bytes. */
  size: number;
}

/** Where a blob's bytes come from. */
export interface UploadSource {
  /** Opens a fresh stream of all the bytes to upload, and a promise of their digest and size. */
  open(): { stream: ReadableStream<Uint8Array>; outcome: Promise<BlobOutcome> };
  /** Whether {@link open} may be called again (a single streaming pass may not). */
  reopenable: boolean;
}

/** Retry settings of uploads and other requests. */
export interface UploadRetry {
  /** Retries after a failure, before giving up (counted again after progress). */
  attempts: number;
  /** Upper bound of the first backoff delay; doubles with each further retry. */
  baseDelayMs: number;
  /** Backoff cap. */
  maxDelayMs: number;
  /** Waits between attempts; defaults to real timers. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1); defaults to `Math.random`. */
  random?: () => number;
}

/** How to upload. */
export interface UploadSettings {
  /** The registry client of the target repository. */
  client: RegistryClient;
  /** Send in chunks of at most {@link chunkSize} bytes, one PATCH each, instead of one PATCH. */
  chunked: boolean;
  /** Chunk size in bytes for chunked uploads. */
  chunkSize: number;
  /** Retry policy. */
  retry: UploadRetry;
  /** A request with no bytes moving for this long is aborted and retried. */
  stallTimeoutMs: number;
  /** Time source of the stall watchdogs; defaults to the real clock. */
  clock?: Clock;
  /** Keeps the open session for a later run (reopenable sources only). */
  memory?: SessionMemory;
  /** Names the blob in messages. */
  label: string;
  /** Bytes of the blob the registry holds so far. */
  onProgress: (bytes: number) => void;
  /** Called before each wait for a retry. */
  onRetry: (attempt: number, delayMs: number, reason: string) => void;
  /** Called when the upload continues a session at a non-zero offset. */
  onResume?: (offset: number) => void;
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

/** Error codes with which a registry says an upload session is gone or unusable. */
const SESSION_LOST_CODES = ["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"];

/**
 * Whether a registry's answer to a chunk says it does not take this blob in chunks: Artifact
 * Registry refuses several PATCHes, GHCR caps their size, and a registry that put the chunks
 * together wrongly refuses the digest.
 */
function refusesChunks(error: unknown): boolean {
  if (!(error instanceof RegistryError) || sessionLost(error)) return false;
  return hasErrorCode(error, "DIGEST_INVALID") || [400, 405, 413, 501].includes(error.status ?? 0);
}

/** Tells the upload loop to drop the session and begin again from byte 0. */
class StaleSession extends Error {
  /** Why the session can't be continued. */
  constructor(message: string) {
    super(message);
    this.name = "StaleSession";
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True when a registry answer says the session is gone (as Distribution 2.8 says after a cut). */
function sessionLost(error: unknown): boolean {
  return SESSION_LOST_CODES.some((code) => hasErrorCode(error, code));
}

/** Drops the first `count` bytes of a stream; errors when it is shorter. */
function skipBytes(count: number): TransformStream<Uint8Array, Uint8Array> {
  let left = count;
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller): void {
      if (left >= chunk.byteLength) {
        left -= chunk.byteLength;
        return;
      }
      controller.enqueue(left > 0 ? chunk.subarray(left) : chunk);
      left = 0;
    },
    flush(): void {
      if (left > 0) {
        throw new StaleSession(`the registry holds ${count} bytes, more than the blob has`);
      }
    },
  });
}

/** A chunk read from the source and not yet acknowledged by the registry. */
interface Pending {
  /** Its offset in the blob. */
  start: number;
  /** Its bytes. */
  bytes: Uint8Array;
}

/** One opening of the source, read piece by piece. */
interface Opening {
  /** Reads the opened stream. */
  reader: ReadableStreamDefaultReader<Uint8Array>;
  /** Bytes read but not handed out yet. */
  carry: Uint8Array | undefined;
  /** Blob offset of the next byte handed out. */
  next: number;
}

/**
 * The blob's bytes from some offset on, handed out as one stream or in chunks. Streamed chunks
 * are pieces of one running read of the source, so memory stays flat; a chunk that broke is
 * regenerated by re-opening the source and skipping what the registry holds. Chunks held in
 * memory (for a source that can be read only once, or a registry that wants a Content-Length)
 * are sent again from memory until acknowledged, which is what lets a single streaming pass
 * survive a broken chunk.
 */
class SourceCursor {
  readonly #source: UploadSource;
  #opened = false;
  #reading: AbortController | undefined;
  #opening: Opening | undefined;
  #pending: Pending | undefined;
  /** The digest and size of the bytes of the newest opening. */
  outcome: Promise<BlobOutcome> | undefined;

  constructor(source: UploadSource) {
    this.#source = source;
  }

  /** Positions the chunk reader at `offset`, reusing the read (and pending chunk) that is there. */
  async seek(offset: number): Promise<void> {
    const opening = this.#opening;
    const pending = this.#pending;
    if (opening !== undefined && pending !== undefined) {
      const end = pending.start + pending.bytes.byteLength;
      if (offset >= pending.start && offset <= end) {
        const bytes = pending.bytes.subarray(offset - pending.start);
        this.#pending = bytes.byteLength > 0 ? { start: offset, bytes } : undefined;
        return;
      }
    }
    if (opening !== undefined && pending === undefined && offset === opening.next) return;
    await this.close();
    this.#opening = { reader: this.#open(offset).getReader(), carry: undefined, next: offset };
  }

  /**
   * The next at most `limit` bytes as a stream that reads the source as it is read, or none at
   * the end; the cursor moves on by what the stream handed out.
   */
  async nextStream(limit: number): Promise<ReadableStream<Uint8Array> | undefined> {
    const opening = this.#reader();
    if (!(await this.#fill(opening))) return undefined;
    let left = limit;
    return new ReadableStream<Uint8Array>({
      pull: async (controller): Promise<void> => {
        if (left === 0 || this.#opening !== opening || !(await this.#fill(opening))) {
          controller.close();
          return;
        }
        const piece = this.#take(opening, left);
        left -= piece.byteLength;
        controller.enqueue(piece);
        if (left === 0) controller.close();
      },
    }, { highWaterMark: 0 });
  }

  /** The next chunk of at most `limit` bytes in memory (the pending one again until acknowledged). */
  async nextChunk(limit: number): Promise<Pending | undefined> {
    if (this.#pending !== undefined) return this.#pending;
    const opening = this.#reader();
    const start = opening.next;
    const pieces: Uint8Array[] = [];
    let size = 0;
    while (size < limit && await this.#fill(opening)) {
      const piece = this.#take(opening, limit - size);
      pieces.push(piece);
      size += piece.byteLength;
    }
    if (size === 0) return undefined;
    const bytes = pieces.length === 1 ? (pieces[0] as Uint8Array) : new Uint8Array(size);
    if (pieces.length > 1) {
      let at = 0;
      for (const piece of pieces) {
        bytes.set(piece, at);
        at += piece.byteLength;
        releaseChunk(piece);
      }
    }
    this.#pending = { start, bytes };
    return this.#pending;
  }

  /** The registry stored the pending chunk. */
  acknowledge(): void {
    this.#pending = undefined;
  }

  /** Stops reading the source (its stream is cancelled, its file closed). */
  async close(): Promise<void> {
    const opening = this.#opening;
    this.#opening = undefined;
    this.#pending = undefined;
    this.#reading?.abort(new DOMException("the upload moved on", "AbortError"));
    this.#reading = undefined;
    await opening?.reader.cancel().catch(() => {});
  }

  #reader(): Opening {
    const opening = this.#opening;
    if (opening === undefined) throw new PusherError("internal", "chunk reader not open");
    return opening;
  }

  /** Makes sure the opening has bytes to hand out; false at the end of the source. */
  async #fill(opening: Opening): Promise<boolean> {
    while (opening.carry === undefined || opening.carry.byteLength === 0) {
      const result = await opening.reader.read();
      if (result.done) return false;
      opening.carry = result.value;
    }
    return true;
  }

  /** Hands out at most `limit` of the carried bytes (the whole chunk when it fits). */
  #take(opening: Opening, limit: number): Uint8Array {
    const carry = opening.carry as Uint8Array;
    const piece = carry.byteLength > limit ? carry.subarray(0, limit) : carry;
    opening.carry = carry.byteLength > limit ? carry.subarray(limit) : undefined;
    opening.next += piece.byteLength;
    return piece;
  }

  /** Opens the source; its bytes from `offset` on, cancelled by {@link close}. */
  #open(offset: number): ReadableStream<Uint8Array> {
    if (this.#opened && !this.#source.reopenable) {
      throw new PusherError(
        "network",
        "the upload broke and a streamed archive cannot be re-read",
        {
          hint: "push from a plain (uncompressed) tar file to get retries and resume",
        },
      );
    }
    this.#opened = true;
    const { stream, outcome } = this.#source.open();
    outcome.catch(() => {});
    this.outcome = outcome;
    // From the start, the source goes as it is (cancelling its reader closes it); otherwise
    // through a stage that drops the bytes the registry holds.
    if (offset === 0) return stream;
    const reading = new AbortController();
    this.#reading = reading;
    return stream.pipeThrough(skipBytes(offset), { signal: reading.signal });
  }
}

/** One blob's upload: its session, its source position and its failures. */
class BlobUpload {
  readonly #settings: UploadSettings;
  readonly #client: RegistryClient;
  readonly #cursor: SourceCursor;
  #chunked: boolean;
  /** Chunks are held in memory and sent with a Content-Length (else streamed from the source). */
  #chunksInMemory: boolean;
  /** The registry refused this blob in chunks; it goes up in one streamed PATCH. */
  #chunksRefused = false;
  readonly #reopenable: boolean;
  #session: UploadSession | undefined;
  /** The session's offset is what the registry holds (no request broke since). */
  #confirmed = false;
  /** The session holds bytes of an earlier opening or run. */
  #resumed = false;
  #freshRestart = false;
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
    this.#chunked = settings.chunked;
    this.#chunksInMemory = !source.reopenable;
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
    const sent = done ? this.#outcome as BlobOutcome : await this.#sendRest(session);
    this.#outcome = sent;
    const last = this.#session as UploadSession;
    await this.#settings.beforeCompletion?.(sent);
    this.#mayHaveLanded = true;
    this.#confirmed = false;
    await this.#request(
      "completion",
      0,
      (signal) => this.#client.completeUpload(last, sent.digest, undefined, signal),
    );
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
    if (this.#chunked && this.#chunksInMemory) {
      for (;;) {
        const pending = await this.#cursor.nextChunk(this.#chunkSize(session));
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
        this.#settings.onProgress(next.offset);
      }
    } else {
      // Bytes skipped after a re-opening are read before the request starts, so regenerating
      // them never looks like a stall.
      const limit = this.#chunked ? this.#chunkSize(session) : Number.POSITIVE_INFINITY;
      for (;;) {
        const body = await this.#cursor.nextStream(limit);
        if (body === undefined) break;
        const next = await this.#sendStream(this.#session as UploadSession, body);
        this.#progressed(next.offset);
        this.#accept(next);
      }
    }
    const outcome = this.#cursor.outcome;
    if (outcome === undefined) throw new PusherError("internal", "the upload source never opened");
    return await outcome;
  }

  /** The chunk size: the configured one, or the registry's minimum (`OCI-Chunk-Min-Length`). */
  #chunkSize(session: UploadSession): number {
    return Math.max(this.#settings.chunkSize, session.minChunkLength ?? 0);
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
        this.#settings.onProgress(session.offset + sent);
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

  /** Decides what a failure means: wait and go on, switch mode, start over, or give up. */
  async #recover(error: unknown): Promise<void> {
    const { signal, retry } = this.#settings;
    if (signal.aborted) throw signal.reason ?? error;
    if (error instanceof StaleSession || (this.#resumed && hasErrorCode(error, "DIGEST_INVALID"))) {
      if (this.#freshRestart) {
        throw new PusherError("verify", `${this.#settings.label}: ${messageOf(error)}`, {
          cause: error,
          hint: "the registry's copy of the upload does not match; try again with --no-cache",
        });
      }
      this.#freshRestart = true;
      this.#mayHaveLanded = false;
      await this.#abandon();
      return;
    }
    if (this.#chunked && this.#reopenable && !this.#chunksRefused && refusesChunks(error)) {
      this.#chunked = false;
      this.#chunksRefused = true;
      this.#mayHaveLanded = false;
      await this.#abandon();
      this.#settings.onRetry(
        this.#failures.failures + 1,
        0,
        `${messageOf(error)}; sending it in one request instead of chunks`,
      );
      return;
    }
    // 413: the body was too large, so chunks; 411: a length is needed, which only chunks held in
    // memory can give.
    const needsLength = error instanceof RegistryError && error.status === 411;
    if (
      needsChunkedUpload(error) && !this.#chunksRefused &&
      (!this.#chunked || (needsLength && !this.#chunksInMemory))
    ) {
      if (needsLength) this.#chunksInMemory = true;
      this.#chunked = true;
      this.#confirmed = false;
      return;
    }
    const resync = error instanceof RegistryError && error.status === 416;
    const lost = !resync && sessionLost(error) && this.#session !== undefined;
    if (!lost && !resync && !isRetryable(error)) {
      await this.#abandon();
      throw error;
    }
    if (lost) await this.#abandon();
    const delayMs = this.#failures.next(error);
    if (delayMs === undefined) {
      if (this.#settings.memory === undefined) await this.#abandon();
      throw error;
    }
    this.#settings.onRetry(this.#failures.failures + 1, delayMs, messageOf(error));
    await (retry.sleep ?? sleep)(delayMs, signal);
  }
}

/** Uploads a blob, resuming across breaks (and runs, given `memory`); see the module doc. */
export async function uploadBlob(
  source: UploadSource,
  settings: UploadSettings,
): Promise<UploadResult> {
  return await new BlobUpload(source, settings).run();
}
