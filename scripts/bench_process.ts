/**
 * The processes the benchmark times: a Distribution registry it can account CPU time for, timed
 * child processes with their peak RSS (`/usr/bin/time -f`, or `VmHWM` polling where that tool is
 * missing), skopeo's blob-info cache, and the registries' own limits with curl: parallel uploads
 * (push), downloads into files (pull) and `GET`s piped into uploads (copy).
 *
 * @module
 */

import { join } from "node:path";
import type { Sample } from "./bench_report.ts";
import { distributionConfig, freePort } from "./distribution_config.ts";

const decoder = new TextDecoder();
const TIME = "/usr/bin/time";
/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux). */
const CLOCK_TICKS = 100;

/** A running registry on 127.0.0.1. */
export interface BenchRegistry {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** CPU seconds the registry process used so far. */
  cpuSeconds(): Promise<number>;
  /** Stops it and removes its storage. */
  stop(): Promise<void>;
}

/** User + system CPU seconds of a process, from `/proc/<pid>/stat`; 0 when unreadable. */
export async function processCpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return parseStatCpuSeconds(stat);
  } catch {
    return 0;
  }
}

/** utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in seconds. */
export function parseStatCpuSeconds(stat: string): number {
  // The command name (field 2) is in parentheses and may contain spaces: count after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  return Number.isFinite(user + system) ? (user + system) / CLOCK_TICKS : 0;
}

/** Starts `docker-registry serve` with fresh storage under `parent`; waits until it answers. */
export async function startBenchRegistry(parent: string): Promise<BenchRegistry> {
  const dir = await Deno.makeTempDir({ dir: parent, prefix: "registry-" });
  const host = `127.0.0.1:${freePort()}`;
  const config = distributionConfig({ root: join(dir, "data"), host, secret: "bench" });
  await Deno.writeTextFile(join(dir, "config.yml"), config);
  const child = new Deno.Command("docker-registry", {
    args: ["serve", join(dir, "config.yml")],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  child.status.then(() => {
    exited = true;
  });
  const url = `http://${host}`;
  const stop = async (): Promise<void> => {
    if (!exited) child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/v2/`);
      await response.body?.cancel();
      break;
    } catch {
      if (exited || Date.now() > deadline) {
        await stop();
        throw new Error(`docker-registry did not start on ${host}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { host, url, cpuSeconds: () => processCpuSeconds(child.pid), stop };
}

/** A command to time. */
export interface TimedCommand {
  /** Program. */
  command: string;
  /** Its arguments. */
  args: string[];
  /** The whole environment of the child. */
  env: Record<string, string>;
}

/** Whether GNU time is there to report peak RSS and CPU time. */
async function hasGnuTime(): Promise<boolean> {
  try {
    return (await Deno.stat(TIME)).isFile;
  } catch {
    return false;
  }
}

/** What GNU time reports of a finished command. */
export interface TimeReport {
  /** Peak resident set size in bytes. */
  peakRss: number;
  /** User + system CPU seconds. */
  cpuSeconds: number;
  /** Bytes written to storage (`%O` file system outputs, 512-byte units on Linux). */
  writtenBytes: number;
}

/** Parses `%M %U %S %O` (peak RSS KiB, user s, system s, outputs) from GNU time's last line. */
export function parseTimeOutput(text: string): TimeReport {
  const line = text.trim().split("\n").at(-1) ?? "";
  const [rss, user, system, outputs] = line.trim().split(/\s+/).map(Number);
  if (rss === undefined || user === undefined || system === undefined) {
    return { peakRss: 0, cpuSeconds: 0, writtenBytes: 0 };
  }
  const cpu = user + system;
  const written = (outputs ?? Number.NaN) * 512;
  return {
    peakRss: Number.isFinite(rss) ? rss * 1024 : 0,
    cpuSeconds: Number.isFinite(cpu) ? cpu : 0,
    writtenBytes: Number.isFinite(written) ? written : 0,
  };
}

/** `VmHWM` (peak RSS) of a process in bytes, from `/proc/<pid>/status`; 0 when unreadable. */
async function vmHwm(pid: number): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds the registries used so far, together. */
async function registriesCpu(registries: readonly BenchRegistry[]): Promise<number> {
  const each = await Promise.all(registries.map((registry) => registry.cpuSeconds()));
  return each.reduce((sum, seconds) => sum + seconds, 0);
}

/** A timed command's measurements and what it printed on stdout. */
export interface TimedOutcome {
  /** The measurements. */
  sample: Sample;
  /** Its standard output. */
  stdout: string;
}

/**
 * Writes out the dirty pages earlier steps left in the page cache (`sync`), so that a timed
 * command does not pay for another's writeback: one that flushes its own output to disk (our pull
 * does, before it renames the finished archive) would otherwise wait for the whole disk queue.
 */
export async function settleDisk(): Promise<void> {
  await new Deno.Command("sync", { stdin: "null", stdout: "null", stderr: "null" }).output();
}

/**
 * Runs a command to completion and measures it, with the CPU time `registries` spent meanwhile.
 * Throws with its output when it fails or runs longer than `timeoutMs`.
 */
export async function timeCommand(
  run: TimedCommand,
  registries: readonly BenchRegistry[],
  timeoutMs: number,
): Promise<TimedOutcome> {
  const gnuTime = await hasGnuTime();
  const timeFile = gnuTime ? await Deno.makeTempFile({ prefix: "bench-time-" }) : undefined;
  const [command, args] = timeFile !== undefined
    ? [TIME, ["-f", "%M %U %S %O", "-o", timeFile, run.command, ...run.args]]
    : [run.command, run.args];
  const registryBefore = await registriesCpu(registries);
  await settleDisk();
  const started = performance.now();
  const child = new Deno.Command(command, {
    args,
    env: run.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).spawn();
  let polledPeak = 0;
  let polling = timeFile === undefined;
  const poll = (async (): Promise<void> => {
    while (polling) {
      polledPeak = Math.max(polledPeak, await vmHwm(child.pid));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const output = await child.output();
  const seconds = (performance.now() - started) / 1000;
  polling = false;
  await poll;
  const registryCpuSeconds = (await registriesCpu(registries)) - registryBefore;
  let measured: TimeReport = { peakRss: polledPeak, cpuSeconds: 0, writtenBytes: 0 };
  if (timeFile !== undefined) {
    measured = parseTimeOutput(await Deno.readTextFile(timeFile));
    await Deno.remove(timeFile);
  }
  if (!output.success) {
    throw new Error(
      `${run.command} ${run.args.join(" ")} failed (exit ${output.code}):\n` +
        decoder.decode(output.stdout) + decoder.decode(output.stderr),
    );
  }
  return {
    sample: { seconds, ...measured, registryCpuSeconds },
    stdout: decoder.decode(output.stdout),
  };
}

/**
 * skopeo's blob-info cache (known compressed forms and locations of layers): root's is in
 * `/var/lib/containers/cache`, other users' under `$XDG_DATA_HOME` or `~/.local/share`.
 */
export function skopeoCachePath(
  uid: number | null,
  env: (name: string) => string | undefined,
): string {
  const name = "blob-info-cache-v1.boltdb";
  if (uid === 0) return join("/var/lib/containers/cache", name);
  const data = env("XDG_DATA_HOME") ?? join(env("HOME") ?? ".", ".local", "share");
  return join(data, "containers", "cache", name);
}

/** Deletes skopeo's blob-info cache, so its next copy runs as on a fresh machine. */
export async function clearSkopeoCache(): Promise<void> {
  const path = skopeoCachePath(Deno.uid(), (name) => Deno.env.get(name));
  await Deno.remove(path).catch((error: unknown) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

/** A blob an image manifest names. */
export interface BlobRef {
  /** Its digest. */
  digest: string;
  /** Its size in bytes. */
  size: number;
}

/** The config and layers of the image manifest a registry holds for `repository:tag`. */
export async function imageBlobs(
  registry: BenchRegistry,
  repository: string,
  tag: string,
): Promise<BlobRef[]> {
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    headers: {
      accept: "application/vnd.oci.image.manifest.v1+json, " +
        "application/vnd.docker.distribution.manifest.v2+json",
    },
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`no manifest for ${repository}:${tag} (HTTP ${response.status})`);
  }
  const manifest = await response.json() as { config: BlobRef; layers: BlobRef[] };
  return [manifest.config, ...manifest.layers].map(({ digest, size }) => ({ digest, size }));
}

/** The bytes of the blobs the manifest of `repository:tag` names. */
export async function pushedBytes(
  registry: BenchRegistry,
  repository: string,
  tag: string,
): Promise<number> {
  const blobs = await imageBlobs(registry, repository, tag);
  return blobs.reduce((sum, blob) => sum + blob.size, 0);
}

/** One command run to its end; throws with its stderr when it fails. */
async function runTool(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`${command} ${args.join(" ")} failed: ${decoder.decode(output.stderr)}`);
  }
  return decoder.decode(output.stdout);
}

/** One curl run; throws with its output when it fails. */
function curl(args: string[]): Promise<string> {
  return runTool("curl", ["--silent", "--show-error", "--fail", ...args]);
}

/** The `Location` header in curl's `--dump-header -` output, made absolute. */
function locationOf(headers: string, base: string): URL {
  const match = /^location:\s*(\S+)\s*$/im.exec(headers);
  if (match === null) throw new Error(`no Location in:\n${headers}`);
  return new URL(match[1] as string, base);
}

/** Opens an upload session (`POST`); returns where its bytes go. */
async function startUpload(registry: BenchRegistry, repository: string): Promise<URL> {
  const headers = await curl([
    ...["--request", "POST", "--dump-header", "-", "--output", "/dev/null"],
    `${registry.url}/v2/${repository}/blobs/uploads/`,
  ]);
  return locationOf(headers, registry.url);
}

/** Closes an upload session with the blob's digest (`PUT`), given the `PATCH`'s headers. */
async function finishUpload(
  registry: BenchRegistry,
  patchHeaders: string,
  digest: string,
): Promise<void> {
  const done = locationOf(patchHeaders, registry.url);
  done.search += `${done.search === "" ? "?" : "&"}digest=${encodeURIComponent(digest)}`;
  await curl(["--request", "PUT", "--output", "/dev/null", done.href]);
}

/** Uploads one blob file the way a client does: POST, one streamed PATCH, PUT with the digest. */
async function curlUpload(
  registry: BenchRegistry,
  repository: string,
  file: string,
  digest: string,
): Promise<void> {
  const session = await startUpload(registry, repository);
  const patched = await curl([
    ...["--request", "PATCH", "--dump-header", "-", "--output", "/dev/null"],
    ...["--header", "content-type: application/octet-stream", "--upload-file", file],
    session.href,
  ]);
  await finishUpload(registry, patched, digest);
}

/** Shell text of a `GET | PATCH` pipe of two curl processes; `$1` the blob, `$2` the session. */
const RELAY_PIPE = 'curl -sSfL "$1" | curl -sSf --request PATCH --dump-header - ' +
  '--output /dev/null --header "content-type: application/octet-stream" --upload-file - "$2"';

/** Moves one blob between registries: `GET` piped into a streamed `PATCH`, then the `PUT`. */
async function curlRelay(
  source: BenchRegistry,
  target: BenchRegistry,
  repository: string,
  digest: string,
): Promise<void> {
  const session = await startUpload(target, repository);
  const blob = `${source.url}/v2/${repository}/blobs/${digest}`;
  const patched = await runTool("bash", [
    ...["-o", "pipefail", "-c", RELAY_PIPE, "relay", blob, session.href],
  ]);
  await finishUpload(target, patched, digest);
}

/** Downloads one blob of `repository` with curl into the file `path`. */
async function curlDownload(
  registry: BenchRegistry,
  repository: string,
  digest: string,
  path: string,
): Promise<void> {
  await curl(["--location", "--output", path, `${registry.url}/v2/${repository}/blobs/${digest}`]);
}

/** Runs `work` on each item, `parallel` at a time, in the order given. */
async function inParallel<T>(
  items: readonly T[],
  parallel: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const queue = [...items];
  const worker = async (): Promise<void> => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/**
 * Times uploading blob files to a registry with curl, `parallel` at a time, largest first: what
 * the registry can take in, with no client of ours in the way.
 */
export async function timeCurlUploads(
  registry: BenchRegistry,
  blobs: readonly { path: string; digest: string; size: number }[],
  parallel: number,
): Promise<Sample> {
  const largestFirst = [...blobs].sort((a, b) => b.size - a.size);
  const registryBefore = await registry.cpuSeconds();
  await settleDisk();
  const started = performance.now();
  await inParallel(largestFirst, parallel, async (blob) => {
    await curlUpload(registry, "bench/curl", blob.path, blob.digest);
  });
  return {
    seconds: (performance.now() - started) / 1000,
    peakRss: 0,
    cpuSeconds: 0,
    registryCpuSeconds: (await registry.cpuSeconds()) - registryBefore,
    writtenBytes: 0,
  };
}

/**
 * Times downloading blobs of `repository` with curl into files in `dir`, `parallel` at a time,
 * largest first: what the registry can send and the disk take in, with no client of ours in the
 * way. The files are removed afterwards (untimed).
 */
export async function timeCurlDownloads(
  registry: BenchRegistry,
  repository: string,
  blobs: readonly { digest: string; size: number }[],
  parallel: number,
  dir: string,
): Promise<Sample> {
  const largestFirst = [...blobs].sort((a, b) => b.size - a.size);
  const pathOf = (digest: string): string => join(dir, digest.replace(":", "-"));
  const registryBefore = await registry.cpuSeconds();
  await settleDisk();
  const started = performance.now();
  await inParallel(largestFirst, parallel, async (blob) => {
    await curlDownload(registry, repository, blob.digest, pathOf(blob.digest));
  });
  const sample: Sample = {
    seconds: (performance.now() - started) / 1000,
    peakRss: 0,
    cpuSeconds: 0,
    registryCpuSeconds: (await registry.cpuSeconds()) - registryBefore,
    writtenBytes: 0,
  };
  for (const blob of largestFirst) await Deno.remove(pathOf(blob.digest));
  return sample;
}

/**
 * Times moving blobs of `repository` from one registry to the same repository on another with
 * curl (`GET` piped into `PATCH`), `parallel` at a time, largest first: what the two registries
 * can pass on, with no client of ours in the way.
 */
export async function timeCurlRelay(
  source: BenchRegistry,
  target: BenchRegistry,
  repository: string,
  blobs: readonly { digest: string; size: number }[],
  parallel: number,
): Promise<Sample> {
  const largestFirst = [...blobs].sort((a, b) => b.size - a.size);
  const registryBefore = await registriesCpu([source, target]);
  await settleDisk();
  const started = performance.now();
  await inParallel(largestFirst, parallel, async (blob) => {
    await curlRelay(source, target, repository, blob.digest);
  });
  return {
    seconds: (performance.now() - started) / 1000,
    peakRss: 0,
    cpuSeconds: 0,
    registryCpuSeconds: (await registriesCpu([source, target])) - registryBefore,
    writtenBytes: 0,
  };
}
