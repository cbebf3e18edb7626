/**
 * Blobs in flight across the runs of one operation (the images of a sync): a run claims a blob
 * of a target registry before it looks for it there, and holds the claim until the blob is in
 * its repository. Another run wanting the same blob in the same registry waits for the claim,
 * then finds it (same repository) or mounts it from the repository that got it — so two images
 * that share a layer never upload it twice at once. Claims are taken one at a time per blob and
 * granted in the order asked.
 *
 * @module
 */

/** A held claim on one blob of one registry. */
export interface BlobClaim {
  /** A repository of this registry that got the blob earlier in the operation, if any. */
  readonly landedIn: string | undefined;
  /** Records that the blob is now in `repository` (later claimants may mount it from there). */
  landed(repository: string): void;
  /** Lets the next claimant go on. Call it once, in a `finally`. */
  release(): void;
}

/** The per-operation table of blobs in flight, keyed by registry and digest. */
export class BlobClaims {
  /** Per key: resolves when the last claim asked so far is released. */
  readonly #tails = new Map<string, Promise<void>>();
  /** Per key: the repositories that got the blob, most recent last. */
  readonly #homes = new Map<string, string[]>();

  /**
   * Waits until no other run holds `digest` of `registry` (e.g. the API base URL), then claims it.
   * Rejects with the signal's reason when it aborts while waiting (the claim is given up).
   */
  async claim(registry: string, digest: string, signal?: AbortSignal): Promise<BlobClaim> {
    const key = `${registry} ${digest}`;
    const before = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = before.then(() => mine);
    this.#tails.set(key, tail);
    let released = false;
    const releaseOnce = (): void => {
      if (released) return;
      released = true;
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
    try {
      await abortable(before, signal);
    } catch (error) {
      releaseOnce();
      throw error;
    }
    const homes = this.#homes;
    return {
      landedIn: homes.get(key)?.at(-1),
      landed(repository: string): void {
        const list = homes.get(key) ?? [];
        if (!list.includes(repository)) list.push(repository);
        homes.set(key, list);
      },
      release: releaseOnce,
    };
  }
}

/** `promise`, or a rejection with `signal`'s reason when it aborts first. */
function abortable(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
