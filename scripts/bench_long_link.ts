/**
 * The long-link table of `deno task bench`: how many round trips a command waits for when the
 * registries are far away. Two registries per link sit behind delay proxies
 * (tests/helpers/delay_proxy.ts), at 0 ms and at `oneWayMs` each way; the difference of the wall
 * times divided by the round trip is the number of round trips the command waited for (fastest
 * runs compared, as other work on the machine only adds time). Timed, ours and skopeo's:
 *
 * - a cold push of a small three-layer image to a new repository (empty cache), and the same
 *   push again unchanged (with the cache);
 * - a pull of that image into an archive, and a copy of it to the second registry;
 * - a second sync of a list of small images, none changed since the first (untimed) sync.
 *
 * Both on plain HTTP and with bearer-token registries (each token server behind its own delay
 * proxy, as an auth host elsewhere would be). With tokens the copy is timed twice, into a new
 * repository each time: first with the cache of the earlier scenarios, which knows the first
 * registry's token realm but has never met the second (first contact), then with a cache that
 * learnt both realms from an untimed copy of another small image (any later run).
 *
 * @module
 */

import { join } from "node:path";
import { type DelayProxy, startDelayProxy } from "../tests/helpers/delay_proxy.ts";
import { startRegistry, type TestRegistry } from "../tests/helpers/registry.ts";
import { writeSampleDockerArchive } from "../tests/helpers/sample_archive.ts";
import {
  LINK_SCENARIOS,
  linkCommand,
  type LinkJob,
  type LinkScenario,
  type LinkTool,
  type LinkTools,
  realmWarmupCommand,
} from "./bench_link_commands.ts";
import { clearSkopeoCache, type TimedCommand } from "./bench_process.ts";
import { markdownTable } from "./bench_report.ts";
import { type LinkSyncSetup, linkSyncSetup } from "./bench_link_sync.ts";
import { type BenchCredentials, seedWithSkopeo } from "./bench_sync_images.ts";

/** One-way delay of the long link, in milliseconds. */
export const ONE_WAY_MS = 50;
/** Images in the list of the sync row. */
export const LINK_SYNC_IMAGES = 20;

const CREDENTIALS: BenchCredentials = { username: "bench", password: "bench-long-link" };
const COMMAND_TIMEOUT_MS = 5 * 60_000;

/** The repository of the untimed warm-up copy's source, in the first registry. */
const WARMUP_REPOSITORY = "long-link/realm-warmup";

/** How the registries authorise. */
export type LinkAuth = "plain" | "token";

/** The scenarios timed with `auth`: `copy-known` only with tokens (plain HTTP has no realms). */
export function linkScenarios(auth: LinkAuth): LinkScenario[] {
  return LINK_SCENARIOS.filter((scenario) => auth === "token" || scenario !== "copy-known");
}

/**
 * Round-trip targets of each scenario (the sync's depends on the auth); none for a token copy's
 * first contact with the target, which has to meet the target's challenge before its token.
 */
export function roundTripTarget(scenario: LinkScenario, auth: LinkAuth): number | undefined {
  switch (scenario) {
    case "cold":
      return 6.5;
    case "repush":
      return 3.5;
    case "pull":
      return 5.5;
    case "copy":
      return auth === "plain" ? 7 : undefined;
    case "copy-known":
      return 7;
    case "sync":
      return auth === "plain" ? 4 : 5;
  }
}

/** Wall seconds of each run, by `auth/tool/scenario/delay`. */
export type LinkSamples = Map<string, number[]>;

/** What the long-link runs share. */
export interface LongLinkSetup extends LinkTools {
  /** Scratch directory (archives, lists, caches). */
  scratch: string;
  /** Timed runs per cell. */
  runs: number;
  /** One-way delay of the long link ({@link ONE_WAY_MS}; less in quick mode). */
  oneWayMs: number;
  /** Images in the sync's list ({@link LINK_SYNC_IMAGES}; fewer in quick mode). */
  syncImages: number;
  /** Progress lines. */
  log: (line: string) => void;
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
 * Round trips between the fastest runs at 0 ms and at `oneWayMs` each way: other work on the
 * machine only ever adds time, so the minimum is the least noisy figure.
 */
export function roundTrips(
  fast: readonly number[],
  slow: readonly number[],
  oneWayMs: number,
): number {
  if (fast.length === 0 || slow.length === 0) return Number.NaN;
  return (Math.min(...slow) - Math.min(...fast)) / (2 * oneWayMs / 1000);
}

/** A registry (and its token server) behind delay proxies. */
interface FarRegistry {
  registry: TestRegistry;
  /** The registry's proxy; its host is how the commands reach it. */
  proxy: DelayProxy;
  /** The token server's proxy. */
  tokenProxy?: DelayProxy;
}

/** Starts a registry behind a delay proxy of `delayMs` (its token server behind another). */
async function farRegistry(auth: LinkAuth, delayMs: number): Promise<FarRegistry> {
  let tokenProxy: DelayProxy | undefined;
  const registry = await startRegistry(
    auth === "token"
      ? {
        token: {
          users: { [CREDENTIALS.username]: CREDENTIALS.password },
          realmHost: (own) => {
            tokenProxy = startDelayProxy({ upstream: own, delayMs });
            return tokenProxy.host;
          },
        },
      }
      : {},
  );
  const proxy = startDelayProxy({ upstream: registry.host, delayMs });
  return tokenProxy !== undefined ? { registry, proxy, tokenProxy } : { registry, proxy };
}

async function stopFar(far: FarRegistry): Promise<void> {
  await far.proxy.close();
  await far.tokenProxy?.close();
  await far.registry.stop();
}

/** One link: two far registries at the same delay, and the sync's list between them. */
interface Link {
  delayMs: number;
  /** Pushes, pulls and the copies' and syncs' sources. */
  first: FarRegistry;
  /** Where copies and syncs go. */
  second: FarRegistry;
  sync?: LinkSyncSetup;
}

/** Runs one command; returns its wall time in seconds. */
async function timed(run: TimedCommand, what: string): Promise<number> {
  const started = performance.now();
  const output = await new Deno.Command(run.command, {
    args: run.args,
    env: run.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(COMMAND_TIMEOUT_MS),
  }).output();
  const seconds = (performance.now() - started) / 1000;
  if (!output.success) {
    throw new Error(`${what} failed: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  return seconds;
}

function record(samples: LinkSamples, key: string, seconds: number): void {
  const list = samples.get(key) ?? [];
  list.push(seconds);
  samples.set(key, list);
}

/**
 * Starts the links of one auth mode (0 ms and `oneWayMs`) with their sync lists synced once and,
 * with tokens, the warm-up copy's source (`warmup`, an archive) in the first registry.
 */
async function startLinks(
  setup: LongLinkSetup,
  auth: LinkAuth,
  warmup: string,
  links: Link[],
): Promise<void> {
  for (const delayMs of [0, setup.oneWayMs]) {
    const link: Link = {
      delayMs,
      first: await farRegistry(auth, delayMs),
      second: await farRegistry(auth, delayMs),
    };
    links.push(link);
    if (auth === "token") {
      await seedWithSkopeo(
        [warmup],
        [WARMUP_REPOSITORY],
        link.first.registry.host,
        setup.env,
        CREDENTIALS,
      );
    }
    setup.log(`  long-link ${auth}/${delayMs} ms: the sync's ${setup.syncImages} images`);
    link.sync = await linkSyncSetup({
      tools: setup,
      dir: join(setup.scratch, `link-sync-${auth}-${delayMs}`),
      images: setup.syncImages,
      source: { direct: link.first.registry.host, far: link.first.proxy.host },
      target: link.second.proxy.host,
      ...(auth === "token" ? { credentials: CREDENTIALS } : {}),
      timed: (run, what) => timed(run, what),
    });
  }
}

/** Times every scenario of both tools at 0 ms and `oneWayMs`, for both auth modes. */
export async function measureLongLink(setup: LongLinkSetup): Promise<LinkSamples> {
  const archive = join(setup.scratch, "long-link.tar");
  const pulled = join(setup.scratch, "long-link-pulled.tar");
  await writeSampleDockerArchive(archive, {
    layers: 3,
    randomBytes: 64 * 1024,
    seed: 150,
    name: "bench/long-link:latest",
  });
  const warmup = await writeSampleDockerArchive(join(setup.scratch, "long-link-warmup.tar"), {
    layers: 1,
    randomBytes: 16 * 1024,
    seed: 151,
    name: "bench/long-link-warmup:latest",
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
    const links: Link[] = [];
    try {
      await startLinks(setup, auth, warmup.path, links);
      for (let run = 0; run < setup.runs; run++) {
        const tools: LinkTool[] = run % 2 === 0 ? ["ours", "skopeo"] : ["skopeo", "ours"];
        for (const tool of tools) {
          for (const link of run % 2 === 0 ? links : [...links].reverse()) {
            const name = `long-link/${tool}-${++counter}`;
            const sync = link.sync;
            if (sync === undefined) throw new Error("the link's sync was not set up");
            const job: LinkJob = {
              archive,
              pulled,
              image: `${link.first.proxy.host}/${name}:latest`,
              copyTarget: `${link.second.proxy.host}/${name}:latest`,
              knownCopyTarget: `${link.second.proxy.host}/${name}-known:latest`,
              realmWarmup: {
                source: `${link.first.proxy.host}/${WARMUP_REPOSITORY}:latest`,
                target: `${link.second.proxy.host}/${name}-warmup:latest`,
              },
              ...sync.job,
              cacheDir: await Deno.makeTempDir({ dir: setup.scratch, prefix: "cache-" }),
              knownCacheDir: await Deno.makeTempDir({ dir: setup.scratch, prefix: "cache-" }),
              ...(auth === "token" ? { credentials: CREDENTIALS } : {}),
            };
            if (tool === "skopeo") await clearSkopeoCache();
            for (const scenario of linkScenarios(auth)) {
              if (scenario === "pull") await Deno.remove(pulled).catch(() => {});
              if (scenario === "copy-known" && tool === "ours") {
                await timed(realmWarmupCommand(setup, job), `our warm-up copy (${auth})`);
              }
              const seconds = await timed(
                linkCommand(setup, tool, scenario, job),
                `${tool} ${scenario} (${auth}, ${link.delayMs} ms)`,
              );
              const key = sampleKey(auth, tool, scenario, link.delayMs);
              record(samples, key, seconds);
              setup.log(`  long-link ${key}: ${seconds.toFixed(2)} s`);
            }
          }
        }
      }
    } finally {
      for (const link of links) {
        await stopFar(link.first);
        await stopFar(link.second);
      }
    }
  }
  return samples;
}

/** How a scenario reads in the table. */
function scenarioLabel(scenario: LinkScenario, auth: LinkAuth, syncImages: number): string {
  switch (scenario) {
    case "cold":
      return "first push (empty registry, empty cache)";
    case "repush":
      return "re-push unchanged";
    case "pull":
      return "pull to an archive";
    case "copy":
      return auth === "plain"
        ? "copy to a second far registry"
        : "copy to a second far registry, first contact with the target (its realm not yet known)";
    case "copy-known":
      return "copy to a second far registry, both realms known (any later run)";
    case "sync":
      return `second sync of ${syncImages} unchanged images`;
  }
}

/** The markdown table of round trips (ours, skopeo, our target and whether it is met). */
export function longLinkTable(
  samples: LinkSamples,
  oneWayMs: number,
  syncImages: number,
): string {
  const rows: string[][] = [];
  const cell = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : "–");
  for (const auth of ["plain", "token"] as const) {
    for (const scenario of linkScenarios(auth)) {
      const trips = (tool: LinkTool): number =>
        roundTrips(
          samples.get(sampleKey(auth, tool, scenario, 0)) ?? [],
          samples.get(sampleKey(auth, tool, scenario, oneWayMs)) ?? [],
          oneWayMs,
        );
      const ours = trips("ours");
      const target = roundTripTarget(scenario, auth);
      rows.push([
        `${scenarioLabel(scenario, auth, syncImages)}, ${
          auth === "plain" ? "plain HTTP" : "bearer token"
        }`,
        cell(ours),
        cell(trips("skopeo")),
        target === undefined ? "–" : `≤ ${target}`,
        target === undefined ? "–" : ours <= target ? "yes" : "**no**",
      ]);
    }
  }
  return markdownTable(["round trips on a long link", "ours", "skopeo", "target", "met"], rows);
}
