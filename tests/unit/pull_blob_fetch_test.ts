import assert from "node:assert/strict";
import { join } from "node:path";
import { PusherError } from "../../lib/errors.ts";
import { fetchBlob, type FetchBlobOptions, type FetchedBlob } from "../../lib/pull/blob_fetch.ts";
import { stagingPaths } from "../../lib/pull/partial_file.ts";
import type { RetryInfo } from "../../lib/transfer/retry.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import {
  type FaultHook,
  type MemoryRegistry,
  type MemoryRegistryOptions,
  startMemoryRegistry,
} from "../helpers/memory_registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const REPO = "team/app";
const SIZE = 512 * 1024;
const CUT_AT = 100_000;

function bytesOf(size: number, seed = 3): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 197 + seed + (i >> 11)) % 251);
}

interface Setup {
  registry: MemoryRegistry;
  client: RegistryClient;
  data: Uint8Array;
  digest: string;
  [Symbol.asyncDispose](): Promise<void>;
}

function setup(options: MemoryRegistryOptions = {}, size = SIZE): Setup {
  const registry = startMemoryRegistry(options);
  const data = bytesOf(size);
  const digest = registry.seedBlob(REPO, data);
  const client = new RegistryClient({
    reference: { registry: registry.host, apiBase: new URL(registry.url), repository: REPO },
    access: "pull",
  });
  return {
    registry,
    client,
    data,
    digest,
    async [Symbol.asyncDispose](): Promise<void> {
      client.close();
      await registry.close();
    },
  };
}

function fetchOptions(
  env: Setup,
  stagingDir: string,
  extra: Partial<FetchBlobOptions> = {},
): FetchBlobOptions {
  return {
    source: env.client,
    digest: env.digest,
    size: env.data.byteLength,
    stagingDir,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    stallTimeoutMs: 5_000,
    ...extra,
  };
}

/** The Range header of each blob GET the registry saw, `-` for none. */
function blobRanges(registry: MemoryRegistry): string[] {
  return registry.log.filter((record) => record.kind === "blob-get").map((record) =>
    record.range ?? "-"
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function assertStored(fetched: FetchedBlob, env: Setup): Promise<void> {
  assert.deepEqual(await Deno.readFile(fetched.path), env.data);
  assert.equal(fetched.size, env.data.byteLength);
  assert.equal(await exists(`${fetched.path}.partial`), false);
}

/** Faults the first blob GET with `fault`. */
function firstGet(fault: ReturnType<FaultHook>): FaultHook {
  return ({ kind, attempt }) => kind === "blob-get" && attempt === 1 ? fault : undefined;
}

Deno.test("a blob lands at blobs/sha256/<hex>, verified, with progress up to its size", async () => {
  await using env = setup();
  await using dir = await tempDir();
  const progress: number[] = [];
  const fetched = await fetchBlob(
    fetchOptions(env, dir.path, { onProgress: (bytes) => progress.push(bytes) }),
  );
  assert.equal(fetched.path, join(dir.path, "blobs", "sha256", env.digest.slice(7)));
  await assertStored(fetched, env);
  assert.equal(fetched.downloaded, SIZE);
  assert.equal(fetched.requests, 1);
  assert.equal(progress.at(-1), SIZE);
  assert.ok(progress.every((bytes, i) => i === 0 || bytes > (progress[i - 1] ?? 0)));
});

Deno.test("a body cut mid-blob resumes with Range from the bytes written", async () => {
  await using env = setup({ faults: firstGet({ type: "cut-response", afterBytes: CUT_AT }) });
  await using dir = await tempDir();
  const retries: RetryInfo[] = [];
  const fetched = await fetchBlob(
    fetchOptions(env, dir.path, {
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, onRetry: (info) => retries.push(info) },
    }),
  );
  await assertStored(fetched, env);
  const ranges = blobRanges(env.registry);
  assert.equal(ranges.length, 2);
  assert.equal(ranges[0], "-");
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? "")?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= CUT_AT, `resumed at ${ranges[1]}`);
  assert.equal(fetched.downloaded, SIZE, "no byte was downloaded twice");
  assert.equal(retries.length, 1);
  assert.ok(retries[0]?.error instanceof PusherError);
  assert.equal((retries[0]?.error as PusherError).kind, "network");
});

Deno.test("a body that stalls mid-blob is aborted by the stall guard and resumed", async () => {
  await using env = setup({ faults: firstGet({ type: "stall-response", afterBytes: CUT_AT }) });
  await using dir = await tempDir();
  const retries: RetryInfo[] = [];
  const fetched = await fetchBlob(
    fetchOptions(env, dir.path, {
      stallTimeoutMs: 300,
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, onRetry: (info) => retries.push(info) },
    }),
  );
  await assertStored(fetched, env);
  assert.match(String((retries[0]?.error as Error).message), /stalled/);
  const ranges = blobRanges(env.registry);
  assert.equal(ranges.length, 2);
  assert.match(ranges[1] ?? "", /^bytes=[1-9]\d*-$/);
  assert.equal(fetched.downloaded, SIZE);
});

Deno.test("a registry that ignores Range gets the blob written again from byte 0", async () => {
  await using env = setup({
    ignoreRange: true,
    faults: firstGet({ type: "cut-response", afterBytes: CUT_AT }),
  });
  await using dir = await tempDir();
  const progress: number[] = [];
  const fetched = await fetchBlob(
    fetchOptions(env, dir.path, { onProgress: (bytes) => progress.push(bytes) }),
  );
  await assertStored(fetched, env);
  const ranges = blobRanges(env.registry);
  assert.equal(ranges.length, 2);
  assert.match(ranges[1] ?? "", /^bytes=[1-9]\d*-$/, "the resume was asked for");
  assert.ok(fetched.downloaded > SIZE, "the first bytes came twice");
  assert.ok(progress.includes(0), "progress went back to 0 when the file restarted");
});

Deno.test("a second run continues from the .partial file an earlier run left", async () => {
  await using env = setup();
  await using dir = await tempDir();
  const paths = stagingPaths(dir.path, env.digest);
  await Deno.mkdir(join(dir.path, "blobs", "sha256"), { recursive: true });
  await Deno.writeFile(paths.partial, env.data.slice(0, 200_000));
  const fetched = await fetchBlob(fetchOptions(env, dir.path));
  await assertStored(fetched, env);
  assert.equal(fetched.resumedFrom, 200_000);
  assert.equal(fetched.downloaded, SIZE - 200_000);
  assert.deepEqual(blobRanges(env.registry), ["bytes=200000-"]);
});

Deno.test("an aborted download keeps its .partial file for the next run", async () => {
  await using env = setup({ faults: firstGet({ type: "stall-response", afterBytes: CUT_AT }) });
  await using dir = await tempDir();
  const controller = new AbortController();
  const reason = new DOMException("stopped by the test", "AbortError");
  await assert.rejects(
    fetchBlob(fetchOptions(env, dir.path, {
      signal: controller.signal,
      onProgress: (bytes) => {
        if (bytes >= CUT_AT) controller.abort(reason);
      },
    })),
    (error) => error === reason,
  );
  const partial = stagingPaths(dir.path, env.digest).partial;
  assert.equal((await Deno.stat(partial)).size, CUT_AT);
  env.registry.faults = undefined;
  env.registry.resetStats();
  const fetched = await fetchBlob(fetchOptions(env, dir.path));
  await assertStored(fetched, env);
  assert.equal(fetched.resumedFrom, CUT_AT);
  assert.deepEqual(blobRanges(env.registry), [`bytes=${CUT_AT}-`]);
});

Deno.test("bytes that don't match the digest fail with exit 7 and leave no file", async () => {
  await using env = setup();
  await using dir = await tempDir();
  const stored = env.registry.blob(env.digest);
  assert.ok(stored !== undefined);
  stored[1234] = (stored[1234] ?? 0) ^ 0xff;
  const paths = stagingPaths(dir.path, env.digest);
  await assert.rejects(fetchBlob(fetchOptions(env, dir.path)), (error) => {
    assert.ok(error instanceof PusherError);
    assert.equal(error.exitCode, 7);
    assert.match(error.message, /failed verification/);
    return true;
  });
  assert.equal(await exists(paths.partial), false);
  assert.equal(await exists(paths.complete), false);
});

Deno.test("a corrupt .partial from an earlier run fails verification and is removed", async () => {
  await using env = setup();
  await using dir = await tempDir();
  const paths = stagingPaths(dir.path, env.digest);
  await Deno.mkdir(join(dir.path, "blobs", "sha256"), { recursive: true });
  await Deno.writeFile(paths.partial, bytesOf(1000, 99));
  await assert.rejects(
    fetchBlob(fetchOptions(env, dir.path)),
    (error) => error instanceof PusherError && error.kind === "verify",
  );
  assert.equal(await exists(paths.partial), false);
});

Deno.test("a whole blob left as .partial (stopped before the rename) is finished", async () => {
  await using env = setup();
  await using dir = await tempDir();
  const paths = stagingPaths(dir.path, env.digest);
  await Deno.mkdir(join(dir.path, "blobs", "sha256"), { recursive: true });
  await Deno.writeFile(paths.partial, env.data);
  const withSize = await fetchBlob(fetchOptions(env, dir.path));
  await assertStored(withSize, env);
  assert.equal(withSize.requests, 0);

  // Without a known size the ranged GET asks for nothing (416): the file on disk is checked.
  await Deno.rename(paths.complete, paths.partial);
  const options = fetchOptions(env, dir.path);
  delete options.size;
  const withoutSize = await fetchBlob(options);
  await assertStored(withoutSize, env);
  assert.deepEqual(blobRanges(env.registry), [`bytes=${SIZE}-`]);
});

Deno.test("a blob already in the staging directory is not downloaded again", async () => {
  await using env = setup();
  await using dir = await tempDir();
  await fetchBlob(fetchOptions(env, dir.path));
  env.registry.resetStats();
  const again = await fetchBlob(fetchOptions(env, dir.path));
  await assertStored(again, env);
  assert.equal(again.requests, 0);
  assert.equal(env.registry.log.length, 0);
});

Deno.test("a 429 on a blob GET waits the Retry-After the registry asked for", async () => {
  await using env = setup({
    faults: firstGet({ type: "status", status: 429, headers: { "Retry-After": "7" } }),
  });
  await using dir = await tempDir();
  const waits: number[] = [];
  const fetched = await fetchBlob(fetchOptions(env, dir.path, {
    retry: {
      attempts: 3,
      baseDelayMs: 1,
      maxDelayMs: 5,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    },
  }));
  await assertStored(fetched, env);
  assert.deepEqual(waits, [7_000]);
  assert.deepEqual(blobRanges(env.registry), ["-", "-"]);
});
