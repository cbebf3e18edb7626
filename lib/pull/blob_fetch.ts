/**
 * Downloads one blob into a staging directory, resumably. Bytes go to
 * `<dir>/blobs/sha256/<hex>.partial` and into a running sha256 as they arrive; the file is
 * renamed to `<hex>` only when the digest matches. A cut or stalled body is retried with
 * `Range: bytes=<size on disk>-`; a registry that ignores the range (200, whole blob) gets the
 * blob written again from byte 0. A later run with the same directory continues from the
 * `.partial` file's size. A digest mismatch removes the partial file and fails with kind
 * `verify` (exit 7). The transfer itself ({@link receiveBlob}) writes into any {@link BlobSink}, so
 * a pull can also download straight into the blob's place inside the archive file.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { type RetryPolicy, withRetry } from "../transfer/retry.ts";
import type { Clock } from "../transfer/stall.ts";
import { guardRequest } from "../transfer/request_guard.ts";
import type { BlobDownload, GetBlobOptions } from "../registry/client.ts";
import { RegistryError } from "../registry/errors.ts";
import { fileSize, PartialBlobFile, stagingPaths } from "./partial_file.ts";
import { WriteBatch } from "./write_batch.ts";

/** Where blobs come from: {@link RegistryClient.getBlob} fits. */
export interface BlobReader {
  /** Opens the blob from `options.offset` on (the whole blob when the range is ignored). */
  getBlob(digest: string, options: GetBlobOptions): Promise<BlobDownload>;
}

/** Options of {@link fetchBlob}. */
export interface FetchBlobOptions {
  /** The registry (or anything serving blobs). */
  source: BlobReader;
  /** The blob's digest (`sha256:…`). */
  digest: string;
  /** The blob's size from its descriptor; more or fewer bytes are a mismatch. */
  size?: number;
  /** The staging directory; blobs go below `blobs/sha256/`. */
  stagingDir: string;
  /** How failed requests and broken bodies are retried. */
  retry: Omit<RetryPolicy, "signal">;
  /** A request whose answer or body moves no bytes for this long is aborted and retried. */
  stallTimeoutMs: number;
  /** Told the bytes of the blob on disk after each chunk written (0 again after a restart). */
  onProgress?: (bytes: number) => void;
  /** Aborts the download; the `.partial` file stays for a later run. */
  signal?: AbortSignal;
  /** Time source of the stall guard, for tests. */
  clock?: Clock;
}

/** What {@link fetchBlob} did. */
export interface FetchedBlob {
  /** The verified blob file. */
  path: string;
  /** Its size. */
  size: number;
  /** Bytes already on disk when the call started (a `.partial` or finished file). */
  resumedFrom: number;
  /** Bytes received over the network by this call. */
  downloaded: number;
  /** Requests for the blob that this call made. */
  requests: number;
}

/**
 * Downloads the blob `options.digest` into the staging directory, or finds it there already.
 *
 * @throws {PusherError} kind `verify` when the bytes don't match the digest or size (the partial
 * file is removed); the last request's error when retries run out; the signal's reason on abort.
 */
export async function fetchBlob(options: FetchBlobOptions): Promise<FetchedBlob> {
  const paths = stagingPaths(options.stagingDir, options.digest);
  const finished = await fileSize(paths.complete);
  if (finished !== undefined) {
    if (options.size === undefined || finished === options.size) {
      options.onProgress?.(finished);
      return {
        path: paths.complete,
        size: finished,
        resumedFrom: finished,
        downloaded: 0,
        requests: 0,
      };
    }
    await Deno.remove(paths.complete);
  }
  const file = await PartialBlobFile.open(paths.partial);
  const resumedFrom = file.size;
  let received: ReceivedBlob;
  try {
    received = await receiveBlob(file, options);
  } catch (error) {
    file.abandon();
    if (error instanceof PusherError && error.kind === "verify") {
      await Deno.remove(paths.partial).catch(() => {});
    }
    throw error;
  }
  await file.close();
  await Deno.rename(paths.partial, paths.complete);
  return { path: paths.complete, size: file.size, resumedFrom, ...received };
}

/**
 * Where a download puts the blob's bytes: a growing file with a running sha256 over everything
 * in it ({@link PartialBlobFile}, or a region of a bigger file).
 */
export interface BlobSink {
  /** Bytes of the blob held so far (the offset the next request asks from). */
  readonly size: number;
  /** Adds `chunk` after the bytes held, and to the hash. */
  append(chunk: Uint8Array): Promise<void>;
  /** Forgets every byte held, for a download that has to start again from byte 0. */
  restart(): Promise<void>;
  /** `sha256:<hex>` of the bytes held. */
  digest(): string;
}

/** The transfer options {@link receiveBlob} uses (a {@link FetchBlobOptions} fits). */
export type ReceiveBlobOptions = Omit<FetchBlobOptions, "stagingDir">;

/** What {@link receiveBlob} moved. */
export interface ReceivedBlob {
  /** Bytes received over the network. */
  downloaded: number;
  /** Requests made for the blob. */
  requests: number;
}

/**
 * Downloads the rest of the blob into `sink` (from `sink.size` on), with retries, ranged
 * resumes and the stall guard, then checks size and digest. Settles only once no attempt is
 * writing to the sink any more.
 *
 * @throws {PusherError} kind `verify` when the bytes don't match the digest or size; the last
 * request's error when retries run out; the signal's reason on abort.
 */
export async function receiveBlob(
  sink: BlobSink,
  options: ReceiveBlobOptions,
): Promise<ReceivedBlob> {
  const transfer: Transfer = { options, file: sink, downloaded: 0, requests: 0 };
  const signal = options.signal ?? new AbortController().signal;
  let attempt: Promise<void> | undefined;
  try {
    await withRetry(() => (attempt = transferOnce(transfer, signal)), {
      ...options.retry,
      signal,
    });
  } catch (error) {
    await attempt?.catch(() => {});
    throw error;
  }
  checkContent(sink, options);
  return { downloaded: transfer.downloaded, requests: transfer.requests };
}

/** The state one download shares across its attempts. */
interface Transfer {
  options: ReceiveBlobOptions;
  file: BlobSink;
  downloaded: number;
  requests: number;
}

/**
 * One request for the rest of the blob, its body appended to the file, under the stall guard.
 * Settles only when the copy loop has stopped, so two attempts never write at once.
 */
async function transferOnce(transfer: Transfer, signal: AbortSignal): Promise<void> {
  const { options, file } = transfer;
  if (options.size !== undefined && file.size > options.size) await restart(transfer);
  if (options.size !== undefined && file.size === options.size) return;
  let copying: Promise<void> | undefined;
  try {
    await guardRequest(
      signal,
      {
        timeoutMs: options.stallTimeoutMs,
        label: `download of ${options.digest}`,
        ...(options.clock === undefined ? {} : { clock: options.clock }),
      },
      (guarded, touch) => (copying = copyRest(transfer, guarded, touch)),
    );
  } finally {
    await copying?.catch(() => {});
  }
}

/** Requests the blob from the file's size on and appends what comes. */
async function copyRest(
  transfer: Transfer,
  signal: AbortSignal,
  touch: () => void,
): Promise<void> {
  const { options, file } = transfer;
  transfer.requests++;
  let download: BlobDownload;
  try {
    download = await options.source.getBlob(options.digest, { offset: file.size, signal });
  } catch (error) {
    if (error instanceof RegistryError && error.status === 416 && file.size > 0) {
      // The file may hold the whole blob already (a run stopped before the rename).
      if (file.digest() === options.digest) return;
      await restart(transfer);
      throw new RegistryError(
        "network",
        `the registry refused to resume ${options.digest}; starting it again`,
        { status: 416, retryable: true, retryAfterMs: 0 },
      );
    }
    throw error;
  }
  touch();
  if (download.start !== file.size) await restart(transfer);
  if (download.size !== undefined && options.size !== undefined && download.size !== options.size) {
    await download.body.cancel().catch(() => {});
    throw mismatch(
      options.digest,
      `the registry serves ${download.size} bytes, not ${options.size}`,
    );
  }
  const reader = download.body.getReader();
  const stop = (): void => void reader.cancel(signal.reason).catch(() => {});
  signal.addEventListener("abort", stop, { once: true });
  const batch = new WriteBatch(file, {
    onWritten: (size) => options.onProgress?.(size),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  let received = file.size;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      signal.throwIfAborted();
      if (done) break;
      touch();
      received += value.byteLength;
      if (options.size !== undefined && received > options.size) {
        throw mismatch(options.digest, `the registry sent more than ${options.size} bytes`);
      }
      await batch.add(value);
      transfer.downloaded += value.byteLength;
    }
  } catch (error) {
    // What came before the failure is good: on disk, the next request need not ask for it.
    await batch.flush().catch(() => {});
    throw error;
  } finally {
    batch.close();
    signal.removeEventListener("abort", stop);
    await reader.cancel().catch(() => {});
  }
  await batch.flush();
}

async function restart(transfer: Transfer): Promise<void> {
  await transfer.file.restart();
  transfer.options.onProgress?.(0);
}

/** Checks the finished file's size and digest. */
function checkContent(file: BlobSink, options: ReceiveBlobOptions): void {
  if (options.size !== undefined && file.size !== options.size) {
    throw mismatch(options.digest, `got ${file.size} bytes, expected ${options.size}`);
  }
  const actual = file.digest();
  if (actual !== options.digest) {
    throw mismatch(options.digest, `the bytes received hash to ${actual}`);
  }
}

function mismatch(digest: string, detail: string): PusherError {
  return new PusherError("verify", `blob ${digest} failed verification: ${detail}`, {
    hint: "the registry, or a proxy or cache in front of it, served other bytes; try again",
  });
}
