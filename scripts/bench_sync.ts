/**
 * Sync in `deno task bench`: a list of small images in a source registry (put there by skopeo) is
 * synced by both tools into registries of their own (ours: `main.ts sync --json`, as a user runs
 * it; skopeo: `skopeo sync --src yaml`), and by curl doing only the requests the job needs (the
 * floor, see {@link ./bench_sync_floor.ts}). After the first runs a few images change at the
 * source; the second runs are timed against each other and the floor, and our result must show no
 * byte sent for the images that did not change.
 *
 * @module
 */

import { join } from "node:path";
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
 * Runs the sync benchmark; samples go to `sync-first/<tool>` and `sync-second/<tool>`, the
 * floor's to `sync-first/floor` and `sync-second/floor`.
 */
export async function timeSyncs(bench: SyncBench, workload: SyncWorkload): Promise<SyncTallies> {
  const repositories = syncImageRepositories(workload.images);
  const images = join(bench.scratch, "sync-images");
  bench.log(
    `sync: ${workload.images} images, ${workload.changed} changed before each second run`,
  );
  const started: BenchRegistry[] = [];
  try {
    for (let index = 0; index < 4; index++) {
      started.push(await startBenchRegistry(bench.scratch));
    }
    const [source, oursTarget, skopeoTarget, floorTarget] = started as [
      BenchRegistry,
      BenchRegistry,
      BenchRegistry,
      BenchRegistry,
    ];
    const archives = await writeSyncImages(images, repositories, 1, workload.randomBytes);
    await seedWithSkopeo(archives, repositories, source.host, bench.env);
    const list = join(bench.scratch, "sync-list.txt");
    const yaml = join(bench.scratch, "sync-list.yaml");
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
    for (const tool of bench.order(0)) await syncOnce(tool, `sync-first/${tool}`);
    await floorOnce("sync-first/floor", workload.images);
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
        const { stdout } = await syncOnce(tool, `sync-second/${tool}`);
        if (tool === "ours") tallies.push(tallySyncResult(stdout));
      }
      await floorOnce("sync-second/floor", workload.changed);
    }
    return tallies;
  } finally {
    for (const registry of started) await registry.stop();
  }
}

/** The sync rows of a scenario table. */
export function syncRows(
  samples: (key: string) => readonly Sample[],
  workload: SyncWorkload,
): ScenarioRow[] {
  return [
    {
      label: `sync of ${workload.images} images, first run (empty target; ours \`sync --json\`, ` +
        "skopeo `sync --src yaml`)",
      ours: samples("sync-first/ours"),
      skopeo: samples("sync-first/skopeo"),
    },
    {
      label: `sync of ${workload.images} images, second run, ${workload.changed} changed ` +
        "at the source",
      ours: samples("sync-second/ours"),
      skopeo: samples("sync-second/skopeo"),
      target: TARGET_SYNC_RATIO,
    },
  ];
}

/** What our second syncs did, line by line: the unchanged images must cost no byte. */
export function syncBytesTable(tallies: SyncTallies, workload: SyncWorkload): string {
  const most = (pick: (tally: SyncTally) => number): number =>
    tallies.length > 0 ? Math.max(...tallies.map(pick)) : Number.NaN;
  const unchangedBytes = most((tally) => tally.unchangedBytes);
  const expected = tallies.every((tally) =>
    tally.transferred === workload.changed &&
    tally.unchanged === workload.images - workload.changed && tally.failed === 0
  );
  return markdownTable(
    [
      "our second runs",
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
): string {
  const seconds = (key: string): number => median(samples(key).map((sample) => sample.seconds));
  const row = (label: string, run: string): string[] => {
    const ours = seconds(`${run}/ours`);
    const skopeo = seconds(`${run}/skopeo`);
    const floor = seconds(`${run}/floor`);
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
    ["sync (medians)", "ours", "skopeo", "curl floor", "ours / floor", "skopeo / floor"],
    [
      row(`first run, ${workload.images} images`, "sync-first"),
      row(`second run, ${workload.changed} changed`, "sync-second"),
    ],
  );
}
