/**
 * Sync in `deno task bench`: a list of small images in a source registry (put there by skopeo) is
 * synced by both tools into registries of their own (ours: `main.ts sync --json`, as a user runs
 * it; skopeo: `skopeo sync --src yaml`), and by curl doing only the requests the job needs (the
 * floor, see {@link ./bench_sync_floor.ts}). After the first runs a few images change at the
 * source; the second runs are timed against each other and the floor, and our result must show no
 * byte sent for the images that did not change.
 *
 * The same job runs twice: with the registries on loopback, where every request costs well under a
 * millisecond and the registries' own work sets the floor, and with each registry behind a delay
 * proxy ({@link SyncLink}), as a mirror job meets registries in another region or country.
 *
 * @module
 */

import { join } from "node:path";
import { startDelayProxy } from "../tests/helpers/delay_proxy.ts";
import {
  type BenchRegistry,
  clearSkopeoCache,
  startBenchRegistry,
  type TimedCommand,
  type TimedOutcome,
} from "./bench_process.ts";
import { timeCurlSync } from "./bench_sync_floor.ts";
import {
  formatBytes,
  formatRatio,
  formatSeconds,
  markdownTable,
  median,
  type Sample,
  type ScenarioRow,
  type Target,
} from "./bench_report.ts";
import {
  ourSyncCommand,
  seedWithSkopeo,
  skopeoSyncCommand,
  syncImageRepositories,
  type SyncTally,
  tallySyncResult,
  writeSkopeoSyncYaml,
  writeSyncImages,
  writeSyncList,
} from "./bench_sync_images.ts";

/** The second sync's time against skopeo's. */
const TARGET_SYNC_RATIO: Target = { kind: "ratio", max: 0.3 };
const PREFIX = "mirror";

/** How big the sync workload is. */
export interface SyncWorkload {
  /** Images in the list. */
  images: number;
  /** Images changed at the source before each second run. */
  changed: number;
  /** Pseudo-random bytes in each image's last layer. */
  randomBytes: number;
}

/** The tools timed. */
export type SyncTool = "ours" | "skopeo";

/** The registries' distance: each sits behind a delay proxy holding every packet this long. */
export interface SyncLink {
  /** Milliseconds each way (a round trip costs twice this). */
  oneWayMs: number;
}

/** The two timed syncs: into an empty target, then after a few images changed. */
export type SyncRun = "sync-first" | "sync-second";

/**
 * The samples' key of one run by `who`: `sync-second/ours` on loopback, `far-sync-second/ours`
 * across `link`.
 */
export function syncKey(run: SyncRun, who: SyncTool | "floor", link?: SyncLink): string {
  return `${link === undefined ? "" : "far-"}${run}/${who}`;
}

/** How the report names the distance: "" on loopback. */
function distance(link: SyncLink | undefined): string {
  return link === undefined ? "" : `, registries ${2 * link.oneWayMs} ms RTT away`;
}

/** What the sync runs need from the benchmark. */
export interface SyncBench {
  /** The `main.ts` our syncs run. */
  main: string;
  /** Scratch directory (archives, lists, caches, registries). */
  scratch: string;
  /** Timed runs of the second sync. */
  runs: number;
  /** Progress lines. */
  log: (line: string) => void;
  /** The environment children run with. */
  env: Record<string, string>;
  /** The tools in the order run `index` uses. */
  order: (index: number) => SyncTool[];
  /** Times a command into the samples under `key`. */
  measure: (
    key: string,
    run: TimedCommand,
    registries: readonly BenchRegistry[],
  ) => Promise<TimedOutcome>;
  /** Keeps a sample timed in this process (the floor's) under `key`. */
  keep: (key: string, sample: Sample) => void;
}

/** Our result of each second sync. */
export type SyncTallies = SyncTally[];

/**
 * `registry` as seen across `link`: its host and URL are a delay proxy's; stopping it closes the
 * proxy, then stops the registry.
 */
function across(registry: BenchRegistry, link: SyncLink): BenchRegistry {
  // The floor's first run sends every blob of the list at once (80 transfers for 20 images).
  const proxy = startDelayProxy({
    upstream: registry.host,
    delayMs: link.oneWayMs,
    maxConnections: 256,
  });
  return {
    host: proxy.host,
    url: `http://${proxy.host}`,
    cpuSeconds: () => registry.cpuSeconds(),
    stop: async () => {
      await proxy.close();
      await registry.stop();
    },
  };
}

/**
 * Runs the sync benchmark; samples go under {@link syncKey}: `sync-first/<tool>` and
 * `sync-second/<tool>`, the floor's as `…/floor`, prefixed `far-` with a `link`.
 */
export async function timeSyncs(
  bench: SyncBench,
  workload: SyncWorkload,
  link?: SyncLink,
): Promise<SyncTallies> {
  const repositories = syncImageRepositories(workload.images);
  const name = link === undefined ? "sync" : "far-sync";
  const images = join(bench.scratch, `${name}-images`);
  bench.log(
    `sync: ${workload.images} images, ${workload.changed} changed before each second run` +
      distance(link),
  );
  const started: BenchRegistry[] = [];
  try {
    for (let index = 0; index < 4; index++) {
      const registry = await startBenchRegistry(bench.scratch);
      started.push(link === undefined ? registry : across(registry, link));
    }
    const [source, oursTarget, skopeoTarget, floorTarget] = started as [
      BenchRegistry,
      BenchRegistry,
      BenchRegistry,
      BenchRegistry,
    ];
    const archives = await writeSyncImages(images, repositories, 1, workload.randomBytes);
    await seedWithSkopeo(archives, repositories, source.host, bench.env);
    const list = join(bench.scratch, `${name}-list.txt`);
    const yaml = join(bench.scratch, `${name}-list.yaml`);
    await writeSyncList(list, source.host, repositories);
    await writeSkopeoSyncYaml(yaml, source.host, repositories);
    const cache = await Deno.makeTempDir({ dir: bench.scratch, prefix: "cache-" });
    const commands: Record<SyncTool, { run: TimedCommand; registries: BenchRegistry[] }> = {
      ours: {
        run: ourSyncCommand(bench.main, list, `${oursTarget.host}/${PREFIX}`, bench.env, cache),
        registries: [source, oursTarget],
      },
      skopeo: {
        run: skopeoSyncCommand(yaml, `${skopeoTarget.host}/${PREFIX}`, bench.env),
        registries: [source, skopeoTarget],
      },
    };
    const syncOnce = async (tool: SyncTool, key: string): Promise<TimedOutcome> => {
      if (tool === "skopeo") await clearSkopeoCache();
      return await bench.measure(key, commands[tool].run, commands[tool].registries);
    };
    const floorImages = repositories.map((repository) => ({ repository, tag: "latest" }));
    const floorOnce = async (key: string, expected: number): Promise<void> => {
      const floor = await timeCurlSync({
        source,
        target: floorTarget,
        namespace: PREFIX,
        images: floorImages,
      });
      if (floor.copied !== expected) {
        throw new Error(`the curl floor copied ${floor.copied} images, not ${expected}`);
      }
      bench.keep(key, floor.sample);
      bench.log(`  ${key}: ${formatSeconds(floor.sample.seconds)}`);
    };
    for (const tool of bench.order(0)) await syncOnce(tool, syncKey("sync-first", tool, link));
    await floorOnce(syncKey("sync-first", "floor", link), workload.images);
    const tallies: SyncTallies = [];
    for (let run = 0; run < bench.runs; run++) {
      const changed = repositories.slice(0, workload.changed);
      const fresh = await writeSyncImages(
        images,
        changed,
        1000 * (run + 1),
        workload.randomBytes,
      );
      await seedWithSkopeo(fresh, changed, source.host, bench.env);
      for (const tool of bench.order(run)) {
        const { stdout } = await syncOnce(tool, syncKey("sync-second", tool, link));
        if (tool === "ours") tallies.push(tallySyncResult(stdout));
      }
      await floorOnce(syncKey("sync-second", "floor", link), workload.changed);
    }
    return tallies;
  } finally {
    for (const registry of started) await registry.stop();
  }
}

/** The sync rows of a scenario table, on loopback or across `link`. */
export function syncRows(
  samples: (key: string) => readonly Sample[],
  workload: SyncWorkload,
  link?: SyncLink,
): ScenarioRow[] {
  return [
    {
      label: `sync of ${workload.images} images, first run (empty target; ours \`sync --json\`, ` +
        `skopeo \`sync --src yaml\`)${distance(link)}`,
      ours: samples(syncKey("sync-first", "ours", link)),
      skopeo: samples(syncKey("sync-first", "skopeo", link)),
    },
    {
      label: `sync of ${workload.images} images, second run, ${workload.changed} changed ` +
        `at the source${distance(link)}`,
      ours: samples(syncKey("sync-second", "ours", link)),
      skopeo: samples(syncKey("sync-second", "skopeo", link)),
      target: TARGET_SYNC_RATIO,
    },
  ];
}

/**
 * What our second syncs did, line by line: the unchanged images must cost no byte. `label` names
 * the runs (default: "our second runs").
 */
export function syncBytesTable(
  tallies: SyncTallies,
  workload: SyncWorkload,
  label = "our second runs",
): string {
  const most = (pick: (tally: SyncTally) => number): number =>
    tallies.length > 0 ? Math.max(...tallies.map(pick)) : Number.NaN;
  const unchangedBytes = most((tally) => tally.unchangedBytes);
  const expected = tallies.every((tally) =>
    tally.transferred === workload.changed &&
    tally.unchanged === workload.images - workload.changed && tally.failed === 0
  );
  return markdownTable(
    [
      label,
      "lines transferred",
      "lines unchanged",
      "bytes sent, changed images (most)",
      "bytes sent, unchanged images (most)",
      "target",
      "met",
    ],
    [[
      `${tallies.length} run${tallies.length === 1 ? "" : "s"}`,
      tallies.map((tally) => String(tally.transferred)).join(", "),
      tallies.map((tally) => String(tally.unchanged)).join(", "),
      formatBytes(most((tally) => tally.transferredBytes)),
      formatBytes(unchangedBytes),
      "0 B",
      expected && tallies.length > 0 && unchangedBytes === 0 ? "yes" : "**no**",
    ]],
  );
}

/** Both runs beside the curl floor: how far each tool is from the requests the job needs. */
export function syncFloorTable(
  samples: (key: string) => readonly Sample[],
  workload: SyncWorkload,
  link?: SyncLink,
): string {
  const seconds = (key: string): number => median(samples(key).map((sample) => sample.seconds));
  const row = (label: string, run: SyncRun): string[] => {
    const ours = seconds(syncKey(run, "ours", link));
    const skopeo = seconds(syncKey(run, "skopeo", link));
    const floor = seconds(syncKey(run, "floor", link));
    return [
      label,
      formatSeconds(ours),
      formatSeconds(skopeo),
      formatSeconds(floor),
      formatRatio(ours, floor),
      formatRatio(skopeo, floor),
    ];
  };
  return markdownTable(
    [
      `sync (medians)${distance(link)}`,
      "ours",
      "skopeo",
      "curl floor",
      "ours / floor",
      "skopeo / floor",
    ],
    [
      row(`first run, ${workload.images} images`, "sync-first"),
      row(`second run, ${workload.changed} changed`, "sync-second"),
    ],
  );
}
