/**
 * The copy's upload source over a source registry's blob `GET`, with a scripted getter: a body
 * broken mid-way is asked for again from the byte it reached, a registry ignoring the range has
 * the part already sent skipped, bytes that don't match the digest error the stream, and retries
 * run out. A held small blob is read once, at once, and handed out from memory.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type BlobGetter, heldBlobSource, registryBlobSource } from "../../lib/copy/blob_source.ts";
import { PusherError } from "../../lib/errors.ts";
import type { BlobDownload, GetBlobOptions } from "../../lib/registry/client.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import { chunkedStream, collectBytes } from "../helpers/byte_streams.ts";

const BLOB = new Uint8Array(300_000).map((_, i) => (i * 31) % 256);
const DIGEST = `sha256:${createHash("sha256").update(BLOB).digest("hex")}`;
const CHUNK = 16 * 1024;

/** How one `GET` is answered. */
interface Answer {
  /** Honour the range (206) or send the whole blob (200). */
  ranged: boolean;
  /** Break the body with a retryable network error after this many bytes. */
  breakAfter?: number;
  /** Serve these bytes instead of the blob. */
  bytes?: Uint8Array;
  /** Fail the request itself with this error. */
  fail?: Error;
}

function brokenStream(bytes: Uint8Array, breakAfter: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller): void {
      if (offset >= breakAfter) {
        controller.error(new RegistryError("network", "connection reset", { retryable: true }));
        return;
      }
      const end = Math.min(breakAfter, offset + CHUNK);
      controller.enqueue(bytes.slice(offset, end));
      offset = end;
    },
  });
}

function scripted(answers: Answer[]): BlobGetter & { offsets: number[] } {
  const offsets: number[] = [];
  return {
    offsets,
    getBlob(_digest: string, options: GetBlobOptions): Promise<BlobDownload> {
      const offset = options.offset ?? 0;
      offsets.push(offset);
      const answer = answers.shift() ?? { ranged: true };
      if (answer.fail !== undefined) return Promise.reject(answer.fail);
      const whole = answer.bytes ?? BLOB;
      const start = answer.ranged ? offset : 0;
      const rest = whole.subarray(start);
      const body = answer.breakAfter === undefined
        ? chunkedStream(rest, CHUNK)
        : brokenStream(rest, answer.breakAfter);
      return Promise.resolve({ body, start, ranged: answer.ranged, size: whole.byteLength });
    },
  };
}

function source(getter: BlobGetter, attempts = 3) {
  const retries: string[] = [];
  const blobSource = registryBlobSource({
    source: getter,
    digest: DIGEST,
    size: BLOB.byteLength,
    retry: { attempts, baseDelayMs: 1, maxDelayMs: 2 },
    signal: new AbortController().signal,
    onRetry: (_attempt, _delay, reason) => retries.push(reason),
  });
  return { blobSource, retries };
}

Deno.test("a body broken mid-way is asked for again from the byte it reached", async () => {
  const getter = scripted([{ ranged: true, breakAfter: 100_000 }, {
    ranged: true,
    breakAfter: 50_000,
  }]);
  const { blobSource, retries } = source(getter);
  const { stream, outcome } = blobSource.open();
  const bytes = await collectBytes(stream);
  assert.deepEqual(bytes, BLOB);
  assert.deepEqual(await outcome, { digest: DIGEST, size: BLOB.byteLength });
  assert.deepEqual(getter.offsets, [0, 100_000, 150_000]);
  assert.equal(retries.length, 2);
  assert.deepEqual(blobSource.stats, { requests: 3, received: BLOB.byteLength });
});

Deno.test("a registry that ignores the range has the bytes already passed on skipped", async () => {
  const getter = scripted([{ ranged: true, breakAfter: 120_000 }, { ranged: false }]);
  const { blobSource } = source(getter);
  const { stream, outcome } = blobSource.open();
  assert.deepEqual(await collectBytes(stream), BLOB);
  await outcome;
  assert.deepEqual(getter.offsets, [0, 120_000]);
  assert.equal(blobSource.stats.received, 120_000 + BLOB.byteLength);
});

Deno.test("bytes that don't hash to the digest error the stream with a verify error", async () => {
  const other = BLOB.slice();
  other[12_345] = (other[12_345] ?? 0) ^ 0xff;
  const { blobSource } = source(scripted([{ ranged: true, bytes: other }]));
  const { stream, outcome } = blobSource.open();
  const isVerify = (error: unknown): boolean =>
    error instanceof PusherError && error.kind === "verify" && error.message.includes("hash to");
  await assert.rejects(collectBytes(stream), isVerify);
  await assert.rejects(outcome, isVerify);
});

Deno.test("a source serving another size fails at once, without retries", async () => {
  const getter = scripted([{ ranged: true, bytes: BLOB.subarray(0, 1000) }]);
  const { blobSource, retries } = source(getter);
  await assert.rejects(
    collectBytes(blobSource.open().stream),
    (error) => error instanceof PusherError && error.kind === "verify",
  );
  assert.deepEqual(retries, []);
});

Deno.test("failures without progress end the download once the retries are used up", async () => {
  const unavailable = (): Answer => ({
    ranged: true,
    fail: new RegistryError("network", "HTTP 503", { status: 503, retryable: true }),
  });
  const getter = scripted([unavailable(), unavailable(), unavailable()]);
  const { blobSource, retries } = source(getter, 2);
  await assert.rejects(
    collectBytes(blobSource.open().stream),
    (error) => error instanceof RegistryError && error.status === 503,
  );
  assert.equal(getter.offsets.length, 3);
  assert.equal(retries.length, 2);
});

Deno.test("each opening reads the blob anew from byte 0", async () => {
  const getter = scripted([]);
  const { blobSource } = source(getter);
  assert.deepEqual(await collectBytes(blobSource.open().stream), BLOB);
  assert.deepEqual(await collectBytes(blobSource.open().stream), BLOB);
  assert.deepEqual(getter.offsets, [0, 0]);
});

Deno.test("a held small blob is read once, as soon as its source is made, and every opening gets it from memory", async () => {
  const getter = scripted([{ ranged: true }]);
  const held = heldBlobSource({
    source: getter,
    digest: DIGEST,
    size: BLOB.byteLength,
    retry: { attempts: 0, baseDelayMs: 1, maxDelayMs: 2 },
    signal: new AbortController().signal,
  });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(getter.offsets, [0], "the GET went out before the upload opened the source");
  for (let opening = 0; opening < 2; opening++) {
    const { stream, outcome } = held.open();
    assert.deepEqual(await collectBytes(stream), BLOB);
    assert.deepEqual(await outcome, { digest: DIGEST, size: BLOB.byteLength });
  }
  assert.deepEqual(getter.offsets, [0], "one GET for both openings");
});

Deno.test("a held small blob whose download failed is downloaded again by the next opening", async () => {
  const getter = scripted([{ ranged: true, bytes: new Uint8Array(BLOB.byteLength) }]);
  const held = heldBlobSource({
    source: getter,
    digest: DIGEST,
    size: BLOB.byteLength,
    retry: { attempts: 0, baseDelayMs: 1, maxDelayMs: 2 },
    signal: new AbortController().signal,
  });
  const first = held.open();
  await assert.rejects(collectBytes(first.stream), PusherError);
  await assert.rejects(first.outcome, PusherError);
  const second = held.open();
  assert.deepEqual(await collectBytes(second.stream), BLOB);
  assert.deepEqual(getter.offsets, [0, 0], "the second opening asked again");
});
