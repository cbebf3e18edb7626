/**
 * Runs weighted tasks (e.g. blob uploads weighted by bytes) with a concurrency limit, largest
 * first: the big transfers start at once and the small ones fill the slots as they free up, which
 * keeps the total time close to that of the largest task.
 *
 * @module
 */

/** One unit of work for {@link schedule}. */
export interface Task<T> {
  /** Relative size (bytes); larger tasks start earlier. */
  weight: number;
  /** Does the work; should stop promptly when `signal` aborts. */
  run: (signal: AbortSignal) => Promise<T>;
}

/**
 * Runs `tasks` at most `concurrency` at a time, in decreasing weight (ties keep their order), and
 * resolves with their results in the order of `tasks`. On the first failure, or when `signal`
 * aborts, no further task starts and the signal given to running tasks aborts (with the error, or
 * `signal`'s reason); once the running tasks have settled it rejects with that first error or
 * reason. It never leaves a task running behind it.
 */
export function schedule<T>(
  tasks: readonly Task<T>[],
  concurrency: number,
  signal?: AbortSignal,
): Promise<T[]> {
  const order = tasks.map((_, index) => index)
    .sort((a, b) => (tasks[b] as Task<T>).weight - (tasks[a] as Task<T>).weight || a - b);
  const limit = Math.max(1, Math.floor(concurrency));
  const results: T[] = new Array(tasks.length);
  const shared = new AbortController();
  let failure: { error: unknown } | undefined;
  let next = 0;
  let running = 0;

  return new Promise<T[]>((resolve, reject) => {
    const fail = (error: unknown): void => {
      if (failure !== undefined) return;
      failure = { error };
      shared.abort(error);
    };
    const finish = (): void => {
      if (running > 0) return;
      signal?.removeEventListener("abort", onAbort);
      if (failure !== undefined) reject(failure.error);
      else if (next >= order.length) resolve(results);
    };
    const onAbort = (): void => {
      fail(signal?.reason);
      finish();
    };
    const fill = (): void => {
      while (failure === undefined && running < limit && next < order.length) {
        const index = order[next++] as number;
        running++;
        let started: Promise<T>;
        try {
          started = (tasks[index] as Task<T>).run(shared.signal);
        } catch (error) {
          started = Promise.reject(error);
        }
        started.then(
          (value) => {
            results[index] = value;
          },
          fail,
        ).finally(() => {
          running--;
          fill();
          finish();
        });
      }
    };

    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    fill();
    finish();
  });
}
