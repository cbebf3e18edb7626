/**
 * A fixed number of slots for work that arrives one piece at a time (a sync's transfers, each
 * handed over when its line's check finds it changed): at most `size` run at once, the others
 * wait their turn in the order they came.
 *
 * @module
 */

/** At most `size` tasks at once; the rest wait in arrival order. */
export class Slots {
  readonly #size: number;
  readonly #waiting: Array<() => void> = [];
  #busy = 0;

  /** Slots for `size` tasks at once (at least one). */
  constructor(size: number) {
    this.#size = Math.max(1, Math.floor(size));
  }

  /**
   * Runs `task` once a slot is free and resolves with its result. A task whose turn comes after
   * `signal` aborted is not started: the call rejects with the signal's reason.
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#take();
    try {
      signal?.throwIfAborted();
      return await task();
    } finally {
      this.#give();
    }
  }

  /** Waits for a free slot and holds it. */
  #take(): Promise<void> {
    if (this.#busy < this.#size) {
      this.#busy++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Hands the slot to the next waiting task, or frees it. */
  #give(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#busy--;
  }
}
