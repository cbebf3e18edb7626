/**
 * A blob's bytes read from the source registry as the upload to the target consumes them: an
 * upload source ({@link UploadSource}) whose stream is a `GET` of the blob, so nothing touches the
 * disk. When the download breaks (connection cut, 5xx, 429), the stream asks again from the byte
 * it got to (`Range: bytes=<n>-`) and carries on; the upload on the other side sees a pause, not
 * a failure. A registry that ignores the range and sends the whole blob has the part already sent
 * skipped. The bytes are hashed as they pass, and a blob whose bytes or size do not match its
 * digest errors the stream before its end, so the upload fails rather than completes.
 *
 * Breaks on the target side are the upload's business: it opens this source again (a new `GET`
 * from the start, the bytes the target holds skipped) or begins the blob again.
 *
 * @module
 */

import { digestAlgorithm, Hasher } from "../bytes/sha256.ts";
import { PusherError } from "../errors.ts";
import { FailureStreak, isRetryable, type RetrySettings, sleep } from "../transfer/retry.ts";
import { PROGRESS_BYTES } from "../push/blob_upload.ts";
import type { BlobOutcome, UploadSource } from "../push/upload_cursor.ts";
import type { BlobDownload, GetBlobOptions } from "../registry/client.ts";
import { RegistryError } from "../registry/errors.ts";

/** Where blob bytes come from: {@link RegistryClient.getBlob} fits. */
export interface BlobGetter {
  /** Opens the blob from `options.offset` on (or whole, when the range is ignored). */
  getBlob(digest: string, options: GetBlobOptions): Promise<BlobDownload>;
}

/** Options of {@link registryBlobSource}. */
export interface RegistryBlobSourceOptions {
  /** The source registry's client. */
  source: BlobGetter;
  /** The blob's digest, checked against the bytes. */
  digest: string;
  /** The blob's size from its descriptor, checked against the bytes. */
  size: number;
  /** How a broken download is retried. */
  retry: RetrySettings;
  /** Ends every download (the run's abort). */
  signal: AbortSignal;
  /** Told about each retry of the download before its wait. */
  onRetry?: (attempt: number, delayMs: number, reason: string) => void;
}

/** Counters of a {@link registryBlobSource}, over all its openings. */
export interface DownloadStats {
  /** `GET` requests sent. */
  requests: number;
  /** Body bytes received (skipped ones included). */
  received: number;
}

/** An upload source reading the blob from the source registry, with its download counters. */
export interface RegistryBlobSource extends UploadSource {
  /** Counters over every opening so far. */
  readonly stats: DownloadStats;
}

/** Creates the upload source of one blob; each {@link UploadSource.open} starts a new download. */
export function registryBlobSource(options: RegistryBlobSourceOptions): RegistryBlobSource {
  const stats: DownloadStats = { requests: 0, received: 0 };
  return {
    reopenable: true,
    stats,
    open: () => new Download(options, stats).open(),
  };
}

/** One reading of the blob from byte 0 to its end, across as many `GET`s as it takes. */
class Download {
  readonly #options: RegistryBlobSourceOptions;
  readonly #stats: DownloadStats;
  readonly #hasher: Hasher;
  /** Bytes handed on so far. */
  #position = 0;
  /** Bytes of the current answer still to drop (a registry that ignored the range). */
  #skip = 0;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #request: AbortController | undefined;
  readonly #failures: FailureStreak;
  #progressMark = 0;
  #settle!: { resolve: (outcome: BlobOutcome) => void; reject: (error: unknown) => void };

  constructor(options: RegistryBlobSourceOptions, stats: DownloadStats) {
    this.#options = options;
    this.#stats = stats;
    this.#failures = new FailureStreak(options.retry);
    this.#hasher = new Hasher(digestAlgorithm(options.digest));
  }

  open(): { stream: ReadableStream<Uint8Array>; outcome: Promise<BlobOutcome> } {
    const outcome = new Promise<BlobOutcome>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    outcome.catch(() => {});
    const stream = new ReadableStream<Uint8Array>({
      pull: async (controller): Promise<void> => {
        try {
          const chunk = await this.#next();
          if (chunk === undefined) controller.close();
          else controller.enqueue(chunk);
        } catch (error) {
          this.#settle.reject(error);
          this.#drop();
          throw error;
        }
      },
      cancel: (reason): void => {
        this.#settle.reject(reason);
        this.#drop();
      },
    }, { highWaterMark: 0 });
    return { stream, outcome };
  }

  /** The next bytes of the blob, or none at its verified end. */
  async #next(): Promise<Uint8Array | undefined> {
    for (;;) {
      try {
        // Every byte arrived before the answer broke: nothing is left to ask for.
        if (this.#reader === undefined && this.#position === this.#options.size) {
          return this.#finish();
        }
        const reader = this.#reader ?? await this.#connect();
        const { done, value } = await reader.read();
        if (done) {
          this.#drop();
          return this.#finish();
        }
        const chunk = this.#unskipped(value);
        if (chunk.byteLength === 0) continue;
        this.#accept(chunk);
        return chunk;
      } catch (error) {
        this.#drop();
        await this.#recover(error);
      }
    }
  }

  /** Asks for the blob from the current position on. */
  async #connect(): Promise<ReadableStreamDefaultReader<Uint8Array>> {
    const { source, digest, signal } = this.#options;
    const request = new AbortController();
    this.#request = request;
    this.#stats.requests++;
    const download = await source.getBlob(digest, {
      offset: this.#position,
      signal: AbortSignal.any([signal, request.signal]),
    });
    if (download.size !== undefined && download.size !== this.#options.size) {
      await download.body.cancel().catch(() => {});
      throw this.#mismatch(`the source serves ${download.size} bytes`);
    }
    this.#skip = this.#position - download.start;
    this.#reader = download.body.getReader();
    return this.#reader;
  }

  /** Drops the bytes of an answer that came from before the position. */
  #unskipped(value: Uint8Array): Uint8Array {
    this.#stats.received += value.byteLength;
    if (this.#skip === 0) return value;
    const dropped = Math.min(this.#skip, value.byteLength);
    this.#skip -= dropped;
    return value.subarray(dropped);
  }

  #accept(chunk: Uint8Array): void {
    if (this.#position + chunk.byteLength > this.#options.size) {
      throw this.#mismatch(`the source sent more than ${this.#options.size} bytes`);
    }
    this.#hasher.update(chunk);
    this.#position += chunk.byteLength;
    if (this.#position - this.#progressMark >= PROGRESS_BYTES) {
      this.#failures.reset();
      this.#progressMark = this.#position;
    }
  }

  /** Checks the whole blob once the source says it ended. */
  #finish(): undefined {
    const { digest, size } = this.#options;
    if (this.#position !== size) {
      // The answer ended early: treat it like a cut, so the rest is asked for again.
      throw new RegistryError(
        "network",
        `the download of ${digest} ended after ${this.#position} of ${size} bytes`,
        { retryable: true },
      );
    }
    const actual = this.#hasher.digest();
    if (actual !== digest) throw this.#mismatch(`the bytes hash to ${actual}`);
    this.#settle.resolve({ digest, size });
    return undefined;
  }

  /** Waits before asking again after a retryable failure; rethrows anything else. */
  async #recover(error: unknown): Promise<void> {
    const { retry, signal, digest } = this.#options;
    if (signal.aborted) throw signal.reason;
    if (!isRetryable(error)) throw error;
    const delayMs = this.#failures.next(error);
    if (delayMs === undefined) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    this.#options.onRetry?.(
      this.#failures.failures + 1,
      delayMs,
      `download of ${digest} from byte ${this.#position}: ${reason}`,
    );
    await (retry.sleep ?? sleep)(delayMs, signal);
  }

  /** Stops the current answer, if any. */
  #drop(): void {
    const reader = this.#reader;
    this.#reader = undefined;
    this.#request?.abort(new DOMException("the download moved on", "AbortError"));
    this.#request = undefined;
    reader?.cancel().catch(() => {});
  }

  #mismatch(detail: string): PusherError {
    return new PusherError(
      "verify",
      `blob ${this.#options.digest} from the source failed verification: ${detail}`,
      { hint: "the source registry, or a proxy or cache in front of it, served other bytes" },
    );
  }
}

/**
 * The upload source of a small blob: the whole blob is read from the source registry at once —
 * beside the upload's start, not after it — and handed to the upload from memory each time it
 * opens the source (the closing `PUT` carries it; a registry that refuses that gets it by `PATCH`
 * from the same bytes). A download that failed is started again by the next opening.
 */
export function heldBlobSource(options: RegistryBlobSourceOptions): UploadSource {
  let held: Promise<{ bytes: Uint8Array; outcome: BlobOutcome }> | undefined;
  const download = (): Promise<{ bytes: Uint8Array; outcome: BlobOutcome }> => {
    const { stream, outcome } = registryBlobSource(options).open();
    const reading = new Response(stream).arrayBuffer().then(async (buffer) => ({
      bytes: new Uint8Array(buffer),
      outcome: await outcome,
    }));
    reading.catch(() => {
      if (held === reading) held = undefined;
    });
    return reading;
  };
  held = download();
  return {
    reopenable: true,
    open: () => {
      const current = held ?? download();
      held = current;
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        pull: async (controller): Promise<void> => {
          if (sent) {
            controller.close();
            return;
          }
          sent = true;
          const { bytes } = await current;
          if (bytes.byteLength > 0) controller.enqueue(bytes);
        },
      }, { highWaterMark: 0 });
      const outcome = current.then((blob) => blob.outcome);
      outcome.catch(() => {});
      return { stream, outcome };
    },
  };
}
