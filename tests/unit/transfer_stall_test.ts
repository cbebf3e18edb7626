import assert from "node:assert/strict";
import { FakeClock } from "../helpers/fake_clock.ts";
import { PusherError } from "../../lib/errors.ts";
import { StallWatchdog } from "../../lib/transfer/stall.ts";

Deno.test("stall: aborts after the timeout without activity, with a retryable network error", () => {
  const clock = new FakeClock();
  const controller = new AbortController();
  new StallWatchdog({ timeoutMs: 30_000, controller, clock, label: "upload of sha256:abc" });
  clock.advance(29_999);
  assert.equal(controller.signal.aborted, false);
  clock.advance(1);
  assert.equal(controller.signal.aborted, true);
  const reason = controller.signal.reason;
  assert.ok(reason instanceof PusherError);
  assert.equal(reason.kind, "network");
  assert.match(reason.message, /upload of sha256:abc stalled: no data moved for 30 s/);
  assert.equal((reason as PusherError & { retryable?: boolean }).retryable, true);
  assert.equal(clock.timers.size, 0);
});

Deno.test("stall: activity pushes the deadline back from the last touch", () => {
  const clock = new FakeClock();
  const controller = new AbortController();
  const watchdog = new StallWatchdog({ timeoutMs: 1000, controller, clock });
  for (let step = 0; step < 20; step++) {
    clock.advance(600);
    watchdog.touch();
  }
  assert.equal(controller.signal.aborted, false);
  assert.equal(clock.timers.size, 1, "one timer, re-armed only when it fires");
  clock.advance(999);
  assert.equal(controller.signal.aborted, false);
  clock.advance(1);
  assert.equal(controller.signal.aborted, true);
});

Deno.test("stall: stop and an abort from elsewhere clear the timer", () => {
  const clock = new FakeClock();
  const stopped = new AbortController();
  new StallWatchdog({ timeoutMs: 100, controller: stopped, clock }).stop();
  clock.advance(1000);
  assert.equal(stopped.signal.aborted, false);

  const other = new AbortController();
  new StallWatchdog({ timeoutMs: 100, controller: other, clock });
  other.abort(new Error("user cancelled"));
  assert.equal(clock.timers.size, 0);
  assert.match(String(other.signal.reason), /user cancelled/);
});

Deno.test("stall: works on real timers", async () => {
  const controller = new AbortController();
  new StallWatchdog({ timeoutMs: 20, controller });
  await new Promise((resolve) => controller.signal.addEventListener("abort", resolve));
  assert.ok(controller.signal.reason instanceof PusherError);
});
