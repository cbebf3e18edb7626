/**
 * `deno task bench`: times docker-image-pusher against skopeo on a local Distribution registry and
 * prints README-ready markdown tables.
 *
 * ```sh
 * deno task bench                 # ~1.1 GB archive, 3 runs, profile (several minutes)
 * deno task bench --quick         # small archive, 1 run (under a minute; a test runs this)
 * deno task bench --large         # also a ~4.3 GB archive (cold pushes)
 * deno task bench --sweep-concurrency 1,2,4,8 --no-profile
 * deno task bench --long-link     # only the round trips at 100 ms RTT (a few minutes per run)
 * ```
 *
 * The archive is a docker-archive of real files from this machine (shared libraries first) and
 * 256 MiB of pseudo-random bytes, written with GNU tar into a cache directory (nothing lands in
 * the repository). Every push goes to a fresh registry storage, ours (`deno run -A` with the
 * release binaries' V8 setting, as they run) and skopeo's alternating, skopeo's blob-info cache
 * cleared wherever a scenario calls for a fresh machine. Scenarios:
 *
 * 1. cold push with the layers as they are: ours `--compression none`, skopeo
 *    `--preserve-digests` (it then leaves the layers alone), plus the registry's own limit: the
 *    same layers uploaded by 4 parallel curl processes;
 * 2. cold push with gzip, both tools' defaults, and the bytes each pushed;
 * 3. re-push of the unchanged image: with the tool's cache, and on a "fresh machine" (empty cache);
 * 4. push of the same archive to a sibling repository: with the cache, and on a fresh machine
 *    (ours with `--mount-from`);
 * 5. pull of the image into an archive and copy between two registries, beside skopeo and the
 *    registries' own limit, with peak RSS and the bytes the pull wrote: see
 *    {@link ./bench_pull_copy.ts};
 * 6. a second sync of 20 small images, 2 of them changed, beside `skopeo sync`, on loopback and
 *    with the registries 20 ms RTT away: see {@link ./bench_sync.ts};
 * 7. (not with `--quick`) round trips on a long link: see {@link ./bench_long_link.ts}.
 *
 * Peak RSS comes from `/usr/bin/time -f %M` (or `VmHWM` polling), CPU time from the same tool and
 * the registry's `/proc/<pid>/stat`. Progress goes to stderr, the tables to stdout.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PusherError } from "../lib/errors.ts";
import { type ArchivePlan, type BuiltArchive, ensureArchive } from "./bench_archive.ts";
import { BENCH_HELP, type BenchOptions, parseBenchArgs } from "./bench_args.ts";
import { RUNTIME_V8_FLAGS } from "./compile.ts";
import {
  type BenchRegistry,
  clearSkopeoCache,
  pushedBytes,
  startBenchRegistry,
  timeCommand,
  timeCurlUploads,
  type TimedCommand,
  type TimedOutcome,
} from "./bench_process.ts";
import {
  floorTable,
  type PullCopyBench,
  type PullCopyFigures,
  pullCopyMemoryTable,
  pullCopyRows,
  pullWritesTable,
  startPullCopySource,
  timePullCopyRound,
} from "./bench_pull_copy.ts";
import {
  type SyncBench,
  syncBytesTable,
  syncFloorTable,
  type SyncLink,
  syncRows,
  type SyncTallies,
  type SyncWorkload,
  timeSyncs,
} from "./bench_sync.ts";
import { LINK_SYNC_IMAGES, longLinkTable, measureLongLink, ONE_WAY_MS } from "./bench_long_link.ts";
import { type Profile, profileStages, type StageTiming } from "./bench_profile.ts";
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
  scenarioTable,
  type Target,
} from "./bench_report.ts";

/** The repository root. */
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MIB = 1024 * 1024;
/** Where real files come from, in order. */
const SOURCES = ["/usr/lib", "/usr/lib64", "/usr/share", "/usr/bin", "/usr/libexec"];
/** The default archive: ~805 MB of real files (every shared library here) + 256 MiB random. */
const STANDARD: ArchivePlan = { realBytes: 768 * MIB, randomBytes: 256 * MIB, sources: SOURCES };
/** `--large`: ~3.2 GB of real files + 1 GiB random. */
const LARGE: ArchivePlan = { realBytes: 3072 * MIB, randomBytes: 1024 * MIB, sources: SOURCES };
/** `--quick`: ~25 MB of real files + 8 MiB random. */
const QUICK: ArchivePlan = { realBytes: 24 * MIB, randomBytes: 8 * MIB, sources: SOURCES };
/** The sync workload: 20 small images, 2 of them changed before each second run. */
const STANDARD_SYNC: SyncWorkload = { images: 20, changed: 2, randomBytes: 1024 * 1024 };
/** `--quick`: 5 tiny images, 2 changed. */
const QUICK_SYNC: SyncWorkload = { images: 5, changed: 2, randomBytes: 64 * 1024 };
const COMMAND_TIMEOUT_MS = 20 * 60_000;
const TAG = "latest";
const APP = "bench/app";
const SIBLING = "bench/sibling";
const SIBLING_FRESH = "bench/sibling-fresh";

const TARGET_TIME_RATIO: Target = { kind: "ratio", max: 0.6 };
const TARGET_BYTES_RATIO: Target = { kind: "ratio", max: 1.05 };
const TARGET_REPUSH: Target = { kind: "seconds", max: 0.5 };
const TARGET_SIBLING: Target = { kind: "seconds", max: 1 };
const TARGET_RSS: Target = { kind: "bytes", max: 150e6 };

/** The tools timed. */
type Tool = "ours" | "skopeo";

/** Everything a run shares. */
interface Bench {
  options: BenchOptions;
  main: string;
  scratch: string;
  samples: Map<string, Sample[]>;
  bytes: Map<string, number[]>;
  log: (line: string) => void;
}

function record<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key) ?? [];
  list.push(value);
  map.set(key, list);
}

/** The environment children get: ours, minus any DOCKER_PUSHER_* setting. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(Deno.env.toObject())) {
    if (!key.startsWith("DOCKER_PUSHER_")) env[key] = value;
  }
  env["NO_COLOR"] = "1";
  return env;
}

/** Our push of `archive` to `repository` with the cache in `cacheDir`. */
function ours(
  bench: Bench,
  archive: BuiltArchive,
  registry: BenchRegistry,
  repository: string,
  cacheDir: string,
  extra: string[] = [],
): TimedCommand {
  return {
    command: Deno.execPath(),
    args: [
      ...["run", "-A", "--no-prompt", RUNTIME_V8_FLAGS, bench.main],
      ...["-f", archive.path, "-r", `${registry.url}/${repository}:${TAG}`, "--quiet", ...extra],
    ],
    env: { ...baseEnv(), DOCKER_PUSHER_CACHE_DIR: cacheDir },
  };
}

/** skopeo's copy of `archive` to `repository`. */
function skopeo(
  archive: BuiltArchive,
  registry: BenchRegistry,
  repository: string,
  extra: string[] = [],
): TimedCommand {
  return {
    command: "skopeo",
    args: [
      ...["copy", "--quiet", "--dest-tls-verify=false", ...extra],
      `docker-archive:${archive.path}`,
      `docker://${registry.host}/${repository}:${TAG}`,
    ],
    env: baseEnv(),
  };
}

/** A fresh, empty cache directory for our tool. */
async function freshCache(bench: Bench): Promise<string> {
  return await Deno.makeTempDir({ dir: bench.scratch, prefix: "cache-" });
}

/** Times one command into `key`, with the CPU time `registries` spent meanwhile. */
async function measure(
  bench: Bench,
  key: string,
  run: TimedCommand,
  registries: readonly BenchRegistry[],
): Promise<TimedOutcome> {
  const outcome = await timeCommand(run, registries, COMMAND_TIMEOUT_MS);
  const { sample } = outcome;
  record(bench.samples, key, sample);
  bench.log(
    `  ${key}: ${formatSeconds(sample.seconds)}, peak RSS ${formatBytes(sample.peakRss)}, ` +
      `CPU ${sample.cpuSeconds.toFixed(2)} s, registry CPU ${
        sample.registryCpuSeconds.toFixed(2)
      } s`,
  );
  return outcome;
}

/** Runs `work` against a fresh registry, stopping it afterwards. */
async function withRegistry<T>(
  bench: Bench,
  work: (registry: BenchRegistry) => Promise<T>,
): Promise<T> {
  const registry = await startBenchRegistry(bench.scratch);
  try {
    return await work(registry);
  } finally {
    await registry.stop();
  }
}

/** Cold push with the layers as they are; `prefix` names the archive in the keys. */
async function coldAsIs(
  bench: Bench,
  archive: BuiltArchive,
  tool: Tool,
  prefix: string,
  extra: string[] = [],
): Promise<void> {
  await withRegistry(bench, async (registry) => {
    const key = `${prefix}asis${extra.join("")}/${tool}`;
    if (tool === "ours") {
      const cache = await freshCache(bench);
      await measure(
        bench,
        key,
        ours(bench, archive, registry, APP, cache, ["--compression", "none", ...extra]),
        [registry],
      );
    } else {
      await clearSkopeoCache();
      await measure(bench, key, skopeo(archive, registry, APP, ["--preserve-digests"]), [registry]);
    }
    record(bench.bytes, key, await pushedBytes(registry, APP, TAG));
  });
}

/** Cold gzip push, then (unless `coldOnly`) re-pushes and sibling pushes on the same registry. */
async function gzipFlow(
  bench: Bench,
  archive: BuiltArchive,
  tool: Tool,
  prefix: string,
  coldOnly: boolean,
  extra: string[] = [],
): Promise<void> {
  await withRegistry(bench, async (registry) => {
    const key = (scenario: string): string => `${prefix}${scenario}${extra.join("")}/${tool}`;
    if (tool === "ours") {
      const cache = await freshCache(bench);
      await measure(
        bench,
        key("gzip"),
        ours(bench, archive, registry, APP, cache, extra),
        [registry],
      );
      record(bench.bytes, key("gzip"), await pushedBytes(registry, APP, TAG));
      if (coldOnly) return;
      await measure(bench, key("repush"), ours(bench, archive, registry, APP, cache), [registry]);
      const fresh = await freshCache(bench);
      await measure(
        bench,
        key("repush-fresh"),
        ours(bench, archive, registry, APP, fresh),
        [registry],
      );
      await measure(
        bench,
        key("sibling"),
        ours(bench, archive, registry, SIBLING, cache),
        [registry],
      );
      const other = await freshCache(bench);
      await measure(
        bench,
        key("sibling-fresh"),
        ours(bench, archive, registry, SIBLING_FRESH, other, ["--mount-from", APP]),
        [registry],
      );
    } else {
      await clearSkopeoCache();
      await measure(bench, key("gzip"), skopeo(archive, registry, APP), [registry]);
      record(bench.bytes, key("gzip"), await pushedBytes(registry, APP, TAG));
      if (coldOnly) return;
      await measure(bench, key("repush"), skopeo(archive, registry, APP), [registry]);
      await clearSkopeoCache();
      await measure(bench, key("repush-fresh"), skopeo(archive, registry, APP), [registry]);
      await measure(bench, key("sibling"), skopeo(archive, registry, SIBLING), [registry]);
      await clearSkopeoCache();
      await measure(
        bench,
        key("sibling-fresh"),
        skopeo(archive, registry, SIBLING_FRESH),
        [registry],
      );
    }
  });
}

/** The registry's ingest limit for the archive's layers: 4 parallel curl uploads. */
async function curlFloor(bench: Bench, archive: BuiltArchive, prefix: string): Promise<void> {
  await withRegistry(bench, async (registry) => {
    const blobs = archive.layers.map((layer) => ({
      path: layer.path,
      digest: layer.diffId,
      size: layer.size,
    }));
    const sample = await timeCurlUploads(registry, blobs, 4);
    record(bench.samples, `${prefix}floor/curl`, sample);
    bench.log(`  ${prefix}floor/curl: ${formatSeconds(sample.seconds)}`);
  });
}

/** What the pull and copy runs use of the benchmark. */
function pullCopyBench(bench: Bench): PullCopyBench {
  return {
    scratch: bench.scratch,
    log: bench.log,
    env: baseEnv(),
    ours: (args, cacheDir) => ({
      command: Deno.execPath(),
      args: ["run", "-A", "--no-prompt", RUNTIME_V8_FLAGS, bench.main, ...args],
      env: { ...baseEnv(), DOCKER_PUSHER_CACHE_DIR: cacheDir },
    }),
    measure: (key, run, registries) => measure(bench, key, run, registries),
    keep: (key, sample) => record(bench.samples, key, sample),
    keepBytes: (key, bytes) => record(bench.bytes, key, bytes),
  };
}

/** Pulls and copies of the image (and of the large one, ours only), `runs` rounds. */
async function pullCopyFlow(
  bench: Bench,
  archive: BuiltArchive,
  large: BuiltArchive | undefined,
): Promise<void> {
  const runner = pullCopyBench(bench);
  const source = await startPullCopySource(runner, archive);
  try {
    for (let run = 0; run < bench.options.runs; run++) {
      bench.log(`pull/copy: run ${run + 1} of ${bench.options.runs}`);
      await timePullCopyRound(runner, source, order(run), "", true);
    }
  } finally {
    await source.stop();
  }
  if (large === undefined) return;
  const largeSource = await startPullCopySource(runner, large);
  try {
    for (let run = 0; run < bench.options.runs; run++) {
      bench.log(`pull/copy, ~4 GB image: run ${run + 1} of ${bench.options.runs}`);
      await timePullCopyRound(runner, largeSource, ["ours"], "large-", false);
    }
  } finally {
    await largeSource.stop();
  }
}

/** Our tallies of the second syncs, on loopback and across the sync's link. */
interface SyncResults {
  near: SyncTallies;
  far: SyncTallies;
}

/** The sync's link: registries 20 ms RTT away, as in a neighbouring region. */
const SYNC_LINK: SyncLink = { oneWayMs: 10 };
/** `--quick`: 4 ms RTT. */
const QUICK_SYNC_LINK: SyncLink = { oneWayMs: 2 };

/** The sync runs of the benchmark: on loopback, then with the registries across a link. */
async function syncFlow(bench: Bench, workload: SyncWorkload): Promise<SyncResults> {
  const runner: SyncBench = {
    main: bench.main,
    scratch: bench.scratch,
    runs: bench.options.runs,
    log: bench.log,
    env: baseEnv(),
    order,
    measure: (key, run, registries) => measure(bench, key, run, registries),
    keep: (key, sample) => record(bench.samples, key, sample),
  };
  const near = await timeSyncs(runner, workload);
  const far = await timeSyncs(runner, workload, syncLink(bench));
  return { near, far };
}

/** The sync's link of this run. */
function syncLink(bench: Bench): SyncLink {
  return bench.options.quick ? QUICK_SYNC_LINK : SYNC_LINK;
}

/** The tools in the order run `index` uses: alternating who goes first. */
function order(index: number): Tool[] {
  return index % 2 === 0 ? ["ours", "skopeo"] : ["skopeo", "ours"];
}

/** First line of a command's output, or `unknown`. */
async function versionOf(command: string, args: string[]): Promise<string> {
  try {
    const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    return text.trim().split("\n")[0] ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** CPU model, cores and memory of this machine. */
async function machine(): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU";
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const memory = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? Number.NaN) * 1024;
  return `${model}, ${navigator.hardwareConcurrency} cores (nproc), ${formatBytes(memory)} RAM`;
}

/** How an archive reads in the report. */
function describe(archive: BuiltArchive): string {
  const real = archive.layers.filter((layer) => layer.kind === "real").length;
  return `${formatBytes(archive.size)} docker-archive: ${real} layers of real files ` +
    `(${formatBytes(archive.realBytes)}, shared libraries first), ` +
    `${formatBytes(archive.randomBytes)} of random bytes in one layer, one small layer`;
}

function samplesOf(bench: Bench, key: string): Sample[] {
  return bench.samples.get(key) ?? [];
}

/** The rows of the main table for an archive (`prefix` "" or "large-"). */
function scenarioRows(bench: Bench, prefix: string, full: boolean): ScenarioRow[] {
  const rows: ScenarioRow[] = [
    {
      label: "cold push, layers as they are (ours `--compression none`, skopeo " +
        "`--preserve-digests`)",
      ours: samplesOf(bench, `${prefix}asis/ours`),
      skopeo: samplesOf(bench, `${prefix}asis/skopeo`),
      target: TARGET_TIME_RATIO,
    },
  ];
  if (full) {
    rows.push({
      label: "↳ the registry's limit: the same layers, 4 parallel curl uploads (not our tool)",
      ours: samplesOf(bench, `${prefix}floor/curl`),
    });
  }
  rows.push({
    label: "cold push, gzip (both tools' defaults)",
    ours: samplesOf(bench, `${prefix}gzip/ours`),
    skopeo: samplesOf(bench, `${prefix}gzip/skopeo`),
    target: TARGET_TIME_RATIO,
  });
  if (!full) return rows;
  rows.push(
    {
      label: "re-push, nothing changed (with the tool's cache)",
      ours: samplesOf(bench, "repush/ours"),
      skopeo: samplesOf(bench, "repush/skopeo"),
      target: TARGET_REPUSH,
    },
    {
      label: "re-push, nothing changed, fresh machine (empty cache)",
      ours: samplesOf(bench, "repush-fresh/ours"),
      skopeo: samplesOf(bench, "repush-fresh/skopeo"),
    },
    {
      label: "sibling repository, same registry (with the tool's cache)",
      ours: samplesOf(bench, "sibling/ours"),
      skopeo: samplesOf(bench, "sibling/skopeo"),
      target: TARGET_SIBLING,
    },
    {
      label: "sibling repository, fresh machine (ours `--mount-from bench/app`)",
      ours: samplesOf(bench, "sibling-fresh/ours"),
      skopeo: samplesOf(bench, "sibling-fresh/skopeo"),
    },
  );
  return rows;
}

/** The pushed-bytes table. */
function bytesTable(bench: Bench, prefix: string): string {
  const row = (label: string, key: string, target?: Target): string[] => {
    const ours = median(bench.bytes.get(`${prefix}${key}/ours`) ?? []);
    const theirs = median(bench.bytes.get(`${prefix}${key}/skopeo`) ?? []);
    return [
      label,
      formatBytes(ours),
      formatBytes(theirs),
      formatRatio(ours, theirs),
      target ? formatTarget(target) : "–",
      target ? (meets(target, ours / theirs) ? "yes" : "**no**") : "–",
    ];
  };
  return markdownTable([
    "bytes pushed (layers + config)",
    "ours",
    "skopeo",
    "ratio",
    "target",
    "met",
  ], [
    row("layers as they are", "asis"),
    row("gzip", "gzip", TARGET_BYTES_RATIO),
  ]);
}

/** The memory table over every archive pushed. */
function memoryTable(bench: Bench, archives: { prefix: string; archive: BuiltArchive }[]): string {
  const rows: string[][] = [];
  for (const { prefix, archive } of archives) {
    for (const [mode, key] of [["layers as they are", "asis"], ["gzip", "gzip"]] as const) {
      const oursSamples = samplesOf(bench, `${prefix}${key}/ours`);
      const peak = (samples: Sample[]): string =>
        samples.length > 0
          ? formatBytes(Math.max(...samples.map((sample) => sample.peakRss)))
          : "–";
      rows.push([
        formatBytes(archive.size),
        mode,
        peak(oursSamples),
        peak(samplesOf(bench, `${prefix}${key}/skopeo`)),
        formatTarget(TARGET_RSS),
        rssVerdict(oursSamples, TARGET_RSS),
      ]);
    }
  }
  return markdownTable([
    "archive",
    "cold push",
    "ours peak RSS",
    "skopeo peak RSS",
    "target",
    "met",
  ], rows);
}

/** Median CPU seconds of a key's samples (process, then registry). */
function cpu(bench: Bench, key: string): [string, string] {
  const samples = samplesOf(bench, key);
  if (samples.length === 0) return ["–", "–"];
  return [
    `${median(samples.map((sample) => sample.cpuSeconds)).toFixed(2)} s`,
    `${median(samples.map((sample) => sample.registryCpuSeconds)).toFixed(2)} s`,
  ];
}

/** Where the CPU went during the timed cold pushes (medians). */
function cpuTable(bench: Bench): string {
  const rows: string[][] = [];
  for (const [mode, key] of [["layers as they are", "asis"], ["gzip", "gzip"]] as const) {
    for (const tool of ["ours", "skopeo"] as const) {
      const wall = median(samplesOf(bench, `${key}/${tool}`).map((sample) => sample.seconds));
      rows.push([mode, tool, formatSeconds(wall), ...cpu(bench, `${key}/${tool}`)]);
    }
  }
  return markdownTable(["cold push", "tool", "wall", "tool CPU (user+sys)", "registry CPU"], rows);
}

/** The stage profile table. */
function profileTable(stages: readonly StageTiming[]): string {
  return markdownTable(
    ["stage", "bytes", "wall", "CPU", "rate"],
    stages.map((stage) => [
      stage.stage,
      formatBytes(stage.bytes),
      formatSeconds(stage.seconds),
      `${stage.cpuSeconds.toFixed(2)} s`,
      `${formatBytes(stage.bytes / stage.seconds)}/s`,
    ]),
  );
}

/** The gzip levels tried on the real-file layers, with the whole image's bytes they imply. */
function levelTable(bench: Bench, profile: Profile): string {
  const skopeoBytes = median(bench.bytes.get("gzip/skopeo") ?? []);
  return markdownTable(
    ["gzip level", "wall (all workers)", "CPU", "real-file layers →", "image bytes / skopeo's"],
    profile.levels.map((level) => {
      const ratio = (level.output + profile.otherOutput) / skopeoBytes;
      return [
        String(level.level),
        formatSeconds(level.seconds),
        `${level.cpuSeconds.toFixed(2)} s`,
        `${formatBytes(level.output)} (${(100 * level.output / level.input).toFixed(1)} %)`,
        Number.isFinite(ratio) ? `${ratio.toFixed(3)}×` : "–",
      ];
    }),
  );
}

/** The concurrency sweep table. */
function sweepTable(bench: Bench, values: readonly number[]): string {
  const cell = (key: string): string =>
    formatSeconds(median(samplesOf(bench, key).map((sample) => sample.seconds)));
  const rss = (key: string): string => {
    const samples = samplesOf(bench, key);
    return samples.length > 0
      ? formatBytes(Math.max(...samples.map((sample) => sample.peakRss)))
      : "–";
  };
  return markdownTable(
    ["--max-concurrent", "as they are", "peak RSS", "gzip", "peak RSS"],
    values.map((value) => {
      const flag = `--max-concurrent${value}`;
      return [
        String(value),
        cell(`asis${flag}/ours`),
        rss(`asis${flag}/ours`),
        cell(`gzip${flag}/ours`),
        rss(`gzip${flag}/ours`),
      ];
    }),
  );
}

/** `--long-link --quick`: a 5 ms one-way delay and 3 images in the sync's list. */
const QUICK_LINK = { oneWayMs: 5, syncImages: 3 } as const;

/** The long-link section: round trips through delay proxies, with the machine and date. */
async function longLinkSection(bench: Bench, header: boolean): Promise<string[]> {
  const { oneWayMs, syncImages } = bench.options.quick
    ? QUICK_LINK
    : { oneWayMs: ONE_WAY_MS, syncImages: LINK_SYNC_IMAGES };
  const rtt = 2 * oneWayMs;
  bench.log(`long link: commands through delay proxies at 0 and ${rtt} ms round trip`);
  const samples = await measureLongLink({
    main: bench.main,
    scratch: bench.scratch,
    runs: bench.options.runs,
    oneWayMs,
    syncImages,
    log: bench.log,
    env: baseEnv(),
  });
  const lines = header
    ? [
      "## Benchmark: round trips on a long link",
      "",
      `- Machine: ${await machine()}`,
      `- Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
      `- Command: \`${["deno task bench", ...Deno.args].join(" ")}\` (${bench.options.runs} ` +
      `run${bench.options.runs === 1 ? "" : "s"} per cell, fastest of each)`,
      `- Tools: Deno ${Deno.version.deno}, ${await versionOf("skopeo", ["--version"])}, ` +
      `${await versionOf("docker-registry", ["--version"])}`,
    ]
    : ["### Round trips on a long link", ""];
  lines.push(
    "- Registries behind a TCP proxy that holds every packet " +
      `${oneWayMs} ms each way (a new connection costs one more round trip); round trips = ` +
      `(time at ${rtt} ms RTT − time at 0 ms) / ${rtt} ms. A three-layer image of about ` +
      "200 kB: cold push to a new repository with empty caches, the same push again, a pull of " +
      "it into an archive, a copy of it to a second registry behind its own proxy; then a " +
      `second sync (ours \`sync()\`, skopeo \`sync --src yaml\`) of ${syncImages} small images ` +
      "between those registries, none changed since the first. Three auth modes: plain HTTP; " +
      "bearer tokens from an auth host elsewhere (each registry's token server behind its own " +
      "delayed proxy, like auth.docker.io), where the copy is timed twice, into new " +
      "repositories: with the cache of those runs, which has never met the second registry, " +
      "then with a cache that learnt both token realms from an untimed copy of another image; " +
      "and bearer tokens on the registry's own host (nginx serving the registry's /v2/ and the " +
      "token server's /token behind one delayed proxy, like Harbor or GHCR), where the push, " +
      "re-push, pull and first-contact copy are timed.",
    "",
    longLinkTable(samples, oneWayMs, syncImages),
    "",
  );
  return lines;
}

/** The sync section of the report: both tools, the curl floor, and what our second runs sent. */
function syncSection(bench: Bench, workload: SyncWorkload, results: SyncResults): string[] {
  const samples = (key: string): readonly Sample[] => samplesOf(bench, key);
  const link = syncLink(bench);
  return [
    "### Sync",
    "",
    `- ${workload.images} images of three layers (${
      formatBytes(workload.randomBytes)
    } of random bytes in the last) put into a source registry with skopeo; each tool syncs ` +
    `them into a registry of its own, then ${workload.changed} images change at the source ` +
    "and the second runs are timed. The floor is curl doing only the requests the job needs: " +
    "the manifest HEADs of both sides in one `curl --parallel`, then for each changed image " +
    "the manifest GET, each blob's GET beside its upload's POST, the closing PUT, the manifest PUT.",
    "- The same job twice: with the registries on loopback, then with each registry behind a " +
    `proxy that holds every packet ${link.oneWayMs} ms each way (${2 * link.oneWayMs} ms round ` +
    "trip, a new connection one more), as registries in a neighbouring region would be.",
    "",
    scenarioTable([...syncRows(samples, workload), ...syncRows(samples, workload, link)]),
    "",
    syncFloorTable(samples, workload),
    "",
    syncFloorTable(samples, workload, link),
    "",
    syncBytesTable(results.near, workload),
    "",
    syncBytesTable(results.far, workload, `our second runs, ${2 * link.oneWayMs} ms RTT`),
    "",
  ];
}

/** The machine, date and command of a one-section report (`--sync-only`, `--pull-copy-only`). */
async function runLines(bench: Bench): Promise<string[]> {
  const runs = bench.options.runs;
  return [
    `- Machine: ${await machine()}`,
    `- Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    `- Command: \`${["deno task bench", ...Deno.args].join(" ")}\` (${runs} ` +
    `run${runs === 1 ? "" : "s"}, medians, min–max in brackets)`,
  ];
}

/** `--sync-only`: the sync section alone. */
async function syncOnlyReport(bench: Bench): Promise<string> {
  const workload = bench.options.quick ? QUICK_SYNC : STANDARD_SYNC;
  const results = await syncFlow(bench, workload);
  return [
    "## Benchmark: sync, docker-image-pusher against skopeo",
    "",
    ...await runLines(bench),
    "",
    ...syncSection(bench, workload, results),
  ].join("\n");
}

/** The pull and copy samples and byte counts of the run, as the report's tables read them. */
function pullCopyFigures(bench: Bench): PullCopyFigures {
  return {
    samples: (key: string) => samplesOf(bench, key),
    bytes: (key: string) => bench.bytes.get(key) ?? [],
  };
}

/** The pull and copy section of the report: both tools, the curl floors, memory and disk writes. */
function pullCopySection(
  bench: Bench,
  archives: readonly { prefix: string; archive: BuiltArchive }[],
): string[] {
  const figures = pullCopyFigures(bench);
  return [
    "### Pull and copy",
    "",
    `- The same image in a source registry, put there by our push twice: layers as they are ` +
    "(what the pulls fetch) and gzip (what the copies move); each copy goes to a fresh registry.",
    "",
    scenarioTable(pullCopyRows(figures, "")),
    "",
    floorTable(figures, ""),
    "",
    pullCopyMemoryTable(figures, archives),
    "",
    pullWritesTable(figures, archives),
    "",
  ];
}

/** `--pull-copy-only`: the pull and copy section alone, on the standard (or quick) archive. */
async function pullCopyOnlyReport(bench: Bench, workDir: string): Promise<string> {
  const archive = await ensureArchive(workDir, bench.options.quick ? QUICK : STANDARD, bench.log);
  bench.log(`archive: ${describe(archive)}`);
  await pullCopyFlow(bench, archive, undefined);
  return [
    "## Benchmark: pull and copy, docker-image-pusher against skopeo",
    "",
    ...await runLines(bench),
    `- Archive: ${describe(archive)}`,
    "",
    ...pullCopySection(bench, [{ prefix: "", archive }]),
  ].join("\n");
}

/** Runs the benchmark and returns the markdown report. */
async function runBench(bench: Bench, workDir: string): Promise<string> {
  const { options } = bench;
  if (options.longLink) return (await longLinkSection(bench, true)).join("\n");
  if (options.syncOnly) return await syncOnlyReport(bench);
  if (options.pullCopyOnly) return await pullCopyOnlyReport(bench, workDir);
  const plan = options.quick ? QUICK : STANDARD;
  const archive = await ensureArchive(workDir, plan, bench.log);
  const large = options.large ? await ensureArchive(workDir, LARGE, bench.log) : undefined;
  bench.log(`archive: ${describe(archive)}`);
  await versionOf(Deno.execPath(), ["run", "-A", "--no-prompt", bench.main, "--version"]);
  for (let run = 0; run < options.runs; run++) {
    bench.log(`run ${run + 1} of ${options.runs}`);
    for (const tool of order(run)) await coldAsIs(bench, archive, tool, "");
    await curlFloor(bench, archive, "");
    for (const tool of order(run)) await gzipFlow(bench, archive, tool, "", false);
    for (const value of options.sweepConcurrency) {
      const extra = ["--max-concurrent", String(value)];
      await coldAsIs(bench, archive, "ours", "", extra);
      await gzipFlow(bench, archive, "ours", "", true, extra);
    }
    if (large !== undefined) {
      for (const tool of order(run)) await coldAsIs(bench, large, tool, "large-");
      for (const tool of order(run)) await gzipFlow(bench, large, tool, "large-", true);
    }
  }
  await pullCopyFlow(bench, archive, large);
  const workload = options.quick ? QUICK_SYNC : STANDARD_SYNC;
  const syncResults = await syncFlow(bench, workload);
  const profile = options.profile
    ? await profileStages(archive, bench.scratch, bench.log)
    : undefined;

  const command = ["deno task bench", ...Deno.args].join(" ");
  const sections = [
    "## Benchmark: docker-image-pusher against skopeo",
    "",
    `- Machine: ${await machine()}`,
    `- Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    `- Command: \`${command}\` (${options.runs} run${options.runs === 1 ? "" : "s"}, medians, ` +
    "min–max in brackets)",
    `- Tools: Deno ${Deno.version.deno}, ${await versionOf("skopeo", ["--version"])}, ` +
    `${await versionOf("docker-registry", ["--version"])} on loopback, fresh storage per push`,
    `- Archive: ${describe(archive)}`,
    "",
    scenarioTable(scenarioRows(bench, "", true)),
    "",
    bytesTable(bench, ""),
    "",
  ];
  if (large !== undefined) {
    sections.push(
      `### ~4 GB archive: ${describe(large)}`,
      "",
      scenarioTable(scenarioRows(bench, "large-", false)),
      "",
      bytesTable(bench, "large-"),
      "",
    );
  }
  const archives = [{ prefix: "", archive }];
  if (large !== undefined) archives.push({ prefix: "large-", archive: large });
  sections.push("### Peak memory", "", memoryTable(bench, archives), "");
  const figures = pullCopyFigures(bench);
  sections.push(...pullCopySection(bench, archives));
  if (large !== undefined) {
    sections.push(
      "#### ~4 GB image, ours only",
      "",
      // Ours only, no floor (the rows with a target): no skopeo figure to hold a ratio against.
      scenarioTable(
        pullCopyRows(figures, "large-")
          .filter((row) => row.target !== undefined)
          .map(({ label, ours }) => ({ label, ours })),
      ),
      "",
    );
  }
  sections.push(...syncSection(bench, workload, syncResults));
  sections.push("### CPU during the cold pushes", "", cpuTable(bench), "");
  if (options.sweepConcurrency.length > 0) {
    sections.push(
      "### Our cold pushes by `--max-concurrent`",
      "",
      sweepTable(bench, options.sweepConcurrency),
      "",
    );
  }
  if (!options.quick) sections.push(...await longLinkSection(bench, false));
  if (profile !== undefined) {
    sections.push(
      "### Where the time goes (stages measured alone, in one process)",
      "",
      profileTable(profile.stages),
      "",
      "### gzip level of the real-file layers",
      "",
      levelTable(bench, profile),
      "",
    );
  }
  if (options.json !== undefined) {
    await Deno.writeTextFile(
      options.json,
      JSON.stringify(
        {
          samples: Object.fromEntries(bench.samples),
          bytes: Object.fromEntries(bench.bytes),
          syncTallies: syncResults,
          profile: profile ?? null,
        },
        null,
        2,
      ),
    );
  }
  return sections.join("\n");
}

/** The default place for built archives. */
function defaultWorkDir(): string {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const base = xdg ?? join(Deno.env.get("HOME") ?? ".", ".cache");
  return join(base, "docker-image-pusher-bench");
}

/** Entry point; returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchArgs(args);
  } catch (error) {
    if (error instanceof PusherError) {
      console.error(`error: ${error.message}${error.hint ? ` (${error.hint})` : ""}`);
      return 2;
    }
    throw error;
  }
  if (options.help) {
    console.log(BENCH_HELP);
    return 0;
  }
  const temporaryWork = options.quick && options.workDir === undefined;
  const workDir = options.workDir ??
    (temporaryWork ? await Deno.makeTempDir({ prefix: "bench-work-" }) : defaultWorkDir());
  await Deno.mkdir(workDir, { recursive: true });
  const scratch = await Deno.makeTempDir({ dir: workDir, prefix: "scratch-" });
  const bench: Bench = {
    options,
    main: options.main ?? join(ROOT, "main.ts"),
    scratch,
    samples: new Map(),
    bytes: new Map(),
    log: (line) => console.error(line),
  };
  try {
    console.log(await runBench(bench, workDir));
    return 0;
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await Deno.remove(temporaryWork ? workDir : scratch, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
