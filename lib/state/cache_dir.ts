/**
 * Where the tool keeps its small state files: `$XDG_CACHE_HOME/docker-image-pusher` (or
 * `~/.cache/docker-image-pusher`) on Linux and macOS, `%LOCALAPPDATA%\docker-image-pusher` on
 * Windows. `DOCKER_PUSHER_CACHE_DIR` overrides it.
 *
 * @module
 */

import { join } from "node:path";

/** The cache directory for this user (not created here). */
export function cacheDirectory(
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): string {
  const override = env("DOCKER_PUSHER_CACHE_DIR");
  if (override) return override;
  if (Deno.build.os === "windows") {
    const local = env("LOCALAPPDATA") ?? join(env("USERPROFILE") ?? ".", "AppData", "Local");
    return join(local, "docker-image-pusher");
  }
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "docker-image-pusher");
  return join(env("HOME") ?? ".", ".cache", "docker-image-pusher");
}

/** Writes a file atomically (a temporary file beside it, then a rename), readable by its owner only. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temporary = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.writeTextFile(temporary, text, { mode: 0o600 });
  try {
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}
