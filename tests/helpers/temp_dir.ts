/**
 * A temporary directory that removes itself: `await using dir = await tempDir();` leaves nothing
 * behind in the system temp directory, whether the test passes or fails.
 *
 * @module
 */

/** A temporary directory, removed with everything in it when disposed. */
export interface TempDir extends AsyncDisposable {
  /** Absolute path of the directory. */
  readonly path: string;
}

/** Makes a temporary directory (name starting with `prefix`) that removes itself when disposed. */
export async function tempDir(prefix = "pusher-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}
