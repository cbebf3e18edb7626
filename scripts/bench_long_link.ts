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
 * In three auth modes (see {@link ./bench_link_registry.ts}): plain HTTP; bearer tokens from an
 * auth host elsewhere (each token server behind its own delay proxy); bearer tokens served on the
 * registry's own host (nginx in front of registry and token server, one delay proxy in front of
 * nginx). With tokens from elsewhere the copy is timed twice, into a new repository each time:
 * first with the cache of the earlier scenarios, which knows the first registry's token realm but
 * has never met the second (first contact), then with a cache that learnt both realms from an
 * untimed copy of another small image (any later run). With tokens on the registry's host only
 * the scenarios where the auth host matters are timed: the push, the re-push, the pull and the
 * copy at first contact.
 *
 * @module
 */

import { join } from "node:path";
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
import {
  type FarRegistry,
  LINK_AUTHS,
  type LinkAuth,
  startFarRegistry,
} from "./bench_link_registry.ts";
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

/**
 * The scenarios timed with `auth`: `copy-known` only with tokens from elsewhere (plain HTTP has
 * no realms); with tokens on the registry's host only those where the auth host matters (no
 * `copy-known`, no sync).
 */
export function linkScenarios(auth: LinkAuth): LinkScenario[] {
  switch (auth) {
    case "plain":
      return LINK_SCENARIOS.filter((scenario) => scenario !== "copy-known");
    case "token-elsewhere":
      return [...LINK_SCENARIOS];
    case "token-same-host":
      return LINK_SCENARIOS.filter((scenario) => scenario !== "copy-known" && scenario !== "sync");
  }
}

/**
 * Round-trip targets of each scenario (the sync's depends on the auth); none for the first
 * contact of a copy with a target whose tokens come from elsewhere, which has to meet the
 * target's challenge and then connect to its auth host.
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
      return auth === "token-elsewhere" ? undefined : 7;
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

/** The credentials of the registries of `auth`, to spread into a job or a setup. */
function credentialsOf(auth: LinkAuth): { credentials?: BenchCredentials } {
  return auth === "plain" ? {} : { credentials: CREDENTIALS };
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
 * Starts the links of one auth mode (0 ms and `oneWayMs`), with what its scenarios need: the
 * sync lists synced once, and the warm-up copy's source (`warmup`, an archive) in the first
 * registry for `copy-known`.
 */
async function startLinks(
  setup: LongLinkSetup,
  auth: LinkAuth,
  warmup: string,
  links: Link[],
): Promise<void> {
  const scenarios = linkScenarios(auth);
  const users = { [CREDENTIALS.username]: CREDENTIALS.password };
  for (const delayMs of [0, setup.oneWayMs]) {
    const first = await startFarRegistry(auth, delayMs, users);
    const second = await startFarRegistry(auth, delayMs, users).catch(async (error) => {
      await first.stop();
      throw error;
    });
    const link: Link = { delayMs, first, second };
    links.push(link);
    if (scenarios.includes("copy-known")) {
      await seedWithSkopeo(
        [warmup],
        [WARMUP_REPOSITORY],
        link.first.registry.host,
        setup.env,
        CREDENTIALS,
      );
    }
    if (!scenarios.includes("sync")) continue;
    setup.log(`  long-link ${auth}/${delayMs} ms: the sync's ${setup.syncImages} images`);
    link.sync = await linkSyncSetup({
      tools: setup,
      dir: join(setup.scratch, `link-sync-${auth}-${delayMs}`),
      images: setup.syncImages,
      source: { direct: link.first.registry.host, far: link.first.proxy.host },
      target: link.second.proxy.host,
      ...credentialsOf(auth),
      timed: (run, what) => timed(run, what),
    });
  }
}

/** The archive every job pushes, and where pulls write. */
type LinkFiles = Pick<LinkJob, "archive" | "pulled">;

/** The job of one tool's run on one link: new repositories and new caches. */
async function linkJob(
  setup: LongLinkSetup,
  auth: LinkAuth,
  link: Link,
  name: string,
  files: LinkFiles,
): Promise<LinkJob> {
  const cacheDir = (): Promise<string> =>
    Deno.makeTempDir({ dir: setup.scratch, prefix: "cache-" });
  const job: LinkJob = {
    ...files,
    image: `${link.first.proxy.host}/${name}:latest`,
    copyTarget: `${link.second.proxy.host}/${name}:latest`,
    cacheDir: await cacheDir(),
    ...credentialsOf(auth),
  };
  if (linkScenarios(auth).includes("copy-known")) {
    job.known = {
      copyTarget: `${link.second.proxy.host}/${name}-known:latest`,
      cacheDir: await cacheDir(),
      warmup: {
        source: `${link.first.proxy.host}/${WARMUP_REPOSITORY}:latest`,
        target: `${link.second.proxy.host}/${name}-warmup:latest`,
      },
    };
  }
  if (link.sync !== undefined) job.sync = link.sync.job;
  return job;
}

/** Times every scenario of both tools at 0 ms and `oneWayMs`, in every auth mode. */
export async function measureLongLink(setup: LongLinkSetup): Promise<LinkSamples> {
  const files: LinkFiles = {
    archive: join(setup.scratch, "long-link.tar"),
    pulled: join(setup.scratch, "long-link-pulled.tar"),
  };
  await writeSampleDockerArchive(files.archive, {
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
  for (const auth of LINK_AUTHS) {
    // Both links stay up and the runs alternate between them, so a busy moment of the machine
    // does not land on one side only.
    const links: Link[] = [];
    try {
      await startLinks(setup, auth, warmup.path, links);
      for (let run = 0; run < setup.runs; run++) {
        const tools: LinkTool[] = run % 2 === 0 ? ["ours", "skopeo"] : ["skopeo", "ours"];
        for (const tool of tools) {
          for (const link of run % 2 === 0 ? links : [...links].reverse()) {
            const job = await linkJob(setup, auth, link, `long-link/${tool}-${++counter}`, files);
            if (tool === "skopeo") await clearSkopeoCache();
            for (const scenario of linkScenarios(auth)) {
              if (scenario === "pull") await Deno.remove(files.pulled).catch(() => {});
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
        await link.first.stop();
        await link.second.stop();
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

/** How an auth mode reads in the table, after the scenario. */
function authLabel(auth: LinkAuth): string {
  switch (auth) {
    case "plain":
      return "plain HTTP";
    case "token-elsewhere":
      return "bearer token from an auth host elsewhere";
    case "token-same-host":
      return "bearer token on the registry's host";
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
  for (const auth of LINK_AUTHS) {
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
        `${scenarioLabel(scenario, auth, syncImages)}, ${authLabel(auth)}`,
        cell(ours),
        cell(trips("skopeo")),
        target === undefined ? "–" : `≤ ${target}`,
        target === undefined ? "–" : ours <= target ? "yes" : "**no**",
      ]);
    }
  }
  return markdownTable(["round trips on a long link", "ours", "skopeo", "target", "met"], rows);
}
