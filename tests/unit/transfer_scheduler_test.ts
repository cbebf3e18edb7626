import assert from "node:assert/strict";
import { schedule, type Task } from "../../lib/transfer/scheduler.ts";

/** A task the test finishes by hand, recording when it starts. */
interface Manual {
  task: Task<string>;
  started: boolean;
  signal: AbortSignal | undefined;
  succeed(): void;
  fail(error: unknown): void;
}

function manual(name: string, weight: number, starts: string[]): Manual {
  let succeed!: () => void;
  let fail!: (error: unknown) => void;
  const entry: Manual = {
    started: false,
    signal: undefined,
    succeed: () => succeed(),
    fail: (error) => fail(error),
    task: {
      weight,
      run: (signal) => {
        entry.started = true;
        entry.signal = signal;
        starts.push(name);
        return new Promise<string>((resolve, reject) => {
          succeed = () => resolve(name);
          fail = reject;
        });
      },
    },
  };
  return entry;
}

async function settle(): Promise<void> {
  for (let round = 0; round < 10; round++) await Promise.resolve();
}

Deno.test("scheduler: starts the largest first and fills freed slots in weight order", async () => {
  const starts: string[] = [];
  const tasks = [
    manual("small", 10, starts),
    manual("huge", 1000, starts),
    manual("tiny", 1, starts),
    manual("medium", 100, starts),
    manual("small-2", 10, starts),
  ];
  const done = schedule(tasks.map((entry) => entry.task), 2);
  await settle();
  assert.deepEqual(starts, ["huge", "medium"]);
  tasks[3]?.succeed(); // medium
  await settle();
  assert.deepEqual(starts, ["huge", "medium", "small"]);
  tasks[0]?.succeed(); // small
  await settle();
  assert.deepEqual(starts, ["huge", "medium", "small", "small-2"], "ties keep input order");
  tasks[4]?.succeed();
  await settle();
  assert.deepEqual(starts, ["huge", "medium", "small", "small-2", "tiny"]);
  tasks[2]?.succeed();
  tasks[1]?.succeed();
  assert.deepEqual(
    await done,
    ["small", "huge", "tiny", "medium", "small-2"],
    "results in input order",
  );
});

Deno.test("scheduler: never runs more than the limit at once", async () => {
  let running = 0;
  let peak = 0;
  const tasks: Task<number>[] = Array.from({ length: 20 }, (_, index) => ({
    weight: index % 7,
    run: async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 1 + (index % 3)));
      running--;
      return index;
    },
  }));
  const results = await schedule(tasks, 3);
  assert.deepEqual(results, Array.from({ length: 20 }, (_, index) => index));
  assert.equal(peak, 3);
  assert.deepEqual(await schedule([], 4), []);
});

Deno.test("scheduler: after a failure nothing new starts, running tasks are aborted and awaited", async () => {
  const starts: string[] = [];
  const tasks = [
    manual("a", 50, starts),
    manual("b", 40, starts),
    manual("c", 30, starts),
    manual("d", 20, starts),
  ];
  let settled = false;
  const done = schedule(tasks.map((entry) => entry.task), 2).finally(() => settled = true);
  await settle();
  assert.deepEqual(starts, ["a", "b"]);
  const failure = new Error("upload of b failed");
  tasks[1]?.fail(failure);
  await settle();
  assert.deepEqual(starts, ["a", "b"], "no new task after the failure");
  assert.equal(tasks[0]?.signal?.aborted, true);
  assert.equal(tasks[0]?.signal?.reason, failure);
  assert.equal(settled, false, "waits for the running task");
  tasks[0]?.fail(new Error("aborted a"));
  await assert.rejects(done, (error: unknown) => error === failure);
  assert.equal(tasks[2]?.started, false);
  assert.equal(tasks[3]?.started, false);
});

Deno.test("scheduler: a task that throws synchronously fails the schedule", async () => {
  const tasks: Task<number>[] = [
    { weight: 1, run: () => Promise.resolve(1) },
    {
      weight: 2,
      run: () => {
        throw new Error("bad task");
      },
    },
  ];
  await assert.rejects(schedule(tasks, 1), /bad task/);
});

Deno.test("scheduler: an outside abort stops starting, aborts running tasks and rejects with the reason", async () => {
  const starts: string[] = [];
  const tasks = [manual("a", 2, starts), manual("b", 1, starts)];
  const controller = new AbortController();
  const done = schedule(tasks.map((entry) => entry.task), 1, controller.signal);
  await settle();
  const reason = new Error("interrupted");
  controller.abort(reason);
  assert.equal(tasks[0]?.signal?.reason, reason);
  tasks[0]?.succeed();
  await assert.rejects(done, (error: unknown) => error === reason);
  assert.deepEqual(starts, ["a"]);

  let ran = false;
  await assert.rejects(
    schedule([{ weight: 1, run: () => Promise.resolve(ran = true) }], 1, AbortSignal.abort()),
    { name: "AbortError" },
  );
  assert.equal(ran, false);
});
