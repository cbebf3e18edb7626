/**
 * The processes the benchmark times: a Distribution registry it can account CPU time for, timed
 * child processes with their peak RSS (`/usr/bin/time -f`, or `VmHWM` polling where that tool is
 * missing), skopeo's blob-info cache, and the registry's own ingest limit (parallel curl uploads).
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

/** Parses `%M %U %S` (peak RSS KiB, user s, system s) from the last line GNU time wrote. */
export function parseTimeOutput(text: string): { peakRss: number; cpuSeconds: number } {
  const line = text.trim().split("\n").at(-1) ?? "";
  const [rss, user, system] = line.trim().split(/\s+/).map(Number);
  if (rss === undefined || user === undefined || system === undefined) {
    return { peakRss: 0, cpuSeconds: 0 };
  }
  const cpu = user + system;
  return {
    peakRss: Number.isFinite(rss) ? rss * 1024 : 0,
    cpuSeconds: Number.isFinite(cpu) ? cpu : 0,
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

/**
 * Runs a command to completion and measures it. Throws with its output when it fails or runs
 * longer than `timeoutMs`.
 */
export async function timeCommand(
  run: TimedCommand,
  registry: BenchRegistry,
  timeoutMs: number,
): Promise<Sample> {
  const gnuTime = await hasGnuTime();
  const timeFile = gnuTime ? await Deno.makeTempFile({ prefix: "bench-time-" }) : undefined;
  const [command, args] = timeFile !== undefined
    ? [TIME, ["-f", "%M %U %S", "-o", timeFile, run.command, ...run.args]]
    : [run.command, run.args];
  const registryBefore = await registry.cpuSeconds();
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
  const registryCpuSeconds = (await registry.cpuSeconds()) - registryBefore;
  let measured = { peakRss: polledPeak, cpuSeconds: 0 };
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
  return { seconds, ...measured, registryCpuSeconds };
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

/** The manifest a registry holds for `repository:tag`, and the bytes of the blobs it names. */
export async function pushedBytes(
  registry: BenchRegistry,
  repository: string,
  tag: string,
): Promise<number> {
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
  const manifest = await response.json() as {
    config: { size: number };
    layers: { size: number }[];
  };
  return manifest.layers.reduce((sum, layer) => sum + layer.size, manifest.config.size);
}

/** One curl run; throws with its output when it fails. */
async function curl(args: string[]): Promise<string> {
  const output = await new Deno.Command("curl", {
    args: ["--silent", "--show-error", "--fail", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`curl ${args.join(" ")} failed: ${decoder.decode(output.stderr)}`);
  }
  return decoder.decode(output.stdout);
}

/** The `Location` header in curl's `--dump-header -` output, made absolute. */
function locationOf(headers: string, base: string): URL {
  const match = /^location:\s*(\S+)\s*$/im.exec(headers);
  if (match === null) throw new Error(`no Location in:\n${headers}`);
  return new URL(match[1] as string, base);
}

/** Uploads one blob file the way a client does: POST, one streamed PATCH, PUT with the digest. */
async function curlUpload(
  registry: BenchRegistry,
  repository: string,
  file: string,
  digest: string,
): Promise<void> {
  const start = await curl([
    ...["--request", "POST", "--dump-header", "-", "--output", "/dev/null"],
    `${registry.url}/v2/${repository}/blobs/uploads/`,
  ]);
  const patched = await curl([
    ...["--request", "PATCH", "--dump-header", "-", "--output", "/dev/null"],
    ...["--header", "content-type: application/octet-stream", "--upload-file", file],
    locationOf(start, registry.url).href,
  ]);
  const done = locationOf(patched, registry.url);
  done.search += `${done.search === "" ? "?" : "&"}digest=${encodeURIComponent(digest)}`;
  await curl(["--request", "PUT", "--output", "/dev/null", done.href]);
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
  const queue = [...blobs].sort((a, b) => b.size - a.size);
  const registryBefore = await registry.cpuSeconds();
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let blob = queue.shift(); blob !== undefined; blob = queue.shift()) {
      await curlUpload(registry, "bench/curl", blob.path, blob.digest);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return {
    seconds: (performance.now() - started) / 1000,
    peakRss: 0,
    cpuSeconds: 0,
    registryCpuSeconds: (await registry.cpuSeconds()) - registryBefore,
  };
}
