/**
 * `deno task compile`: cross-compiles standalone docker-image-pusher binaries with
 * `deno compile` and writes a `SHA256SUMS` file beside them.
 *
 * ```sh
 * deno task compile                                   # all five targets into dist/
 * deno task compile --target x86_64-unknown-linux-gnu # one target (repeat --target for more)
 * deno task compile --out build/                      # another output directory
 * deno task compile --dry-run                         # print the deno compile commands only
 * ```
 *
 * Targets: x86_64 and aarch64 Linux (glibc), x86_64 and aarch64 macOS, x86_64 Windows.
 *
 * Asset names are `docker-image-pusher-<target>`, plus `.exe` on Windows — for example
 * `docker-image-pusher-aarch64-apple-darwin`, `docker-image-pusher-x86_64-pc-windows-msvc.exe`.
 * The version is deliberately not part of the name: a GitHub release is already tagged with it,
 * `--version` prints it, and a stable name lets the installers fetch
 * `releases/latest/download/<asset>` without first resolving which version "latest" is.
 *
 * `SHA256SUMS` (in `sha256sum` format, so `sha256sum -c SHA256SUMS` checks it) lists the
 * binaries built by this run. Commands run in the project root, and `--dry-run` prints them
 * relative to it.
 *
 * `deno compile` needs a `denort` runtime for each target from Deno's download server. Where
 * that server is unreachable the script stops with one line saying so: release binaries are
 * built by `.github/workflows/release.yml` on a connected runner.
 *
 * Exit codes: 0 built (or printed), 2 bad arguments, 5 the runtime download failed, 1 any other
 * `deno compile` failure (its output is printed).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import denoConfig from "../deno.json" with { type: "json" };
import { PusherError } from "../lib/errors.ts";

/** A platform `deno compile` builds for. */
export type CompileTarget =
  | "x86_64-unknown-linux-gnu"
  | "aarch64-unknown-linux-gnu"
  | "x86_64-apple-darwin"
  | "aarch64-apple-darwin"
  | "x86_64-pc-windows-msvc";

/** Every target a release ships, in build order. */
export const TARGETS: readonly CompileTarget[] = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

/** The installed command's name and the prefix of every asset name. */
export const BINARY_NAME = "docker-image-pusher";

/** Name of the checksum file written beside the binaries. */
export const CHECKSUM_FILE = "SHA256SUMS";

/** The program compiled, relative to the project root. */
export const ENTRY_POINT = "main.ts";

/**
 * The compression Web Worker, relative to the project root. It is loaded with
 * `new URL("./compress_worker.ts", import.meta.url)`, which static analysis does not follow, so
 * it must be embedded with `--include`.
 */
export const WORKER_SCRIPT = "lib/pipeline/compress_worker.ts";

/** The permissions baked into every binary: only what a push needs. */
export const RUNTIME_PERMISSIONS: readonly string[] = [
  // Any registry the user names, on any host and port.
  "--allow-net",
  // Image archives anywhere, docker/podman config files, CA certificates, the cache directory.
  "--allow-read",
  // Only the cache directory is written, but its path is per user ($XDG_CACHE_HOME, ~/.cache,
  // %LOCALAPPDATA%, DOCKER_PUSHER_CACHE_DIR) and `deno compile` fixes permission paths when the
  // binary is built, on another machine, so the permission cannot be narrowed to it.
  "--allow-write",
  // DOCKER_PUSHER_* flag defaults, HOME/XDG_*/DOCKER_CONFIG/REGISTRY_AUTH_FILE, proxy variables.
  "--allow-env",
  // Credential helpers (`docker-credential-<name>`); the names come from the user's docker
  // config and `--allow-run` only takes exact program names, so it cannot be narrowed either.
  "--allow-run",
  // `node:https` (the `--skip-tls` transport) loads the system CA store, which Deno guards as
  // sys access "ca"; Deno 2.9.6 rejects `--allow-sys=ca` as an unknown descriptor, so it has to
  // be the whole permission. (`navigator.hardwareConcurrency` needs no permission.)
  "--allow-sys",
];

/**
 * The V8 setting baked into every binary: semi-spaces (the two halves of each isolate's young
 * generation) of at most 1 MiB instead of V8's default growth to 8–16 MiB. The tool's garbage is
 * short-lived and small (block outputs are freed by transfer, see `lib/pipeline/compress_block.ts`),
 * so larger semi-spaces only hold memory. Peak RSS of the 4.36 GB gzip push of
 * `deno task bench --large`: 150–161 MB without it, 138–144 MB with it, in the same time
 * (2026-11-28, 2 cores). `deno task push` and the benchmark run with it too.
 */
export const RUNTIME_V8_FLAGS = "--v8-flags=--max-semi-space-size=1";

/** Every runtime flag baked into the binaries: {@link RUNTIME_PERMISSIONS} and {@link RUNTIME_V8_FLAGS}. */
export const RUNTIME_FLAGS: readonly string[] = [...RUNTIME_PERMISSIONS, RUNTIME_V8_FLAGS];

/** What a run of the script should do. */
export interface CompileOptions {
  /** Targets to build, without duplicates, in {@link TARGETS} order. */
  targets: CompileTarget[];
  /** Output directory, absolute. */
  outDir: string;
  /** Print the commands instead of running them. */
  dryRun: boolean;
  /** Print usage and exit. */
  help: boolean;
}

/** The usage text printed by `--help`. */
export const USAGE = `usage: deno task compile [--target TARGET]... [--out DIR] [--dry-run]

Builds docker-image-pusher ${denoConfig.version} binaries and ${CHECKSUM_FILE} into DIR
(default dist/).

  --target TARGET  build only this target (repeatable); one of:
                   ${TARGETS.join("\n                   ")}
  --out DIR        output directory (default dist/ in the project root)
  --dry-run        print the deno compile commands, build nothing
  -h, --help       show this help`;

/** The project root: the directory above `scripts/`. */
export const PROJECT_ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/** Whether `value` names one of the {@link TARGETS}. */
export function isCompileTarget(value: string): value is CompileTarget {
  return (TARGETS as readonly string[]).includes(value);
}

/** The file name of the binary for `target`: `docker-image-pusher-<target>[.exe]`. */
export function assetName(target: CompileTarget): string {
  const suffix = target.endsWith("-windows-msvc") ? ".exe" : "";
  return `${BINARY_NAME}-${target}${suffix}`;
}

/**
 * Parses the script's arguments. Relative `--out` paths are resolved against `cwd`; the default
 * output directory is `dist/` in the project root.
 */
export function parseCompileOptions(args: readonly string[], cwd: string): CompileOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        target: { type: "string", multiple: true },
        out: { type: "string" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new PusherError("usage", error instanceof Error ? error.message : String(error), {
      hint: "run `deno task compile --help` for the options",
    });
  }
  const requested = parsed.values.target ?? [...TARGETS];
  for (const target of requested) {
    if (!isCompileTarget(target)) {
      throw new PusherError("usage", `unknown --target '${target}'`, {
        hint: `choose one of: ${TARGETS.join(", ")}`,
      });
    }
  }
  const outDir = parsed.values.out === undefined
    ? join(PROJECT_ROOT, "dist")
    : resolve(cwd, parsed.values.out);
  return {
    targets: TARGETS.filter((target) => requested.includes(target)),
    outDir,
    dryRun: parsed.values["dry-run"] ?? false,
    help: parsed.values.help ?? false,
  };
}

/**
 * The `deno` arguments that build `target` into `outDir`. Paths inside the project root are
 * written relative to it (the command runs there); others stay absolute.
 */
export function compileArgs(
  target: CompileTarget,
  outDir: string,
  root: string = PROJECT_ROOT,
): string[] {
  const output = join(outDir, assetName(target));
  const fromRoot = relative(root, output);
  const outputArg = fromRoot.startsWith("..") || isAbsolute(fromRoot) ? output : fromRoot;
  return [
    "compile",
    ...RUNTIME_FLAGS,
    "--include",
    WORKER_SCRIPT,
    "--target",
    target,
    "--output",
    outputArg,
    ENTRY_POINT,
  ];
}

/** One command line as a POSIX shell would need it typed: arguments quoted when needed. */
export function formatCommand(program: string, args: readonly string[]): string {
  const quote = (word: string): string =>
    /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
  return [program, ...args].map(quote).join(" ");
}

/** One line of a checksum file. */
export interface ChecksumEntry {
  /** File name as listed (no directory). */
  name: string;
  /** SHA-256 of the file, lowercase hex. */
  sha256: string;
}

/**
 * The text of a `SHA256SUMS` file in `sha256sum` format: `<hex>  <name>` per line, sorted by
 * name, ending with a newline.
 */
export function checksumFileText(entries: readonly ChecksumEntry[]): string {
  for (const entry of entries) {
    if (!/^[0-9a-f]{64}$/.test(entry.sha256)) {
      throw new PusherError("internal", `not a SHA-256 hex digest for ${entry.name}`);
    }
    if (entry.name === "" || /[\\/\n]/.test(entry.name)) {
      throw new PusherError("internal", `not a plain file name: '${entry.name}'`);
    }
  }
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return sorted.map((entry) => `${entry.sha256}  ${entry.name}\n`).join("");
}

/** The SHA-256 of a file, lowercase hex, read in chunks. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1 << 20);
  for (;;) {
    const read = await file.read(buffer);
    if (read === null) break;
    hash.update(buffer.subarray(0, read));
  }
  return hash.digest("hex");
}

/**
 * Recognises `deno compile` failing to download its `denort` runtime (it reports
 * "Setting up base binary." and "error sending request for url (…/denort-<target>.zip)").
 * Returns the runtime's URL (or `undefined` inside when it is not printed), or `undefined` when
 * the failure was something else.
 */
export function runtimeDownloadFailure(stderr: string): { url: string | undefined } | undefined {
  const url = stderr.match(/https?:\/\/[^\s()]*denort-[\w.-]+\.zip/)?.[0];
  if (url === undefined && !stderr.includes("Setting up base binary")) return undefined;
  if (!/error sending request|dns error|connect|timed out/i.test(stderr)) return undefined;
  return { url };
}

/** The one-line message for a failed runtime download. */
export function runtimeDownloadMessage(url: string | undefined): string {
  return `deno compile's runtime download failed (${url ?? "the denort runtime"} is ` +
    "unreachable from here), so no binary was built; release binaries are built by the release " +
    "workflow (.github/workflows/release.yml) on a connected runner, and " +
    "`deno task compile --dry-run` prints the build commands";
}

async function build(target: CompileTarget, outDir: string): Promise<void> {
  const args = compileArgs(target, outDir);
  console.error(`compiling ${BINARY_NAME} ${denoConfig.version} for ${target}`);
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: PROJECT_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (result.success) return;
  const stderr = new TextDecoder().decode(result.stderr);
  const download = runtimeDownloadFailure(stderr);
  if (download) throw new PusherError("network", runtimeDownloadMessage(download.url));
  const stdout = new TextDecoder().decode(result.stdout);
  if (stdout) console.log(stdout.trimEnd());
  console.error(stderr.trimEnd());
  throw new PusherError(
    "internal",
    `deno compile failed for ${target} (exit code ${result.code}); its output is above`,
  );
}

async function main(args: readonly string[]): Promise<number> {
  const options = parseCompileOptions(args, Deno.cwd());
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  if (options.dryRun) {
    for (const target of options.targets) {
      console.log(formatCommand("deno", compileArgs(target, options.outDir)));
    }
    return 0;
  }
  await Deno.mkdir(options.outDir, { recursive: true });
  const entries: ChecksumEntry[] = [];
  for (const target of options.targets) {
    await build(target, options.outDir);
    const name = assetName(target);
    const path = join(options.outDir, name);
    const sha256 = await sha256File(path);
    entries.push({ name, sha256 });
    const size = (await Deno.stat(path)).size;
    console.log(`${path} (${(size / 2 ** 20).toFixed(1)} MiB) sha256:${sha256}`);
  }
  const checksumPath = join(options.outDir, CHECKSUM_FILE);
  await Deno.writeTextFile(checksumPath, checksumFileText(entries));
  console.log(checksumPath);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (!(error instanceof PusherError)) throw error;
    console.error(`error: ${error.message}`);
    if (error.hint) console.error(`hint: ${error.hint}`);
    Deno.exit(error.exitCode);
  }
}
