/**
 * The tests' one way to get a temporary directory. `await using dir = await tempDir();` leaves
 * nothing behind in the system temp directory, whether the test passes or fails; a directory that
 * outlives one scope (a registry's storage) is removed with `remove()`; one shared by the whole
 * test process (fixtures built once) with {@link tempDirUntilExit}.
 *
 * @module
 */

/** A temporary directory, removed with everything in it when disposed. */
export interface TempDir extends AsyncDisposable {
  /** Absolute path of the directory. */
  readonly path: string;
  /** Removes the directory and everything in it (already gone is fine). */
  remove(): Promise<void>;
}

/** Makes a temporary directory (name starting with `prefix`) that removes itself when disposed. */
export async function tempDir(prefix = "pusher-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  const remove = (): Promise<void> => Deno.remove(path, { recursive: true }).catch(() => {});
  return { path, remove, [Symbol.asyncDispose]: remove };
}

/**
 * Makes a temporary directory (name starting with `prefix`) that is removed when the test process
 * exits, and returns its path.
 */
export async function tempDirUntilExit(prefix = "pusher-test-"): Promise<string> {
  const path = await Deno.makeTempDir({ prefix });
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(path, { recursive: true });
    } catch {
      // Already gone.
    }
  });
  return path;
}

/**
 * Writes `bytes` to a file called `name` in a fresh temporary directory, runs `body` with the
 * file's path, and removes the directory afterwards.
 */
export async function withTempFile<T>(
  name: string,
  bytes: Uint8Array,
  body: (path: string) => Promise<T>,
): Promise<T> {
  await using dir = await tempDir();
  const path = `${dir.path}/${name}`;
  await Deno.writeFile(path, bytes);
  return await body(path);
}
