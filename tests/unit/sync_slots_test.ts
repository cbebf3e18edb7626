/**
 * The slots of a sync's transfers: never more tasks at once than slots, waiting tasks start in
 * the order they came, and a task whose turn comes after the run was aborted never starts.
 */

import assert from "node:assert/strict";
import { Slots } from "../../lib/sync/slots.ts";

/** A task that runs until released, recording when it started. */
function gate(started: string[], name: string): { task: () => Promise<string>; open: () => void } {
  let open = (): void => {};
  const released = new Promise<void>((resolve) => {
    open = resolve;
  });
  return {
    task: async () => {
      started.push(name);
      await released;
      return name;
    },
    open: () => open(),
  };
}

Deno.test("slots run at most their number of tasks at once, the waiting ones in arrival order", async () => {
  const slots = new Slots(2);
  const started: string[] = [];
  const gates = ["a", "b", "c", "d"].map((name) => gate(started, name));
  const results = gates.map((one) => slots.run(one.task));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(started, ["a", "b"], "two slots: two tasks running");
  gates[1]?.open();
  await results[1];
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(started, ["a", "b", "c"], "a freed slot goes to the first waiting task");
  for (const one of gates) one.open();
  assert.deepEqual(await Promise.all(results), ["a", "b", "c", "d"]);
});

Deno.test("a task whose turn comes after the abort is not started; a failing task frees its slot", async () => {
  const slots = new Slots(1);
  const started: string[] = [];
  const first = gate(started, "first");
  const controller = new AbortController();
  const running = slots.run(first.task, controller.signal);
  const waiting = slots.run(() => {
    started.push("second");
    return Promise.resolve("second");
  }, controller.signal);
  const refused = assert.rejects(waiting, /stopped/);
  await new Promise((resolve) => setTimeout(resolve, 0));
  controller.abort(new Error("stopped"));
  first.open();
  assert.equal(await running, "first");
  await refused;
  assert.deepEqual(started, ["first"]);
  await assert.rejects(slots.run(() => Promise.reject(new Error("broke"))), /broke/);
  assert.equal(await slots.run(() => Promise.resolve("after")), "after", "the slot was freed");
});
