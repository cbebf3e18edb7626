/**
 * Uploads one blob from a stream: a new session, one streamed PATCH (or fixed-size chunks for
 * large blobs and registries that demand them), then the closing PUT with the digest computed on
 * the way. Failed attempts are retried with backoff from a fresh stream; before a retry, a blob
 * whose digest is known is looked up first, since a final PUT that failed may have landed.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { withRetry } from "../pipeline/retry.ts";
import type { RegistryClient, UploadSession } from "../registry/client.ts";
import { fixedChunks, progressStream } from "./progress_stream.ts";

/** The digest and size of uploaded bytes, known once their stream ended. */
export interface BlobOutcome {
  /** `sha256:` digest of the uploaded bytes. */
  digest: string;
  /** Their size in bytes. */
  size: number;
}

/** Where a blob's bytes come from. */
export interface UploadSource {
  /** Opens a fresh stream of the bytes to upload, and a promise of their digest and size. */
  open(): { stream: ReadableStream<Uint8Array>; outcome: Promise<BlobOutcome> };
  /** Whether {@link open} may be called again (a single streaming pass may not). */
  reopenable: boolean;
}

/** Retry settings of uploads. */
export interface UploadRetry {
  /** Retries after the first attempt. */
  attempts: number;
  /** First backoff delay. */
  baseDelayMs: number;
  /** Backoff cap. */
  maxDelayMs: number;
}

/** How to upload. */
export interface UploadSettings {
  /** The registry client of the target repository. */
  client: RegistryClient;
  /** Send in fixed-size chunks instead of one streamed PATCH. */
  chunked: boolean;
  /** Chunk size in bytes for chunked uploads. */
  chunkSize: number;
  /** Retry policy. */
  retry: UploadRetry;
  /** Bytes sent so far in the current attempt. */
  onProgress: (bytes: number) => void;
  /** Called before each retry. */
  onRetry: (attempt: number, delayMs: number, reason: string) => void;
  /** Aborts the upload. */
  signal: AbortSignal;
}

/** Result of {@link uploadBlob}. */
export interface UploadResult extends BlobOutcome {
  /** Bytes sent over all attempts. */
  bytesSent: number;
  /** The registry already had it when a retry checked. */
  foundOnRetry: boolean;
}

function needsChunks(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  return status === 413 || status === 411;
}

async function sendBody(
  client: RegistryClient,
  session: UploadSession,
  stream: ReadableStream<Uint8Array>,
  chunked: boolean,
  chunkSize: number,
): Promise<UploadSession> {
  if (!chunked) return await client.patchStream(session, stream);
  let current = session;
  for await (const chunk of fixedChunks(stream, chunkSize)) {
    current = await client.patchChunk(current, chunk);
  }
  return current;
}

/** Uploads a blob with retries; see the module doc. */
export async function uploadBlob(
  source: UploadSource,
  settings: UploadSettings,
): Promise<UploadResult> {
  const { client, signal } = settings;
  let chunked = settings.chunked;
  let bytesSent = 0;
  let lastDigest: string | undefined;
  let lastSize = 0;
  let opened = false;
  return await withRetry(async (attempt: number): Promise<UploadResult> => {
    if (attempt > 1 && lastDigest !== undefined) {
      const existing = await client.blobExists(lastDigest);
      if (existing.exists) {
        return { digest: lastDigest, size: lastSize, bytesSent, foundOnRetry: true };
      }
    }
    if (opened && !source.reopenable) {
      throw new PusherError(
        "network",
        "the upload broke and a streamed archive cannot be re-read",
        {
          hint: "push from a plain (uncompressed) tar file to get retries and resume",
        },
      );
    }
    opened = true;
    const { stream, outcome } = source.open();
    outcome.catch(() => {});
    let sentThisAttempt = 0;
    const counted = stream.pipeThrough(progressStream((bytes) => {
      bytesSent += bytes - sentThisAttempt;
      sentThisAttempt = bytes;
      settings.onProgress(bytes);
    }));
    let session: UploadSession | undefined;
    try {
      session = await client.startUpload();
      session = await sendBody(client, session, counted, chunked, settings.chunkSize);
      const { digest, size } = await outcome;
      lastDigest = digest;
      lastSize = size;
      await client.completeUpload(session, digest);
      return { digest, size, bytesSent, foundOnRetry: false };
    } catch (error) {
      await counted.cancel().catch(() => {});
      if (session) await client.cancelUpload(session).catch(() => {});
      if (needsChunks(error) && !chunked) {
        chunked = true;
        throw Object.assign(
          new PusherError("network", "the registry wants chunked uploads", { cause: error }),
          { retryable: true, retryAfterMs: 0 },
        );
      }
      throw error;
    }
  }, {
    attempts: settings.retry.attempts,
    baseDelayMs: settings.retry.baseDelayMs,
    maxDelayMs: settings.retry.maxDelayMs,
    signal,
    onRetry: (info) => {
      const reason = info.error instanceof Error ? info.error.message : String(info.error);
      settings.onRetry(info.attempt, info.delayMs, reason);
    },
  });
}
