import assert from "node:assert/strict";
import {
  backoffDelay,
  FailureStreak,
  isRetryable,
  MAX_RETRY_AFTER_MS,
  OUTAGE_BUDGET_MS,
  OUTAGE_MAX_DELAY_MS,
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

/** A retryable error that says the server is out (refused connection, 429, 502–504). */
function outage(message: string, retryAfterMs?: number): Error {
  return Object.assign(retryable(message, retryAfterMs), { outage: true });
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

Deno.test("retry: an outage is retried past `attempts` for the budget, with the short cap", async () => {
  const time = new FakeTime();
  const delays: number[] = [];
  let calls = 0;
  const done = withRetry(() => {
    calls++;
    return Promise.reject(outage(`refused ${calls}`));
  }, {
    attempts: 1,
    baseDelayMs: 500,
    maxDelayMs: 30_000,
    sleep: time.sleep,
    now: () => time.now,
    random: () => 0.999,
    onRetry: (info) => delays.push(info.delayMs),
  });
  let rejected = false;
  done.catch(() => rejected = true);
  await settle();
  while (!rejected) await time.advance(OUTAGE_MAX_DELAY_MS);
  await assert.rejects(done, /refused/);
  assert.ok(calls > 40, `${calls} attempts in the budget`);
  assert.ok(delays.every((delay) => delay < OUTAGE_MAX_DELAY_MS), `delays ${delays}`);
  assert.deepEqual(delays.slice(0, 3), [499, 999, 1998]);
  assert.ok(time.now >= OUTAGE_BUDGET_MS && time.now < OUTAGE_BUDGET_MS + 2 * OUTAGE_MAX_DELAY_MS);
});

Deno.test("retry: after an outage a counted failure waits its own first backoff, then lands", async () => {
  const slept: number[] = [];
  const failures = [
    ...Array.from({ length: 30 }, (_, index) => outage(`503 #${index}`)),
    retryable("connection reset"),
    outage("429", 1000),
  ];
  let calls = 0;
  const result = await withRetry(() => {
    const failure = failures[calls++];
    return failure === undefined ? Promise.resolve(calls) : Promise.reject(failure);
  }, {
    attempts: 1,
    baseDelayMs: 500,
    maxDelayMs: 30_000,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
    random: () => 0.5,
  });
  assert.equal(result, failures.length + 1);
  // The reset is the first counted failure: half of the 500 ms base, not of the 30 s cap.
  assert.equal(slept[30], 250);
  assert.equal(slept[31], 1000, "Retry-After of an outage is honoured");
});

Deno.test("retry: the waits alone use up the outage budget when the clock does not move", () => {
  const streak = new FailureStreak({
    attempts: 3,
    baseDelayMs: 100,
    maxDelayMs: 30_000,
    outageBudgetMs: 1000,
    outageMaxDelayMs: 300,
    now: () => 0,
    random: () => 0.999,
  });
  const waits: (number | undefined)[] = [];
  for (let index = 0; index < 7; index++) waits.push(streak.next(outage("503")));
  assert.deepEqual(waits, [99, 199, 299, 299, 299, undefined, undefined]);
  streak.reset();
  assert.equal(streak.next(outage("503")), 99, "progress starts a new streak");
  assert.equal(streak.failures, 1);
});

Deno.test("retry: counted failures run out at `attempts` whatever the outages between them", () => {
  const streak = new FailureStreak({
    attempts: 2,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    random: () => 0.5,
  });
  assert.equal(streak.next(retryable("stall")), 50);
  assert.equal(streak.next(outage("refused")), 50);
  assert.equal(streak.next(retryable("reset")), 100);
  assert.equal(streak.next(outage("refused")), 100);
  assert.equal(streak.next(retryable("reset")), undefined);
  assert.equal(streak.failures, 5);
});

Deno.test("retry: attempts 0 turns retrying off, outages included", async () => {
  let calls = 0;
  await assert.rejects(
    withRetry(() => {
      calls++;
      return Promise.reject(outage("refused"));
    }, { attempts: 0, baseDelayMs: 1, maxDelayMs: 1 }),
    /refused/,
  );
  assert.equal(calls, 1);
});
