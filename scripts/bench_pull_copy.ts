/**
 * Pull and copy in `deno task bench`: the benchmark image is put into a source registry twice
 * (layers as they are, and gzip), then, alternating who goes first:
 *
 * - pull of the uncompressed image into an archive: ours `pull -o`, skopeo
 *   `copy docker://… docker-archive:…` (both write the layers as they are), with the bytes each
 *   wrote to disk (GNU time's `%O`, which Linux counts from `write_bytes`), and the floor: curl
 *   downloading each blob into a file on the same disk, 4 blobs at once (our default
 *   `--max-concurrent`), first or last in turn;
 * - copy of the gzip image to a fresh second registry: ours `copy`, skopeo
 *   `copy docker://… docker://…` (both move the compressed layers unchanged), and the floor: curl
 *   piping each blob's `GET` into a `PATCH` on the other registry, 4 blobs at once.
 *
 * @module
 */

import { join } from "node:path";
import type { BuiltArchive } from "./bench_archive.ts";
import {
  type BenchRegistry,
  clearSkopeoCache,
  imageBlobs,
  startBenchRegistry,
  timeCurlDownloads,
  timeCurlRelay,
  type TimedCommand,
  type TimedOutcome,
} from "./bench_process.ts";
import {
  formatBytes,
  formatRatio,
  formatSeconds,
  formatTarget,
  markdownTable,
  median,
  meets,
  rssVerdict,
  type Sample,
  type ScenarioRow,
  type Target,
} from "./bench_report.ts";

/** Pull and copy time against skopeo's. */
const TARGET_PULL_COPY_RATIO: Target = { kind: "ratio", max: 0.7 };
/** Peak RSS of our pull and copy, whatever the image size. */
const TARGET_PULL_COPY_RSS: Target = { kind: "bytes", max: 150e6 };
/** Bytes our pull writes to disk against the archive's size. */
const TARGET_PULL_WRITES: Target = { kind: "ratio", max: 1.05 };

const TAG = "latest";
/** The image with its layers as they are (uncompressed tars): what the pulls fetch. */
const ASIS_REPOSITORY = "bench/asis";
/** The gzip image: what the copies move. */
const GZIP_REPOSITORY = "bench/gzip";
const CURL_PARALLEL = 4;

/** The tools timed. */
export type PullCopyTool = "ours" | "skopeo";

/** What the pull and copy runs need from the benchmark. */
export interface PullCopyBench {
  /** Scratch directory (archives pulled, caches, registries). */
  scratch: string;
  /** Progress lines. */
  log: (line: string) => void;
  /** The command line of our tool with these arguments and a cache directory. */
  ours: (args: string[], cacheDir: string) => TimedCommand;
  /** The environment skopeo and curl run with. */
  env: Record<string, string>;
  /** Times a command into the samples under `key`. */
  measure: (
    key: string,
    run: TimedCommand,
    registries: readonly BenchRegistry[],
  ) => Promise<TimedOutcome>;
  /** Keeps a sample measured outside {@link PullCopyBench.measure} under `key`. */
  keep: (key: string, sample: Sample) => void;
  /** Keeps a byte count under `key`. */
  keepBytes: (key: string, bytes: number) => void;
}

/** A source registry holding the benchmark image twice. */
export interface PullCopySource {
  /** The registry. */
  registry: BenchRegistry;
  /** Stops it. */
  stop(): Promise<void>;
}

/** Starts a source registry and pushes `archive` into it, as it is and with gzip (untimed). */
export async function startPullCopySource(
  bench: PullCopyBench,
  archive: BuiltArchive,
): Promise<PullCopySource> {
  const registry = await startBenchRegistry(bench.scratch);
  try {
    bench.log(`pull/copy: putting the ${formatBytes(archive.size)} image into a source registry`);
    for (
      const [repository, extra] of [
        [ASIS_REPOSITORY, ["--compression", "none"]],
        [GZIP_REPOSITORY, []],
      ] as const
    ) {
      const cache = await Deno.makeTempDir({ dir: bench.scratch, prefix: "cache-" });
      const run = bench.ours(
        ["-f", archive.path, "-r", `${registry.url}/${repository}:${TAG}`, "--quiet", ...extra],
        cache,
      );
      await runQuietly(run);
    }
  } catch (error) {
    await registry.stop();
    throw error;
  }
  return { registry, stop: () => registry.stop() };
}

/** Runs a command untimed; throws with its stderr when it fails. */
async function runQuietly(run: TimedCommand): Promise<void> {
  const output = await new Deno.Command(run.command, {
    args: run.args,
    env: run.env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`${run.command} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
}

/** One pull of the uncompressed image into an archive, with its disk writes and archive size. */
async function timePull(
  bench: PullCopyBench,
  source: PullCopySource,
  tool: PullCopyTool,
  prefix: string,
): Promise<void> {
  const reference = `${source.registry.host}/${ASIS_REPOSITORY}:${TAG}`;
  const output = join(bench.scratch, `pulled-${tool}.tar`);
  await Deno.remove(output).catch(() => {});
  const key = `${prefix}pull/${tool}`;
  let run: TimedCommand;
  if (tool === "ours") {
    const cache = await Deno.makeTempDir({ dir: bench.scratch, prefix: "cache-" });
    run = bench.ours(["pull", reference, "-o", output, "--quiet"], cache);
  } else {
    await clearSkopeoCache();
    run = {
      command: "skopeo",
      args: [
        ...["copy", "--quiet", "--src-tls-verify=false"],
        `docker://${reference}`,
        `docker-archive:${output}:${ASIS_REPOSITORY}:${TAG}`,
      ],
      env: bench.env,
    };
  }
  const { sample } = await bench.measure(key, run, [source.registry]);
  bench.keepBytes(`${key}/archive`, (await Deno.stat(output)).size);
  bench.keepBytes(`${key}/written`, sample.writtenBytes);
  await Deno.remove(output);
}

/** The floor of a pull: curl downloading the uncompressed image's blobs into files, 4 at once. */
async function timePullFloor(
  bench: PullCopyBench,
  source: PullCopySource,
  prefix: string,
): Promise<void> {
  const blobs = await imageBlobs(source.registry, ASIS_REPOSITORY, TAG);
  const dir = await Deno.makeTempDir({ dir: bench.scratch, prefix: "curl-pull-" });
  try {
    const sample = await timeCurlDownloads(
      source.registry,
      ASIS_REPOSITORY,
      blobs,
      CURL_PARALLEL,
      dir,
    );
    bench.keep(`${prefix}pull-floor/curl`, sample);
    bench.log(`  ${prefix}pull-floor/curl: ${formatSeconds(sample.seconds)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** One copy of the gzip image to a fresh registry. */
async function timeCopy(
  bench: PullCopyBench,
  source: PullCopySource,
  tool: PullCopyTool,
  prefix: string,
): Promise<void> {
  const target = await startBenchRegistry(bench.scratch);
  try {
    const from = `${source.registry.host}/${GZIP_REPOSITORY}:${TAG}`;
    const to = `${target.host}/${GZIP_REPOSITORY}:${TAG}`;
    let run: TimedCommand;
    if (tool === "ours") {
      const cache = await Deno.makeTempDir({ dir: bench.scratch, prefix: "cache-" });
      run = bench.ours(["copy", from, to, "--quiet"], cache);
    } else {
      await clearSkopeoCache();
      run = {
        command: "skopeo",
        args: [
          ...["copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"],
          ...[`docker://${from}`, `docker://${to}`],
        ],
        env: bench.env,
      };
    }
    await bench.measure(`${prefix}copy/${tool}`, run, [source.registry, target]);
  } finally {
    await target.stop();
  }
}

/** The floor of a copy: curl moving the gzip image's blobs to a fresh registry, 4 at once. */
async function timeCopyFloor(
  bench: PullCopyBench,
  source: PullCopySource,
  prefix: string,
): Promise<void> {
  const blobs = await imageBlobs(source.registry, GZIP_REPOSITORY, TAG);
  const target = await startBenchRegistry(bench.scratch);
  try {
    const sample = await timeCurlRelay(
      source.registry,
      target,
      GZIP_REPOSITORY,
      blobs,
      CURL_PARALLEL,
    );
    bench.keep(`${prefix}copy-floor/curl`, sample);
    bench.log(`  ${prefix}copy-floor/curl: ${formatSeconds(sample.seconds)}`);
  } finally {
    await target.stop();
  }
}

/**
 * One round of pulls, copies (in the tools' `order`) and, with `floor`, the curl floors; keys
 * start with `prefix` ("" or "large-"). The pull floor runs last when ours runs first and first
 * when ours runs last, so each of the three is timed both early and late over the rounds.
 */
export async function timePullCopyRound(
  bench: PullCopyBench,
  source: PullCopySource,
  order: readonly PullCopyTool[],
  prefix: string,
  floor: boolean,
): Promise<void> {
  const floorFirst = floor && order[0] !== "ours";
  if (floorFirst) await timePullFloor(bench, source, prefix);
  for (const tool of order) await timePull(bench, source, tool, prefix);
  if (floor && !floorFirst) await timePullFloor(bench, source, prefix);
  for (const tool of order) await timeCopy(bench, source, tool, prefix);
  if (floor) await timeCopyFloor(bench, source, prefix);
}

/** Where the tables read their figures. */
export interface PullCopyFigures {
  /** Samples by key. */
  samples: (key: string) => readonly Sample[];
  /** Byte counts by key. */
  bytes: (key: string) => readonly number[];
}

/** The pull and copy rows of a scenario table. */
export function pullCopyRows(figures: PullCopyFigures, prefix: string): ScenarioRow[] {
  return [
    {
      label: "pull to an archive, layers as they are (ours `pull -o`, skopeo `copy docker://… " +
        "docker-archive:…`)",
      ours: figures.samples(`${prefix}pull/ours`),
      skopeo: figures.samples(`${prefix}pull/skopeo`),
      target: TARGET_PULL_COPY_RATIO,
    },
    {
      label:
        "↳ the registry's limit: the same blobs, curl GET into files, 4 at once (not our tool)",
      ours: figures.samples(`${prefix}pull-floor/curl`),
    },
    {
      label: "copy between two local registries, gzip layers (ours `copy`, skopeo `copy " +
        "docker://… docker://…`)",
      ours: figures.samples(`${prefix}copy/ours`),
      skopeo: figures.samples(`${prefix}copy/skopeo`),
      target: TARGET_PULL_COPY_RATIO,
    },
    {
      label:
        "↳ the registries' limit: the same blobs, curl GET piped into PATCH, 4 at once (not our tool)",
      ours: figures.samples(`${prefix}copy-floor/curl`),
    },
  ];
}

function medianSeconds(samples: readonly Sample[]): number {
  return median(samples.map((sample) => sample.seconds));
}

/** The pull and the copy measured against their curl floors: both tools' ratios to each. */
export function floorTable(figures: PullCopyFigures, prefix: string): string {
  const rows = [
    ["pull", "uncompressed image into an archive"],
    ["copy", "gzip image between two local registries"],
  ].map(([command, label]) => {
    const ours = medianSeconds(figures.samples(`${prefix}${command}/ours`));
    const skopeo = medianSeconds(figures.samples(`${prefix}${command}/skopeo`));
    const floor = medianSeconds(figures.samples(`${prefix}${command}-floor/curl`));
    return [
      `${command}: ${label}`,
      formatSeconds(ours),
      formatSeconds(skopeo),
      formatSeconds(floor),
      formatRatio(ours, skopeo),
      formatRatio(ours, floor),
      formatRatio(skopeo, floor),
    ];
  });
  return markdownTable(
    [
      "against the curl floor (medians)",
      "ours",
      "skopeo",
      "curl floor",
      "ours / skopeo",
      "ours / floor",
      "skopeo / floor",
    ],
    rows,
  );
}

/** The peak of the peak RSS samples of a key, formatted. */
function peak(samples: readonly Sample[]): string {
  const peaks = samples.map((sample) => sample.peakRss).filter((rss) => rss > 0);
  return peaks.length > 0 ? formatBytes(Math.max(...peaks)) : "–";
}

/** Peak RSS of pull and copy for each image size (ours against the flat target, skopeo's). */
export function pullCopyMemoryTable(
  figures: PullCopyFigures,
  images: readonly { prefix: string; archive: BuiltArchive }[],
): string {
  const rows: string[][] = [];
  for (const { prefix, archive } of images) {
    for (const command of ["pull", "copy"] as const) {
      const ours = figures.samples(`${prefix}${command}/ours`);
      rows.push([
        formatBytes(archive.size),
        command,
        peak(ours),
        peak(figures.samples(`${prefix}${command}/skopeo`)),
        formatTarget(TARGET_PULL_COPY_RSS),
        rssVerdict(ours, TARGET_PULL_COPY_RSS),
      ]);
    }
  }
  return markdownTable(
    ["image", "command", "ours peak RSS", "skopeo peak RSS", "target", "met"],
    rows,
  );
}

/** Bytes each pull wrote to disk against the size of the archive it made. */
export function pullWritesTable(
  figures: PullCopyFigures,
  images: readonly { prefix: string; archive: BuiltArchive }[],
): string {
  const rows: string[][] = [];
  for (const { prefix, archive } of images) {
    for (const tool of ["ours", "skopeo"] as const) {
      const key = `${prefix}pull/${tool}`;
      // 0 means GNU time was not there to count: no figure rather than a false one.
      const written = figures.bytes(`${key}/written`).filter((bytes) => bytes > 0);
      if (written.length === 0) continue;
      const worst = Math.max(...written);
      const size = median(figures.bytes(`${key}/archive`));
      const ours = tool === "ours";
      rows.push([
        formatBytes(archive.size),
        tool,
        formatBytes(size),
        formatBytes(worst),
        formatRatio(worst, size),
        ours ? formatTarget(TARGET_PULL_WRITES) : "–",
        ours ? (meets(TARGET_PULL_WRITES, worst / size) ? "yes" : "**no**") : "–",
      ]);
    }
  }
  return markdownTable(
    [
      "image",
      "tool",
      "archive written",
      "bytes written to disk (most)",
      "written / archive",
      "target",
      "met",
    ],
    rows,
  );
}
