/**
 * The resumable blob uploader against the spec-following in-process registry: mid-blob resume
 * (streamed and chunked), retry decisions per status, Retry-After, backoff, the final PUT that may
 * have landed, lost sessions, sessions saved by an earlier run, stalls and aborts. Waits between
 * retries go through a recording fake sleep.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PusherError } from "../../lib/errors.ts";
import {
  uploadBlob,
  type UploadResult,
  type UploadSettings,
  type UploadSource,
} from "../../lib/push/blob_upload.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import type { SavedUpload, SessionMemory } from "../../lib/state/upload_state.ts";
import {
  type Fault,
  type FaultContext,
  type MemoryRegistry,
  type MemoryRegistryOptions,
  type RequestRecord,
  startMemoryRegistry,
} from "../helpers/memory_registry.ts";

const REPOSITORY = "unit/blob";
const KiB = 1024;

function pseudoRandom(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

interface TestSource extends UploadSource {
  opens: number;
}

/**
 * A source of `bytes` in 64 KiB pieces; its outcome resolves when the stream ends. Re-openings
 * wait `reopenDelayMs` before each piece (a slow disk, or compression regenerating the bytes).
 */
function sourceOf(bytes: Uint8Array, reopenable = true, reopenDelayMs = 0): TestSource {
  const digest = sha256(bytes);
  const source: TestSource = {
    opens: 0,
    reopenable,
    open() {
      source.opens++;
      const delayMs = source.opens > 1 ? reopenDelayMs : 0;
      let offset = 0;
      let done: (value: { digest: string; size: number }) => void = () => {};
      const outcome = new Promise<{ digest: string; size: number }>((resolve) => done = resolve);
      const stream = new ReadableStream<Uint8Array>({
        async pull(controller): Promise<void> {
          if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
          if (offset >= bytes.length) {
            controller.close();
            done({ digest, size: bytes.length });
            return;
          }
          const end = Math.min(offset + 64 * KiB, bytes.length);
          controller.enqueue(bytes.slice(offset, end));
          offset = end;
        },
      });
      return { stream, outcome };
    },
  };
  return source;
}

/** A session memory held in a variable, as the state file would hold it. */
function memoryCell(initial?: SavedUpload): SessionMemory & { saved: SavedUpload | undefined } {
  const cell = {
    saved: initial,
    recall: () => cell.saved,
    remember: (session: { location: URL; offset: number }) => {
      cell.saved = { location: session.location.href, offset: session.offset, updatedAt: 0 };
    },
    forget: () => {
      cell.saved = undefined;
    },
  };
  return cell;
}

interface Harness {
  settings: UploadSettings;
  client: RegistryClient;
  sleeps: number[];
  retryReasons: string[];
  resumes: number[];
}

function harness(url: string, host: string, overrides: Partial<UploadSettings> = {}): Harness {
  const client = new RegistryClient({
    reference: { registry: host, apiBase: new URL(url), repository: REPOSITORY },
  });
  const sleeps: number[] = [];
  const retryReasons: string[] = [];
  const resumes: number[] = [];
  const settings: UploadSettings = {
    client,
    chunked: false,
    chunkSize: 256 * KiB,
    retry: {
      attempts: 3,
      baseDelayMs: 100,
      maxDelayMs: 1000,
      random: () => 0.5,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    },
    stallTimeoutMs: 10_000,
    label: "test blob",
    signal: new AbortController().signal,
    onRetry: (_attempt, _delay, reason) => retryReasons.push(reason),
    onResume: (offset) => resumes.push(offset),
    ...overrides,
  };
  return { settings, client, sleeps, retryReasons, resumes };
}

/** A fault hook answering `status` to the first request(s) of `kind`. */
function onAttempts(
  kind: FaultContext["kind"],
  attempts: readonly number[],
  fault: Fault,
): (context: FaultContext) => Fault | undefined {
  return (context) =>
    context.kind === kind && attempts.includes(context.attempt) ? fault : undefined;
}

function registryError(code: string, message = "injected"): string {
  return JSON.stringify({ errors: [{ code, message }] });
}

function count(stats: Record<string, number>, key: string): number {
  return stats[key] ?? 0;
}

function assertLanded(
  result: UploadResult,
  bytes: Uint8Array,
  stored: Uint8Array | undefined,
): void {
  assert.equal(result.digest, sha256(bytes));
  assert.equal(result.size, bytes.length);
  assert.ok(stored, "the registry holds the blob");
  assert.equal(sha256(stored), sha256(bytes));
}

/** How {@link landsWith} sets up one upload. */
interface LandSetup {
  /** Options of the fresh in-process registry (faults, chunk minimum). */
  registry?: MemoryRegistryOptions;
  /** The blob. */
  bytes: Uint8Array;
  /** {@link sourceOf}'s options. */
  reopenable?: boolean;
  reopenDelayMs?: number;
  /** Settings over the harness's defaults; `retry` is merged field by field. */
  settings?: Partial<UploadSettings>;
  retry?: Partial<UploadSettings["retry"]>;
}

/** What {@link landsWith} ran, for the test's own checks. */
interface Landed {
  result: UploadResult;
  registry: MemoryRegistry;
  h: Harness;
  source: TestSource;
  bytes: Uint8Array;
}

/** Uploads `setup.bytes` to a fresh in-process registry, checks they landed intact, then runs `check`. */
async function landsWith(setup: LandSetup, check: (run: Landed) => void): Promise<void> {
  await using registry = startMemoryRegistry(setup.registry);
  const source = sourceOf(setup.bytes, setup.reopenable, setup.reopenDelayMs);
  const h = harness(registry.url, registry.host, setup.settings);
  h.settings.retry = { ...h.settings.retry, ...setup.retry };
  try {
    const result = await uploadBlob(source, h.settings);
    assertLanded(result, setup.bytes, registry.blob(result.digest));
    check({ result, registry, h, source, bytes: setup.bytes });
  } finally {
    h.client.close();
  }
}

Deno.test("upload: a streamed PATCH cut mid-blob resumes at the registry's offset", () =>
  landsWith({
    registry: { faults: onAttempts("upload-patch", [1], { type: "cut", afterBytes: 300_000 }) },
    bytes: pseudoRandom(1_000_000, 1),
  }, ({ result, registry, h, source, bytes }) => {
    assert.deepEqual(result.resumedAt, [300_000]);
    assert.deepEqual(h.resumes, [300_000]);
    assert.equal(result.sessionsStarted, 1);
    assert.equal(source.opens, 2, "the source was re-opened and its first bytes skipped");
    assert.equal(registry.stats.bytesReceived["upload-patch"], bytes.length, "nothing re-sent");
    assert.equal(count(registry.stats.requests, "GET upload-status"), 1);
    assert.equal(h.sleeps.length, 1);
  }));

/** The upload PATCHes among the requests a registry logged. */
function patchRecords(log: readonly RequestRecord[]): RequestRecord[] {
  return log.filter((record) => record.kind === "upload-patch");
}

/** Bytes the registry stored from PATCHes (a cut request stores what it read before the cut). */
function storedPatchBytes(log: readonly RequestRecord[]): number {
  // Deno's fetch may itself re-send a cut in-memory body once; the registry refuses that copy
  // (416), so count only what it stored.
  return patchRecords(log).filter((record) => record.outcome === 202 || record.outcome === "cut")
    .reduce((sum, record) => sum + record.bytes, 0);
}

Deno.test("upload: streamed chunks go up one PATCH each, with no length and no copy in memory", () =>
  landsWith({
    bytes: pseudoRandom(1_000_000, 12),
    settings: { chunked: true },
  }, ({ registry, source, bytes }) => {
    const patches = patchRecords(registry.log);
    assert.deepEqual(
      patches.map((record) => record.bytes),
      [256 * KiB, 256 * KiB, 256 * KiB, bytes.length - 3 * 256 * KiB],
    );
    assert.ok(patches.every((record) => !record.contentLength), "every chunk was streamed");
    assert.equal(source.opens, 1);
  }));

for (const reopenable of [true, false]) {
  const how = reopenable
    ? "a streamed chunk cut mid-way is regenerated from the source"
    : "a chunk of a source read once is cut mid-way and finished from memory";
  Deno.test(`upload: ${how}, nothing stored twice`, () =>
    landsWith({
      registry: {
        faults: onAttempts("upload-patch", [3], { type: "cut", afterBytes: 100_000 }),
      },
      bytes: pseudoRandom(1_000_000, 2),
      reopenable,
      settings: { chunked: true },
    }, ({ result, registry, source, bytes }) => {
      assert.deepEqual(result.resumedAt, [2 * 256 * KiB + 100_000]);
      assert.equal(source.opens, reopenable ? 2 : 1, "re-opened only when it can be");
      assert.equal(storedPatchBytes(registry.log), bytes.length, "no byte stored twice");
      assert.ok(
        patchRecords(registry.log).every((record) => record.contentLength === !reopenable),
        "streamed chunks have no length; chunks in memory have one",
      );
    }));
}

Deno.test("upload: regenerating the bytes before a resume point is not taken for a stall", () =>
  // Skipping 700 kB on the re-opening takes ~11 pieces × 40 ms, well over the stall timeout.
  landsWith({
    registry: { faults: onAttempts("upload-patch", [1], { type: "cut", afterBytes: 700_000 }) },
    bytes: pseudoRandom(1_000_000, 14),
    reopenDelayMs: 40,
    settings: { stallTimeoutMs: 200 },
  }, ({ result, h }) => {
    assert.deepEqual(result.resumedAt, [700_000]);
    assert.equal(h.sleeps.length, 1, "one wait, for the cut; none for a stall");
  }));

Deno.test("upload: 411 to a streamed chunk switches to chunks in memory with a Content-Length", () =>
  landsWith({
    registry: { faults: onAttempts("upload-patch", [2], { type: "status", status: 411 }) },
    bytes: pseudoRandom(700_000, 13),
    settings: { chunked: true },
  }, ({ registry, h }) => {
    const patches = patchRecords(registry.log);
    assert.deepEqual(patches.map((record) => [record.outcome, record.contentLength]), [
      [202, false],
      [411, false],
      [202, true],
      [202, true],
    ]);
    assert.equal(h.sleeps.length, 0, "switching needs no wait");
  }));

Deno.test("upload: a single streaming pass survives a 503 between chunks", () =>
  landsWith({
    registry: { faults: onAttempts("upload-patch", [2], { type: "status", status: 503 }) },
    bytes: pseudoRandom(700_000, 3),
    reopenable: false,
    settings: { chunked: true },
  }, ({ h, source }) => {
    assert.equal(source.opens, 1);
    assert.deepEqual(h.sleeps, [50]);
  }));

Deno.test("upload: a streamed pass that cannot be re-read fails clearly after a cut", async () => {
  await using registry = startMemoryRegistry({
    faults: onAttempts("upload-patch", [1], { type: "cut", afterBytes: 50_000 }),
  });
  const bytes = pseudoRandom(400_000, 4);
  const h = harness(registry.url, registry.host);
  try {
    await assert.rejects(uploadBlob(sourceOf(bytes, false), h.settings), (error: unknown) => {
      assert.ok(error instanceof PusherError);
      assert.equal(error.kind, "network");
      assert.match(error.message, /cannot be re-read/);
      return true;
    });
    assert.equal(count(registry.stats.requests, "DELETE upload-delete"), 1, "session cancelled");
  } finally {
    h.client.close();
  }
});

Deno.test("upload: 429 waits for Retry-After, in seconds and as an HTTP date", () => {
  let call = 0;
  return landsWith({
    registry: {
      faults: (context) => {
        if (context.kind !== "upload-patch") return undefined;
        call++;
        if (call === 1) return { type: "status", status: 429, headers: { "Retry-After": "7" } };
        if (call === 2) {
          const date = new Date(Date.now() + 5000).toUTCString();
          return { type: "status", status: 429, headers: { "Retry-After": date } };
        }
        return undefined;
      },
    },
    bytes: pseudoRandom(100_000, 5),
  }, ({ h }) => {
    assert.equal(h.sleeps.length, 2);
    assert.equal(h.sleeps[0], 7000);
    const fromDate = h.sleeps[1] ?? 0;
    assert.ok(fromDate > 2500 && fromDate <= 5000, `HTTP-date wait ${fromDate} ms`);
  });
});

Deno.test("upload: backoff has full jitter, doubles and is capped; retries run out", async () => {
  await using registry = startMemoryRegistry({
    faults: (context) =>
      context.kind === "upload-patch" ? { type: "status", status: 500 } : undefined,
  });
  const bytes = pseudoRandom(50_000, 6);
  const h = harness(registry.url, registry.host);
  h.settings.retry = { ...h.settings.retry, attempts: 4, maxDelayMs: 300, random: () => 0.999 };
  try {
    await assert.rejects(uploadBlob(sourceOf(bytes), h.settings), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 500);
      return true;
    });
    assert.deepEqual(h.sleeps, [99, 199, 299, 299]);
    assert.equal(count(registry.stats.requests, "PATCH upload-patch"), 5);
    assert.equal(count(registry.stats.requests, "DELETE upload-delete"), 1, "no memory: cancelled");
  } finally {
    h.client.close();
  }
});

Deno.test("upload: retries run out with a memory: the session is kept for a re-run", async () => {
  await using registry = startMemoryRegistry({
    faults: (context) =>
      context.kind === "upload-patch" && context.attempt > 1
        ? { type: "status", status: 500 }
        : undefined,
  });
  const bytes = pseudoRandom(600_000, 7);
  const memory = memoryCell();
  const h = harness(registry.url, registry.host, { chunked: true, memory });
  h.settings.retry = { ...h.settings.retry, attempts: 1 };
  try {
    await assert.rejects(uploadBlob(sourceOf(bytes), h.settings), RegistryError);
    assert.equal(count(registry.stats.requests, "DELETE upload-delete"), 0);
    assert.equal(memory.saved?.offset, 256 * KiB, "the acknowledged chunk is remembered");
  } finally {
    h.client.close();
  }
});

Deno.test("upload: an outage (503, 429, 502) is waited out, not counted against attempts", () =>
  landsWith({
    registry: {
      faults: (context) => {
        if (context.kind !== "upload-patch" || context.attempt > 4) return undefined;
        const status = [503, 429, 502, 503][context.attempt - 1] ?? 503;
        return { type: "status", status };
      },
    },
    bytes: pseudoRandom(100_000, 21),
    retry: { attempts: 1 },
  }, ({ h, registry }) => {
    assert.equal(h.sleeps.length, 4);
    assert.equal(count(registry.stats.requests, "PATCH upload-patch"), 5);
  }));

Deno.test("upload: each acknowledged chunk starts the retry count again", () =>
  landsWith({
    registry: {
      faults: (context) =>
        context.kind === "upload-patch" && context.attempt % 2 === 1
          ? { type: "status", status: 500 }
          : undefined,
    },
    bytes: pseudoRandom(5 * 256 * KiB, 8),
    settings: { chunked: true },
    retry: { attempts: 1 },
  }, ({ h }) => assert.equal(h.sleeps.length, 5)));

Deno.test("upload: a link that breaks after a few bytes every time still gives up", async () => {
  await using registry = startMemoryRegistry({
    faults: (context) =>
      context.kind === "upload-patch" ? { type: "cut", afterBytes: 1000 } : undefined,
  });
  const bytes = pseudoRandom(600_000, 20);
  for (const chunked of [false, true]) {
    const h = harness(registry.url, registry.host, { chunked });
    h.settings.retry = { ...h.settings.retry, attempts: 3 };
    try {
      await assert.rejects(uploadBlob(sourceOf(bytes), h.settings), { kind: "network" });
      assert.equal(h.sleeps.length, 3, chunked ? "chunked" : "streamed");
    } finally {
      h.client.close();
    }
  }
});

const UNCERTAIN_COMPLETIONS: ReadonlyArray<{ how: string; fault: Fault; landed: boolean }> = [
  { how: "whose answer was lost is found by HEAD", fault: { type: "drop-response" }, landed: true },
  {
    how: "answered 502 that did not land is checked, then completed",
    fault: { type: "status", status: 502 },
    landed: false,
  },
];

for (const { how, fault, landed } of UNCERTAIN_COMPLETIONS) {
  Deno.test(`upload: a final PUT ${how}; the bytes are not sent again`, () =>
    landsWith({
      registry: { faults: onAttempts("upload-put", [1], fault) },
      bytes: pseudoRandom(200_000, 9),
    }, ({ result, registry }) => {
      assert.equal(result.foundOnRetry, landed);
      assert.equal(count(registry.stats.requests, "HEAD blob-head"), 1);
      // A dropped answer may make Deno's fetch send the PUT once more by itself; count only the
      // PUT that had to be repeated.
      if (!landed) assert.equal(count(registry.stats.requests, "PUT upload-put"), 2);
      assert.equal(count(registry.stats.requests, "PATCH upload-patch"), 1);
    }));
}

Deno.test("upload: 413 to a streamed PATCH switches the blob to chunks", () =>
  landsWith({
    registry: { faults: onAttempts("upload-patch", [1], { type: "status", status: 413 }) },
    bytes: pseudoRandom(600_000, 11),
  }, ({ registry, h }) => {
    assert.equal(count(registry.stats.requests, "PATCH upload-patch"), 1 + 3);
    assert.equal(h.sleeps.length, 0, "switching needs no wait");
  }));

/** The upload PATCHes in the log as [outcome, body bytes]. */
function patches(log: readonly RequestRecord[]): Array<[number | string, number]> {
  return patchRecords(log).map((record) => [record.outcome, record.bytes]);
}

const CHUNK_REFUSALS: ReadonlyArray<{
  how: string;
  kind: FaultContext["kind"];
  attempt: number;
  fault: Fault;
  /** The PATCHes before the one that sends the whole blob: [outcome, bytes]. */
  before: Array<[number | string, number]>;
}> = [
  {
    how: "a registry that refuses a second chunk",
    kind: "upload-patch",
    attempt: 2,
    fault: {
      type: "status",
      status: 400,
      body: registryError("UNSUPPORTED", "chunked uploads are not supported"),
    },
    before: [[202, 256 * KiB], [400, 256 * KiB]],
  },
  {
    how: "413 to a chunk (a cap on chunk size)",
    kind: "upload-patch",
    attempt: 1,
    fault: { type: "status", status: 413 },
    before: [[413, 256 * KiB]],
  },
  {
    how: "chunks the registry put together wrongly",
    kind: "upload-put",
    attempt: 1,
    fault: {
      type: "status",
      status: 400,
      body: registryError("DIGEST_INVALID", "provided digest did not match uploaded content"),
    },
    before: [[202, 256 * KiB], [202, 256 * KiB], [202, 600_000 - 2 * 256 * KiB]],
  },
];

for (const { how, kind, attempt, fault, before } of CHUNK_REFUSALS) {
  Deno.test(`upload: ${how}: the blob goes again in one request`, () =>
    landsWith({
      registry: { faults: onAttempts(kind, [attempt], fault) },
      bytes: pseudoRandom(600_000, 15),
      settings: { chunked: true },
    }, ({ result, registry, h, bytes }) => {
      assert.deepEqual(patches(registry.log), [...before, [202, bytes.length]]);
      assert.equal(result.sessionsStarted, 2, "a new session for the single request");
      assert.equal(count(registry.stats.requests, "DELETE upload-delete"), 1, "old one cancelled");
      assert.equal(h.sleeps.length, 0, "no backoff: nothing failed on the way");
      assert.match(h.retryReasons[0] ?? "", /one request instead of chunks/);
    }));
}

Deno.test("upload: 413 to chunks halves them until one fits, and reports the size that fit", () => {
  const fits: number[] = [];
  return landsWith({
    registry: { faults: onAttempts("upload-patch", [1, 2], { type: "status", status: 413 }) },
    bytes: pseudoRandom(1_000_000, 21),
    settings: { chunked: true, chunkSize: 1024 * KiB, onChunkSizeFits: (size) => fits.push(size) },
  }, ({ registry, h }) => {
    assert.deepEqual(patches(registry.log), [
      [413, 1_000_000],
      [413, 512 * KiB],
      [202, 256 * KiB],
      [202, 256 * KiB],
      [202, 256 * KiB],
      [202, 1_000_000 - 3 * 256 * KiB],
    ]);
    assert.deepEqual(fits, [256 * KiB], "reported once, when a full chunk of the new size went up");
    assert.equal(h.sleeps.length, 0, "shrinking needs no wait");
    assert.match(h.retryReasons[0] ?? "", /trying chunks of 512 KiB/);
  });
});

Deno.test("upload: a held chunk refused with 413 is split, from a source read once", () => {
  const fits: number[] = [];
  return landsWith({
    registry: { faults: onAttempts("upload-patch", [2], { type: "status", status: 413 }) },
    bytes: pseudoRandom(1_200_000, 22),
    reopenable: false,
    settings: { chunked: true, chunkSize: 512 * KiB, onChunkSizeFits: (size) => fits.push(size) },
  }, ({ registry, source }) => {
    assert.deepEqual(patches(registry.log), [
      [202, 512 * KiB],
      [413, 512 * KiB],
      [202, 256 * KiB],
      [202, 256 * KiB],
      [202, 1_200_000 - 1024 * KiB],
    ]);
    assert.ok(patchRecords(registry.log).every((record) => record.contentLength));
    assert.equal(source.opens, 1, "read once: the refused chunk went again from memory");
    assert.deepEqual(fits, [256 * KiB]);
  });
});

Deno.test("upload: chunks to ghcr.io stay within its 4 MiB cap", async () => {
  await using registry = startMemoryRegistry();
  const bytes = pseudoRandom(9 * 1024 * KiB, 23);
  // The registry's name decides its known limits; its address is the in-process registry's.
  const h = harness(registry.url, "ghcr.io", { chunked: true, chunkSize: 64 * 1024 * KiB });
  try {
    const result = await uploadBlob(sourceOf(bytes), h.settings);
    assertLanded(result, bytes, registry.blob(result.digest));
    assert.deepEqual(patches(registry.log).map(([, size]) => size), [
      4096 * KiB,
      4096 * KiB,
      1024 * KiB,
    ]);
  } finally {
    h.client.close();
  }
});

Deno.test("upload: a registry that refuses both chunks and one large request fails, without a loop", async () => {
  await using registry = startMemoryRegistry({
    faults: (context) =>
      context.kind === "upload-patch" ? { type: "status", status: 413 } : undefined,
  });
  const bytes = pseudoRandom(600_000, 18);
  const h = harness(registry.url, registry.host, { chunked: true });
  try {
    await assert.rejects(uploadBlob(sourceOf(bytes), h.settings), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 413);
      return true;
    });
    assert.equal(count(registry.stats.requests, "PATCH upload-patch"), 2);
  } finally {
    h.client.close();
  }
});

Deno.test("upload: chunks are at least the registry's OCI-Chunk-Min-Length", () =>
  landsWith({
    registry: { chunkMinLength: 400_000 },
    bytes: pseudoRandom(1_000_000, 19),
    settings: { chunked: true },
  }, ({ registry }) => {
    assert.deepEqual(patches(registry.log).map(([, size]) => size), [400_000, 400_000, 200_000]);
  }));

Deno.test("upload: a session the registry lost is replaced, and the old one cancelled", () => {
  const faults: Record<string, Fault> = {
    "upload-patch:1": { type: "cut", afterBytes: 10_000 },
    "upload-status:1": {
      type: "status",
      status: 404,
      body: registryError("BLOB_UPLOAD_UNKNOWN"),
      headers: { "Content-Type": "application/json" },
    },
  };
  return landsWith({
    registry: { faults: (context) => faults[`${context.kind}:${context.attempt}`] },
    bytes: pseudoRandom(300_000, 12),
  }, ({ result, registry }) => {
    assert.equal(result.sessionsStarted, 2);
    assert.equal(count(registry.stats.requests, "DELETE upload-delete"), 1);
  });
});

for (
  const [name, kind, status, code, expectedKind] of [
    ["400 DIGEST_INVALID", "upload-put", 400, "DIGEST_INVALID", "verify"],
    ["403", "upload-start", 403, "DENIED", "auth"],
    ["404 NAME_UNKNOWN", "upload-start", 404, "NAME_UNKNOWN", "registry"],
  ] as const
) {
  Deno.test(`upload: ${name} is not retried`, async () => {
    await using registry = startMemoryRegistry({
      faults: (context) =>
        context.kind === kind
          ? {
            type: "status",
            status,
            body: registryError(code),
            headers: { "Content-Type": "application/json" },
          }
          : undefined,
    });
    const h = harness(registry.url, registry.host);
    try {
      await assert.rejects(
        uploadBlob(sourceOf(pseudoRandom(10_000, 13)), h.settings),
        (error: unknown) => {
          assert.ok(error instanceof RegistryError);
          assert.equal(error.kind, expectedKind);
          return true;
        },
      );
      const method = kind === "upload-put" ? "PUT" : "POST";
      assert.equal(count(registry.stats.requests, `${method} ${kind}`), 1);
      assert.deepEqual(h.sleeps, []);
    } finally {
      h.client.close();
    }
  });
}

Deno.test("upload: a 401 that a fresh login does not cure is not retried", async () => {
  await using registry = startMemoryRegistry({
    auth: { username: "user", password: "right" },
  });
  const client = new RegistryClient({
    reference: { registry: registry.host, apiBase: new URL(registry.url), repository: REPOSITORY },
    credentials: { username: "user", password: "wrong" },
  });
  const h = harness(registry.url, registry.host, { client });
  try {
    await assert.rejects(uploadBlob(sourceOf(pseudoRandom(10_000, 14)), h.settings), {
      kind: "auth",
    });
    assert.ok(count(registry.stats.requests, "POST upload-start") <= 2);
    assert.deepEqual(h.sleeps, []);
  } finally {
    client.close();
    h.client.close();
  }
});

Deno.test("upload: continues a session saved by an earlier run", async () => {
  await using registry = startMemoryRegistry();
  const bytes = pseudoRandom(900_000, 15);
  const h = harness(registry.url, registry.host, { chunked: true });
  try {
    const earlier = await h.client.startUpload();
    const after = await h.client.patchChunk(earlier, bytes.subarray(0, 400_000));
    const memory = memoryCell({ location: after.location.href, offset: 400_000, updatedAt: 0 });
    registry.resetStats();
    const result = await uploadBlob(sourceOf(bytes), { ...h.settings, memory });
    assertLanded(result, bytes, registry.blob(result.digest));
    assert.deepEqual(result.resumedAt, [400_000]);
    assert.equal(result.sessionsStarted, 0);
    assert.equal(registry.stats.bytesReceived["upload-patch"], bytes.length - 400_000);
    assert.equal(memory.saved, undefined, "forgotten once complete");
  } finally {
    h.client.close();
  }
});

Deno.test("upload: a saved session that is gone is replaced by a new one", async () => {
  await using registry = startMemoryRegistry();
  const bytes = pseudoRandom(300_000, 16);
  const h = harness(registry.url, registry.host);
  try {
    const earlier = await h.client.startUpload();
    await h.client.cancelUpload(earlier);
    const memory = memoryCell({ location: earlier.location.href, offset: 0, updatedAt: 0 });
    const result = await uploadBlob(sourceOf(bytes), { ...h.settings, memory });
    assertLanded(result, bytes, registry.blob(result.digest));
    assert.equal(result.sessionsStarted, 1);
    assert.deepEqual(h.sleeps, []);
  } finally {
    h.client.close();
  }
});

Deno.test("upload: a saved session holding other bytes ends in one fresh restart", async () => {
  await using registry = startMemoryRegistry();
  const bytes = pseudoRandom(500_000, 17);
  const h = harness(registry.url, registry.host);
  try {
    for (const foreign of [pseudoRandom(200_000, 99), pseudoRandom(600_000, 98)]) {
      const earlier = await h.client.startUpload();
      const after = await h.client.patchChunk(earlier, foreign);
      const memory = memoryCell({
        location: after.location.href,
        offset: after.offset,
        updatedAt: 0,
      });
      const result = await uploadBlob(sourceOf(bytes), { ...h.settings, memory });
      assertLanded(result, bytes, registry.blob(result.digest));
      assert.equal(result.sessionsStarted, 1, `after ${foreign.length} foreign bytes`);
    }
  } finally {
    h.client.close();
  }
});

Deno.test("upload: a stalled request is aborted after the stall timeout and retried", async () => {
  await using registry = startMemoryRegistry({
    faults: onAttempts("upload-patch", [1], { type: "stall", ms: 5000 }),
  });
  const bytes = pseudoRandom(4 * 1024 * KiB, 18);
  const h = harness(registry.url, registry.host, { stallTimeoutMs: 300 });
  try {
    const started = performance.now();
    const result = await uploadBlob(sourceOf(bytes), h.settings);
    const elapsed = performance.now() - started;
    assertLanded(result, bytes, registry.blob(result.digest));
    assert.ok(elapsed < 4000, `took ${Math.round(elapsed)} ms`);
    assert.match(
      h.retryReasons[0] ?? "",
      /upload of test blob .* stalled: no data moved for 0.3 s/,
    );
  } finally {
    h.client.close();
  }
});

Deno.test("upload: an abort stops at once and keeps the session for a re-run", async () => {
  await using registry = startMemoryRegistry({
    faults: onAttempts("upload-patch", [2], { type: "stall", ms: 3000 }),
  });
  const controller = new AbortController();
  const memory = memoryCell();
  const bytes = pseudoRandom(800_000, 19);
  const h = harness(registry.url, registry.host, {
    chunked: true,
    memory,
    signal: controller.signal,
    onProgress: (offset) => {
      if (offset >= 256 * KiB) setTimeout(() => controller.abort(new Error("stop")), 100);
    },
  });
  try {
    const started = performance.now();
    await assert.rejects(uploadBlob(sourceOf(bytes), h.settings), /stop/);
    assert.ok(performance.now() - started < 2500);
    assert.equal(memory.saved?.offset, 256 * KiB);
    assert.equal(count(registry.stats.requests, "DELETE upload-delete"), 0);
  } finally {
    h.client.close();
  }
});
