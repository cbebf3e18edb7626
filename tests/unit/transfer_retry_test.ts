import assert from "node:assert/strict";
import {
  backoffDelay,
  isRetryable,
  MAX_RETRY_AFTER_MS,
  type RetryInfo,
  sleep,
  withRetry,
} from "../../lib/transfer/retry.ts";

/** Fake time: `sleep` waits until `advance` moves the clock past its deadline. */
class FakeTime {
  now = 0;
  readonly #waiting: { until: number; resolve: () => void }[] = [];

  /** An injectable sleep that honours abort like the real one. */
  readonly sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const entry = { until: this.now + ms, resolve };
      this.#waiting.push(entry);
      signal?.addEventListener("abort", () => {
        this.#waiting.splice(this.#waiting.indexOf(entry), 1);
        reject(signal.reason);
      }, { once: true });
    });

  /** Number of sleeps not yet over. */
  get pending(): number {
    return this.#waiting.length;
  }

  /** Moves the clock, waking sleeps whose time came, and lets their continuations run. */
  async advance(ms: number): Promise<void> {
    this.now += ms;
    for (const entry of this.#waiting.filter((candidate) => candidate.until <= this.now)) {
      this.#waiting.splice(this.#waiting.indexOf(entry), 1);
      entry.resolve();
    }
    await settle();
  }
}

/** Lets queued promise continuations run. */
async function settle(): Promise<void> {
  for (let round = 0; round < 10; round++) await Promise.resolve();
}

function retryable(message: string, retryAfterMs?: number): Error {
  return Object.assign(new Error(message), {
    retryable: true,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

Deno.test("retry: waits with exponential backoff in fake time until the operation succeeds", async () => {
  const time = new FakeTime();
  const calls: number[] = [];
  const infos: RetryInfo[] = [];
  const done = withRetry((attempt) => {
    calls.push(time.now);
    if (attempt < 4) return Promise.reject(retryable(`try ${attempt}`));
    return Promise.resolve(`ok after ${attempt}`);
  }, {
    attempts: 5,
    baseDelayMs: 100,
    maxDelayMs: 10_000,
    sleep: time.sleep,
    random: () => 0.5,
    onRetry: (info) => infos.push(info),
  });
  await settle();
  assert.deepEqual(calls, [0]);
  await time.advance(49);
  assert.deepEqual(calls, [0], "not before the delay is over");
  await time.advance(1);
  assert.deepEqual(calls, [0, 50]);
  await time.advance(100);
  await time.advance(200);
  assert.equal(await done, "ok after 4");
  assert.deepEqual(calls, [0, 50, 150, 350]);
  const told = infos.map(({ attempt, delayMs }) => `${attempt}@${delayMs}`);
  assert.deepEqual(told, ["2@50", "3@100", "4@200"]);
  assert.equal((infos[0]?.error as Error).message, "try 1");
});

Deno.test("retry: backoff delays grow, stay under the cap and span the full jitter range", () => {
  const ceiling = (retry: number): number => backoffDelay(retry, 100, 1000, () => 0.999999);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 10].map(ceiling), [99, 199, 399, 799, 999, 999, 999]);
  for (const retry of [1, 3, 8]) {
    assert.equal(backoffDelay(retry, 100, 1000, () => 0), 0);
  }
  for (let index = 0; index < 1000; index++) {
    const delay = backoffDelay(3, 100, 1000, Math.random);
    assert.ok(delay >= 0 && delay < 400, String(delay));
  }
});

Deno.test("retry: gives up after `attempts` retries with the last error", async () => {
  const time = new FakeTime();
  let calls = 0;
  const done = withRetry(() => Promise.reject(retryable(`failure ${++calls}`)), {
    attempts: 2,
    baseDelayMs: 10,
    maxDelayMs: 10,
    sleep: time.sleep,
    random: () => 0.99,
  });
  await settle();
  await time.advance(10);
  await time.advance(10);
  await assert.rejects(done, /failure 3/);
  assert.equal(calls, 3);
  assert.equal(time.pending, 0);
});

Deno.test("retry: errors that are not retryable pass straight through", async () => {
  const errors: unknown[] = [
    new Error("MANIFEST_INVALID"),
    Object.assign(new Error("retryable false"), { retryable: false }),
    Object.assign(new Error("retryable as a string"), { retryable: "true" }),
    "a string",
    new DOMException("aborted", "AbortError"),
  ];
  for (const error of errors) {
    let calls = 0;
    const slept: number[] = [];
    await assert.rejects(
      withRetry(() => {
        calls++;
        return Promise.reject(error);
      }, {
        attempts: 5,
        baseDelayMs: 1,
        maxDelayMs: 1,
        sleep: (ms) => {
          slept.push(ms);
          return Promise.resolve();
        },
      }),
      (thrown: unknown) => thrown === error,
    );
    assert.equal(calls, 1);
    assert.deepEqual(slept, []);
    assert.equal(isRetryable(error), false);
  }
});

Deno.test("retry: Retry-After replaces the backoff and is capped", async () => {
  const slept: number[] = [];
  let calls = 0;
  const result = await withRetry(() => {
    calls++;
    if (calls === 1) return Promise.reject(retryable("429", 30_000));
    if (calls === 2) return Promise.reject(retryable("503", 60 * 60 * 1000));
    if (calls === 3) return Promise.reject(retryable("bad header", Number.NaN));
    return Promise.resolve(calls);
  }, {
    attempts: 5,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
  });
  assert.equal(result, 4);
  // Above maxDelayMs (a server asked), capped at 10 minutes, and a NaN falls back to backoff.
  assert.deepEqual(slept, [30_000, MAX_RETRY_AFTER_MS, 200]);

  const capped: number[] = [];
  await withRetry(() => {
    if (capped.length === 0) return Promise.reject(retryable("429", 5000));
    return Promise.resolve();
  }, {
    attempts: 1,
    baseDelayMs: 1,
    maxDelayMs: 1,
    maxRetryAfterMs: 2000,
    sleep: (ms) => {
      capped.push(ms);
      return Promise.resolve();
    },
  });
  assert.deepEqual(capped, [2000]);
});

Deno.test("retry: aborting during a wait rejects at once and stops retrying", async () => {
  const time = new FakeTime();
  const controller = new AbortController();
  let calls = 0;
  const done = withRetry(() => {
    calls++;
    return Promise.reject(retryable("502"));
  }, {
    attempts: 10,
    baseDelayMs: 1000,
    maxDelayMs: 1000,
    signal: controller.signal,
    sleep: time.sleep,
    random: () => 0.5,
  });
  await settle();
  assert.equal(time.pending, 1);
  controller.abort();
  await assert.rejects(done, { name: "AbortError" });
  await time.advance(10_000);
  assert.equal(calls, 1);
});

Deno.test("retry: aborting during an attempt rejects without waiting for it", async () => {
  const controller = new AbortController();
  let finish!: () => void;
  const done = withRetry(() => new Promise<void>((resolve) => finish = resolve), {
    attempts: 3,
    baseDelayMs: 1,
    maxDelayMs: 1,
    signal: controller.signal,
  });
  await settle();
  controller.abort(new Error("user pressed Ctrl-C"));
  await assert.rejects(done, /Ctrl-C/);
  finish();

  let calls = 0;
  const aborted = AbortSignal.abort();
  await assert.rejects(
    withRetry(() => Promise.resolve(++calls), {
      attempts: 1,
      baseDelayMs: 1,
      maxDelayMs: 1,
      signal: aborted,
    }),
    { name: "AbortError" },
  );
  assert.equal(calls, 0);
});

Deno.test("retry: the real sleep waits and rejects promptly on abort", async () => {
  const started = performance.now();
  await sleep(20);
  assert.ok(performance.now() - started >= 15);

  const controller = new AbortController();
  const long = sleep(60_000, controller.signal);
  setTimeout(() => controller.abort(), 5);
  const before = performance.now();
  await assert.rejects(long, { name: "AbortError" });
  assert.ok(performance.now() - before < 1000);
  await assert.rejects(sleep(10, AbortSignal.abort()), { name: "AbortError" });
});
