/**
 * The long-link table of `deno task bench`: how many round trips a push waits for when the
 * registry is far away. A small three-layer image is pushed through a delay proxy
 * (tests/helpers/delay_proxy.ts) at 0 ms and at 50 ms each way; the difference of the wall times
 * divided by the 100 ms round trip is the number of round trips the push waited for (fastest
 * runs compared, as other work on the machine only adds time). Cold pushes
 * go to a new repository with an empty cache, re-pushes repeat them unchanged with the cache.
 * Both on plain HTTP and with a bearer-token registry (its token server behind its own delay
 * proxy, as an auth host elsewhere would be), ours and skopeo's.
 *
 * @module
 */

import { join } from "node:path";
import { type DelayProxy, startDelayProxy } from "../tests/helpers/delay_proxy.ts";
import { startRegistry, type TestRegistry } from "../tests/helpers/registry.ts";
import { writeSampleDockerArchive } from "../tests/helpers/sample_archive.ts";
import { clearSkopeoCache } from "./bench_process.ts";
import { markdownTable } from "./bench_report.ts";

/** One-way delay of the long link, in milliseconds. */
export const ONE_WAY_MS = 50;
/** Round-trip targets: a cold push and a re-push of an unchanged image. */
export const ROUND_TRIP_TARGETS = { cold: 6.5, repush: 3.5 } as const;

const USER = "bench";
const PASSWORD = "bench-long-link";
const COMMAND_TIMEOUT_MS = 5 * 60_000;

/** How the registry authorises. */
export type LinkAuth = "plain" | "token";
/** The tools timed. */
export type LinkTool = "ours" | "skopeo";
/** A push measured. */
export type LinkScenario = "cold" | "repush";

/** Wall seconds of each run, by `auth/tool/scenario/delay`. */
export type LinkSamples = Map<string, number[]>;

/** What the long-link runs share. */
export interface LongLinkSetup {
  /** `main.ts` of the checkout to time. */
  main: string;
  /** Scratch directory (archive, caches). */
  scratch: string;
  /** Timed runs per cell. */
  runs: number;
  /** Progress lines. */
  log: (line: string) => void;
  /** The environment of the children. */
  env: Record<string, string>;
}

/** The key of one cell's samples. */
export function sampleKey(
  auth: LinkAuth,
  tool: LinkTool,
  scenario: LinkScenario,
  delayMs: number,
): string {
  return `${auth}/${tool}/${scenario}/${delayMs}`;
}

/**
 * Round trips between the fastest runs at 0 ms and at `ONE_WAY_MS` each way: other work on the
 * machine only ever adds time, so the minimum is the least noisy figure.
 */
export function roundTrips(fast: readonly number[], slow: readonly number[]): number {
  if (fast.length === 0 || slow.length === 0) return Number.NaN;
  return (Math.min(...slow) - Math.min(...fast)) / (2 * ONE_WAY_MS / 1000);
}

/** A registry (and its token server) behind delay proxies. */
interface FarRegistry {
  registry: TestRegistry;
  /** The registry's proxy; its delay is what the runs vary. */
  proxies: { registry: DelayProxy; token?: DelayProxy };
}

/** Starts a registry behind a delay proxy of `delayMs` (its token server behind another). */
async function farRegistry(auth: LinkAuth, delayMs: number): Promise<FarRegistry> {
  let tokenProxy: DelayProxy | undefined;
  const registry = await startRegistry(
    auth === "token"
      ? {
        token: {
          users: { [USER]: PASSWORD },
          realmHost: (own) => {
            tokenProxy = startDelayProxy({ upstream: own, delayMs });
            return tokenProxy.host;
          },
        },
      }
      : {},
  );
  const proxy = startDelayProxy({ upstream: registry.host, delayMs });
  return {
    registry,
    proxies: tokenProxy !== undefined
      ? { registry: proxy, token: tokenProxy }
      : { registry: proxy },
  };
}

async function stopFar(far: FarRegistry): Promise<void> {
  await far.proxies.registry.close();
  await far.proxies.token?.close();
  await far.registry.stop();
}

/** The command line of one push. */
function pushCommand(
  setup: LongLinkSetup,
  tool: LinkTool,
  auth: LinkAuth,
  archive: string,
  target: string,
  cacheDir: string,
): { command: string; args: string[]; env: Record<string, string> } {
  if (tool === "ours") {
    const credentials = auth === "token" ? ["-u", USER, "-p", PASSWORD] : [];
    return {
      command: Deno.execPath(),
      args: [
        ...["run", "-A", "--no-prompt", setup.main, "-f", archive, "-r", target, "--quiet"],
        ...credentials,
      ],
      env: { ...setup.env, DOCKER_PUSHER_CACHE_DIR: cacheDir },
    };
  }
  const credentials = auth === "token" ? [`--dest-creds=${USER}:${PASSWORD}`] : [];
  return {
    command: "skopeo",
    args: [
      ...["copy", "--quiet", "--dest-tls-verify=false", ...credentials],
      `docker-archive:${archive}`,
      `docker://${target}`,
    ],
    env: setup.env,
  };
}

/** Runs one push; returns its wall time in seconds. */
async function timedPush(
  setup: LongLinkSetup,
  tool: LinkTool,
  auth: LinkAuth,
  archive: string,
  target: string,
  cacheDir: string,
): Promise<number> {
  const { command, args, env } = pushCommand(setup, tool, auth, archive, target, cacheDir);
  const started = performance.now();
  const output = await new Deno.Command(command, {
    args,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(COMMAND_TIMEOUT_MS),
  }).output();
  const seconds = (performance.now() - started) / 1000;
  if (!output.success) {
    throw new Error(
      `${tool} push to ${target} failed: ${new TextDecoder().decode(output.stderr).trim()}`,
    );
  }
  return seconds;
}

function record(samples: LinkSamples, key: string, seconds: number): void {
  const list = samples.get(key) ?? [];
  list.push(seconds);
  samples.set(key, list);
}

/** Times cold pushes and re-pushes of both tools at 0 ms and `ONE_WAY_MS`, for both auth modes. */
export async function measureLongLink(setup: LongLinkSetup): Promise<LinkSamples> {
  const archive = join(setup.scratch, "long-link.tar");
  await writeSampleDockerArchive(archive, {
    layers: 3,
    randomBytes: 64 * 1024,
    seed: 150,
    name: "bench/long-link:latest",
  });
  // One untimed run first, so the module cache is warm for every timed one.
  await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", setup.main, "--version"],
    env: setup.env,
    stdout: "null",
    stderr: "null",
  }).output();
  const samples: LinkSamples = new Map();
  let counter = 0;
  for (const auth of ["plain", "token"] as const) {
    // Both links stay up and the runs alternate between them, so a busy moment of the machine
    // does not land on one side only.
    const links: { delayMs: number; far: FarRegistry }[] = [];
    try {
      for (const delayMs of [0, ONE_WAY_MS]) {
        links.push({ delayMs, far: await farRegistry(auth, delayMs) });
      }
      for (let run = 0; run < setup.runs; run++) {
        const tools: LinkTool[] = run % 2 === 0 ? ["ours", "skopeo"] : ["skopeo", "ours"];
        for (const tool of tools) {
          for (const { delayMs, far } of run % 2 === 0 ? links : [...links].reverse()) {
            const target = `${far.proxies.registry.host}/long-link/${tool}-${++counter}:latest`;
            const cache = await Deno.makeTempDir({ dir: setup.scratch, prefix: "cache-" });
            if (tool === "skopeo") await clearSkopeoCache();
            for (const scenario of ["cold", "repush"] as const) {
              const seconds = await timedPush(setup, tool, auth, archive, target, cache);
              const key = sampleKey(auth, tool, scenario, delayMs);
              record(samples, key, seconds);
              setup.log(`  long-link ${key}: ${seconds.toFixed(2)} s`);
            }
          }
        }
      }
    } finally {
      for (const { far } of links) await stopFar(far);
    }
  }
  return samples;
}

/** The markdown table of round trips (ours, skopeo, our target and whether it is met). */
export function longLinkTable(samples: LinkSamples): string {
  const rows: string[][] = [];
  const cell = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : "–");
  for (const auth of ["plain", "token"] as const) {
    for (const scenario of ["cold", "repush"] as const) {
      const trips = (tool: LinkTool): number =>
        roundTrips(
          samples.get(sampleKey(auth, tool, scenario, 0)) ?? [],
          samples.get(sampleKey(auth, tool, scenario, ONE_WAY_MS)) ?? [],
        );
      const ours = trips("ours");
      const target = ROUND_TRIP_TARGETS[scenario];
      rows.push([
        `${
          scenario === "cold" ? "first push (empty registry, empty cache)" : "re-push unchanged"
        }` +
        `, ${auth === "plain" ? "plain HTTP" : "bearer token"}`,
        cell(ours),
        cell(trips("skopeo")),
        `≤ ${target}`,
        ours <= target ? "yes" : "**no**",
      ]);
    }
  }
  return markdownTable(["round trips on a long link", "ours", "skopeo", "target", "met"], rows);
}
