/**
 * A clock for tests of timer-driven code: its timers fire only when the test advances time.
 *
 * @module
 */

import type { Clock } from "../../lib/transfer/stall.ts";

/** A {@link Clock} whose timers fire only when {@link FakeClock.advance} is called. */
export class FakeClock implements Clock {
  /** The current time in milliseconds. */
  time = 0;
  #next = 1;
  /** Armed timers by id. */
  readonly timers: Map<number, { at: number; callback: () => void }> = new Map();

  /** The current fake time. */
  now(): number {
    return this.time;
  }

  /** Arms a timer. */
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  }

  /** Disarms a timer. */
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward, firing due timers in order (including ones they arm). */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, timer]) => timer.at <= end)
        .sort(([, a], [, b]) => a.at - b.at)[0];
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].callback();
    }
    this.time = end;
  }
}
