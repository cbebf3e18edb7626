/**
 * Runs the tool as a user would: `deno run main.ts …` in a child process, with its own
 * environment (no DOCKER_PUSHER_* leaking in from the test runner) and a private cache dir.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { tempDir } from "./temp_dir.ts";

/** What a run of the tool printed and returned. */
export interface CliRun {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** The repository root. */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Options of {@link runPusher}. */
export interface RunOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Bytes for stdin. */
  stdin?: Uint8Array | string;
  /** The cache directory (by default a fresh temp dir, removed after the run). */
  cacheDir?: string;
}

/** Runs `main.ts` with `args` and returns exit code and output. */
export async function runPusher(args: string[], options: RunOptions = {}): Promise<CliRun> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(Deno.env.toObject())) {
    if (!key.startsWith("DOCKER_PUSHER_")) env[key] = value;
  }
  env["NO_COLOR"] = "1";
  await using ownCache = options.cacheDir === undefined
    ? await tempDir("pusher-cache-")
    : undefined;
  env["DOCKER_PUSHER_CACHE_DIR"] = options.cacheDir ?? ownCache?.path ?? "";
  Object.assign(env, options.env ?? {});
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", `${REPO_ROOT}main.ts`, ...args],
    env,
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: REPO_ROOT,
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    const bytes = typeof options.stdin === "string"
      ? new TextEncoder().encode(options.stdin)
      : options.stdin;
    await writer.write(bytes).catch(() => {});
    await writer.close().catch(() => {});
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
