/**
 * Where the tool keeps its small state files: `$XDG_CACHE_HOME/docker-image-pusher` (or
 * `~/.cache/docker-image-pusher`) on Linux and macOS, `%LOCALAPPDATA%\docker-image-pusher` on
 * Windows. `DOCKER_PUSHER_CACHE_DIR` overrides it.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { moduleLogger } from "../logging/logger.ts";

const log = moduleLogger("cache");

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

/** The file in `directory` that keeps one kind of state (`uploads`, `layers`) for `registry`. */
export function registryFilePath(directory: string, kind: string, registry: string): string {
  const key = createHash("sha256").update(registry).digest("hex").slice(0, 16);
  return join(directory, `${kind}-${key}.json`);
}

/**
 * Reads a state file written as `{ format, version: 1, registry, … }`. Returns its fields, or
 * `undefined` when it is missing — or, with a warning naming it as `what`, when it can't be read,
 * isn't JSON, is of another format or version, or belongs to another registry.
 */
export async function readRegistryFile(
  path: string,
  what: string,
  format: string,
  registry: string,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      log.warn(`cannot read the ${what} ${path}: ${String(error)}; ignoring it`);
    }
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Record<string, unknown> | null;
    if (parsed?.format !== format || parsed.version !== 1) {
      throw new Error(`not a ${what} file of this version`);
    }
    if (parsed.registry !== registry) throw new Error(`it belongs to ${parsed.registry}`);
    return parsed;
  } catch (error) {
    log.warn(`ignoring the ${what} ${path}: ${(error as Error).message}`);
    return undefined;
  }
}
