import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { PusherError } from "../../lib/errors.ts";
import {
  type BuiltArchive,
  isSharedLibrary,
  planKey,
  splitByShares,
} from "../../scripts/bench_archive.ts";
import { parseBenchArgs, parseIntegerList } from "../../scripts/bench_args.ts";
import {
  LINK_SCENARIOS,
  linkCommand,
  type LinkJob,
  type LinkScenario,
  realmWarmupCommand,
} from "../../scripts/bench_link_commands.ts";
import { LINK_AUTHS, type LinkAuth } from "../../scripts/bench_link_registry.ts";
import {
  LINK_SYNC_IMAGES,
  type LinkSamples,
  linkScenarios,
  longLinkTable,
  ONE_WAY_MS,
  roundTrips,
  roundTripTarget,
  sampleKey,
} from "../../scripts/bench_long_link.ts";
import {
  parseStatCpuSeconds,
  parseTimeOutput,
  skopeoCachePath,
} from "../../scripts/bench_process.ts";
import {
  floorTable,
  pullCopyMemoryTable,
  pullCopyRows,
  pullWritesTable,
} from "../../scripts/bench_pull_copy.ts";
import { syncBytesTable, syncFloorTable, syncKey, syncRows } from "../../scripts/bench_sync.ts";
import {
  ourSyncCommand,
  syncImageRepositories,
  tallySyncResult,
  writeDockerConfig,
  writeSkopeoSyncYaml,
  writeSyncList,
} from "../../scripts/bench_sync_images.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import {
  formatBytes,
  formatRatio,
  formatSeconds,
  formatSummary,
  formatTarget,
  markdownTable,
  median,
  meets,
  rssVerdict,
  type Sample,
  scenarioTable,
  summarize,
} from "../../scripts/bench_report.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function usageError(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof PusherError, String(error));
    assert.equal(error.kind, "usage");
    assert.match(error.message, pattern);
    return true;
  };
}

function sample(seconds: number, peakRss = 0): Sample {
  return { seconds, peakRss, cpuSeconds: 0, registryCpuSeconds: 0, writtenBytes: 0 };
}

Deno.test("bench args: defaults, quick, and every option", () => {
  assert.deepEqual(parseBenchArgs([]), {
    runs: 3,
    quick: false,
    large: false,
    workDir: undefined,
    main: undefined,
    sweepConcurrency: [],
    profile: true,
    json: undefined,
    longLink: false,
    syncOnly: false,
    pullCopyOnly: false,
    help: false,
  });
  assert.equal(parseBenchArgs(["--sync-only"]).syncOnly, true);
  assert.equal(parseBenchArgs(["--pull-copy-only"]).pullCopyOnly, true);
  const quick = parseBenchArgs(["--quick"]);
  assert.equal(quick.runs, 1);
  assert.equal(quick.profile, false, "quick mode skips the profile");
  const all = parseBenchArgs([
    ...["--runs", "5", "--large", "--work-dir", "/w", "--main", "/m/main.ts"],
    ...["--sweep-concurrency", "1, 2,8", "--no-profile", "--json", "/o.json"],
  ]);
  assert.equal(all.runs, 5);
  assert.equal(all.large, true);
  assert.equal(all.workDir, "/w");
  assert.equal(all.main, "/m/main.ts");
  assert.deepEqual(all.sweepConcurrency, [1, 2, 8]);
  assert.equal(all.profile, false);
  assert.equal(all.json, "/o.json");
  assert.equal(parseBenchArgs(["--quick", "--runs", "2"]).runs, 2);
  assert.equal(parseBenchArgs(["-h"]).help, true);
});

Deno.test("bench long link: --long-link, round trips from the fastest runs, the table", () => {
  assert.equal(parseBenchArgs(["--long-link"]).longLink, true);
  assert.equal(ONE_WAY_MS, 50);
  assert.equal(LINK_SYNC_IMAGES, 20);
  // Fastest at 100 ms RTT minus fastest at 0 ms, in round trips: (1.0 - 0.4) / 0.1 = 6.
  assert.ok(Math.abs(roundTrips([0.5, 0.4, 0.9], [1.2, 1.0, 1.1], 50) - 6) < 1e-9);
  // At 10 ms RTT the same difference is ten times as many round trips.
  assert.ok(Math.abs(roundTrips([0.4], [1.0], 5) - 60) < 1e-9);
  assert.ok(Number.isNaN(roundTrips([], [1], 50)));
  const samples: LinkSamples = new Map();
  const put = (
    auth: LinkAuth,
    tool: "ours" | "skopeo",
    scenario: LinkScenario,
    fast: number,
    slow: number,
  ): void => {
    samples.set(sampleKey(auth, tool, scenario, 0), [fast]);
    samples.set(sampleKey(auth, tool, scenario, ONE_WAY_MS), [slow]);
  };
  put("plain", "ours", "cold", 0.5, 0.9);
  put("plain", "skopeo", "cold", 0.3, 2.5);
  put("plain", "ours", "repush", 0.3, 0.5);
  put("plain", "ours", "pull", 0.3, 0.8);
  put("plain", "skopeo", "pull", 0.2, 1.4);
  put("plain", "ours", "copy", 0.4, 1.2);
  put("plain", "ours", "sync", 0.3, 0.7);
  put("token-elsewhere", "ours", "cold", 0.5, 1.3);
  put("token-elsewhere", "ours", "copy", 0.4, 1.3);
  put("token-elsewhere", "ours", "copy-known", 0.4, 1.05);
  put("token-elsewhere", "ours", "sync", 0.3, 0.75);
  put("token-same-host", "ours", "cold", 0.5, 1.1);
  put("token-same-host", "skopeo", "cold", 0.3, 2.7);
  put("token-same-host", "ours", "copy", 0.4, 1.05);
  const lines = longLinkTable(samples, ONE_WAY_MS, 20).split("\n");
  assert.equal(
    lines.length,
    17,
    "a header, its rule, five plain rows, six with tokens from elsewhere, four on the host",
  );
  assert.equal(
    lines[2],
    "| first push (empty registry, empty cache), plain HTTP | 4.0 | 22.0 | ≤ 6.5 | yes |",
  );
  assert.equal(lines[3], "| re-push unchanged, plain HTTP | 2.0 | – | ≤ 3.5 | yes |");
  assert.equal(lines[4], "| pull to an archive, plain HTTP | 5.0 | 12.0 | ≤ 5.5 | yes |");
  assert.equal(lines[5], "| copy to a second far registry, plain HTTP | 8.0 | – | ≤ 7 | **no** |");
  assert.equal(
    lines[6],
    "| second sync of 20 unchanged images, plain HTTP | 4.0 | – | ≤ 4 | yes |",
  );
  assert.equal(
    lines[7],
    "| first push (empty registry, empty cache), bearer token from an auth host elsewhere | 8.0 " +
      "| – | ≤ 6.5 | **no** |",
  );
  assert.match(
    lines[8] ?? "",
    /re-push unchanged, bearer token from an auth host elsewhere \| – \| – \| ≤ 3\.5 \| \*\*no\*\* \|$/,
  );
  assert.equal(
    lines[10],
    "| copy to a second far registry, first contact with the target (its realm not yet known), " +
      "bearer token from an auth host elsewhere | 9.0 | – | – | – |",
  );
  assert.equal(
    lines[11],
    "| copy to a second far registry, both realms known (any later run), bearer token from an " +
      "auth host elsewhere | 6.5 | – | ≤ 7 | yes |",
  );
  assert.equal(
    lines[12],
    "| second sync of 20 unchanged images, bearer token from an auth host elsewhere | 4.5 | – " +
      "| ≤ 5 | yes |",
  );
  assert.equal(
    lines[13],
    "| first push (empty registry, empty cache), bearer token on the registry's host | 6.0 | " +
      "24.0 | ≤ 6.5 | yes |",
  );
  assert.match(lines[14] ?? "", /^\| re-push unchanged, bearer token on the registry's host \|/);
  assert.match(lines[15] ?? "", /^\| pull to an archive, bearer token on the registry's host \|/);
  assert.equal(
    lines[16],
    "| copy to a second far registry, first contact with the target (its realm not yet known), " +
      "bearer token on the registry's host | 6.5 | – | ≤ 7 | yes |",
  );
  assert.deepEqual(LINK_AUTHS, ["plain", "token-elsewhere", "token-same-host"]);
  assert.deepEqual(linkScenarios("plain"), ["cold", "repush", "pull", "copy", "sync"]);
  assert.deepEqual(linkScenarios("token-elsewhere"), LINK_SCENARIOS);
  assert.deepEqual(linkScenarios("token-same-host"), ["cold", "repush", "pull", "copy"]);
  assert.deepEqual(
    LINK_SCENARIOS.map((scenario) => LINK_AUTHS.map((auth) => roundTripTarget(scenario, auth))),
    [
      [6.5, 6.5, 6.5],
      [3.5, 3.5, 3.5],
      [5.5, 5.5, 5.5],
      [7, undefined, 7],
      [7, 7, 7],
      [4, 5, 5],
    ],
  );
});

Deno.test("bench long link: each tool's command line for each scenario, credentials included", () => {
  const tools = { main: "/repo/main.ts", env: { PATH: "/bin" } };
  const job: LinkJob = {
    archive: "/s/in.tar",
    pulled: "/s/out.tar",
    image: "127.0.0.1:1/long-link/x:latest",
    copyTarget: "127.0.0.1:2/long-link/x:latest",
    cacheDir: "/s/cache",
    known: {
      copyTarget: "127.0.0.1:2/long-link/x-known:latest",
      cacheDir: "/s/known-cache",
      warmup: {
        source: "127.0.0.1:1/long-link/warm:latest",
        target: "127.0.0.1:2/long-link/x-warmup:latest",
      },
    },
    sync: {
      syncList: "/s/images.txt",
      skopeoYaml: "/s/images.yaml",
      syncPrefix: "127.0.0.1:2/mirror",
      skopeoPrefix: "127.0.0.1:2/skopeo-mirror",
      dockerConfigDir: "/s/docker",
    },
    credentials: { username: "u", password: "pw" },
  };
  const ours = (scenario: LinkScenario) => linkCommand(tools, "ours", scenario, job);
  const skopeo = (scenario: LinkScenario) => linkCommand(tools, "skopeo", scenario, job);
  assert.deepEqual(ours("cold").args.slice(4), [
    ...["-f", "/s/in.tar", "-r", "127.0.0.1:1/long-link/x:latest", "--quiet", "-u", "u"],
    ...["-p", "pw"],
  ]);
  assert.equal(ours("cold").env["DOCKER_PUSHER_CACHE_DIR"], "/s/cache");
  assert.deepEqual(ours("pull").args.slice(4, 8), [
    "pull",
    "127.0.0.1:1/long-link/x:latest",
    "-o",
    "/s/out.tar",
  ]);
  const copy = ours("copy").args;
  assert.deepEqual(copy.slice(4, 7), ["copy", job.image, job.copyTarget]);
  assert.ok(copy.includes("--src-username") && copy.includes("--src-password"), copy.join(" "));
  const known = ours("copy-known");
  assert.deepEqual(known.args.slice(4, 7), ["copy", job.image, job.known?.copyTarget]);
  assert.equal(known.env["DOCKER_PUSHER_CACHE_DIR"], "/s/known-cache");
  assert.equal(ours("copy").env["DOCKER_PUSHER_CACHE_DIR"], "/s/cache");
  const warmup = realmWarmupCommand(tools, job);
  assert.deepEqual(warmup.args.slice(4, 7), [
    "copy",
    job.known?.warmup.source,
    job.known?.warmup.target,
  ]);
  assert.ok(warmup.args.includes("-u") && warmup.args.includes("--src-username"));
  assert.equal(warmup.env["DOCKER_PUSHER_CACHE_DIR"], "/s/known-cache", "it warms copy-known's");
  assert.equal(skopeo("copy-known").args.at(-1), "docker://127.0.0.1:2/long-link/x-known:latest");
  const sync = ours("sync");
  assert.deepEqual(sync.args.slice(-7), [
    ...["/repo/main.ts", "sync", "--from", "/s/images.txt", "--to", "127.0.0.1:2/mirror"],
    "--json",
  ]);
  assert.equal(sync.env["DOCKER_PUSHER_USERNAME"], "u");
  assert.equal(sync.env["DOCKER_PUSHER_PASSWORD"], "pw");
  assert.equal(sync.env["DOCKER_CONFIG"], "/s/docker");
  assert.deepEqual(skopeo("pull").args, [
    ...["copy", "--quiet", "--src-tls-verify=false", "--src-creds=u:pw"],
    ...["docker://127.0.0.1:1/long-link/x:latest", "docker-archive:/s/out.tar"],
  ]);
  assert.deepEqual(skopeo("copy").args.slice(-4), [
    "--src-creds=u:pw",
    "--dest-creds=u:pw",
    "docker://127.0.0.1:1/long-link/x:latest",
    "docker://127.0.0.1:2/long-link/x:latest",
  ]);
  assert.deepEqual(skopeo("sync").args, [
    ...["sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false"],
    ...["--dest-creds=u:pw", "/s/images.yaml", "127.0.0.1:2/skopeo-mirror"],
  ]);
  const plain: LinkJob = { ...job };
  delete plain.credentials;
  assert.ok(!linkCommand(tools, "ours", "copy", plain).args.includes("-u"));
  assert.ok(!linkCommand(tools, "skopeo", "copy", plain).args.some((arg) => arg.includes("creds")));
  // A job timed without copy-known or the sync (tokens on the registry's host) has no command
  // for them.
  const bare: LinkJob = { ...job };
  delete bare.known;
  delete bare.sync;
  assert.deepEqual(linkCommand(tools, "ours", "copy", bare).args, copy);
  assert.throws(() => linkCommand(tools, "ours", "copy-known", bare), /copy-known/);
  assert.throws(() => realmWarmupCommand(tools, bare), /copy-known/);
  assert.throws(() => linkCommand(tools, "skopeo", "sync", bare), /sync/);
});

Deno.test("bench args: bad values are usage errors naming the flag", () => {
  assert.throws(() => parseBenchArgs(["--runs", "0"]), usageError(/--runs .*'0'/));
  assert.throws(() => parseBenchArgs(["--runs", "2.5"]), usageError(/--runs .*'2.5'/));
  assert.throws(() => parseBenchArgs(["--runs", "x"]), usageError(/--runs/));
  assert.throws(() => parseBenchArgs(["--quick", "--large"]), usageError(/--quick and --large/));
  assert.throws(() => parseBenchArgs(["--fast"]), usageError(/fast/));
  assert.throws(() => parseBenchArgs(["extra"]), usageError(/extra/));
  assert.throws(
    () => parseBenchArgs(["--sweep-concurrency", "1,-2"]),
    usageError(/--sweep-concurrency .*'-2'/),
  );
  assert.throws(() => parseIntegerList("--list", " , "), usageError(/--list needs a list/));
});

Deno.test("bench stats: median, summary and their formatting", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.deepEqual(summarize([2, 9, 4]), { median: 4, min: 2, max: 9, count: 3 });
  assert.equal(formatSeconds(0.1289), "0.13 s");
  assert.equal(formatSeconds(12.34), "12.3 s");
  assert.equal(formatSeconds(Number.NaN), "–");
  assert.equal(formatSummary(summarize([4.4, 4.52, 4.71])), "4.52 s (4.40–4.71)");
  assert.equal(formatSummary(summarize([4.5])), "4.50 s");
  assert.equal(formatSummary(summarize([9.5, 12, 10.5])), "10.5 s (9.5–12.0)");
});

Deno.test("bench stats: ratios, bytes, targets", () => {
  assert.equal(formatRatio(3.1, 5), "0.62×");
  assert.equal(formatRatio(1, 0), "–");
  assert.equal(formatRatio(Number.NaN, 2), "–");
  assert.equal(formatBytes(155), "155 B");
  assert.equal(formatBytes(10_240), "10 kB");
  assert.equal(formatBytes(27_400_000), "27.4 MB");
  assert.equal(formatBytes(518_400_000), "518 MB");
  assert.equal(formatBytes(1_070_000_000), "1.07 GB");
  assert.equal(formatTarget({ kind: "ratio", max: 0.6 }), "≤ 0.6×");
  assert.equal(formatTarget({ kind: "seconds", max: 0.5 }), "≤ 0.5 s");
  assert.equal(formatTarget({ kind: "bytes", max: 150e6 }), "≤ 150 MB");
  assert.equal(meets({ kind: "ratio", max: 1.05 }, 1.05), true);
  assert.equal(meets({ kind: "ratio", max: 1.05 }, 1.0501), false);
  assert.equal(meets({ kind: "seconds", max: 1 }, Number.NaN), false);
});

Deno.test("bench report: markdown tables with medians, ratios, verdicts and peak RSS", () => {
  assert.equal(
    markdownTable(["a", "b|c"], [["1", "x|y"]]),
    "| a | b\\|c |\n| --- | --- |\n| 1 | x\\|y |",
  );
  const table = scenarioTable([
    {
      label: "cold",
      ours: [sample(3, 90e6), sample(2, 120e6), sample(4, 100e6)],
      skopeo: [sample(5, 20e6), sample(6, 22e6), sample(4, 21e6)],
      target: { kind: "ratio", max: 0.6 },
    },
    {
      label: "re-push",
      ours: [sample(0.2), sample(0.7), sample(0.3)],
      target: { kind: "seconds", max: 0.5 },
    },
    {
      label: "slow",
      ours: [sample(2)],
      skopeo: [sample(2.5)],
      target: { kind: "ratio", max: 0.6 },
    },
  ]);
  const lines = table.split("\n");
  assert.equal(lines.length, 5);
  assert.equal(
    lines[2],
    "| cold | 3.00 s (2.00–4.00) | 5.00 s (4.00–6.00) | 0.60× | ≤ 0.6× | yes | 120 MB | 22.0 MB |",
  );
  assert.equal(lines[3], "| re-push | 0.30 s (0.20–0.70) | – | – | ≤ 0.5 s | yes | – | – |");
  assert.match(lines[4] as string, /\| 0\.80× \| ≤ 0\.6× \| \*\*no\*\* \|/);
  assert.equal(
    rssVerdict([sample(1, 149e6), sample(1, 151e6)], { kind: "bytes", max: 150e6 }),
    "**no**",
  );
  assert.equal(rssVerdict([sample(1, 149e6)], { kind: "bytes", max: 150e6 }), "yes");
  assert.equal(rssVerdict([sample(1)], { kind: "bytes", max: 150e6 }), "–");
});

Deno.test("bench pull/copy: rows, both against curl's floors, peak RSS, bytes written", () => {
  const samples = new Map<string, Sample[]>([
    ["pull/ours", [{ ...sample(3, 90e6), writtenBytes: 1.02e9 }]],
    ["pull/skopeo", [{ ...sample(5, 30e6), writtenBytes: 2.1e9 }]],
    ["pull-floor/curl", [sample(1.5), sample(2.5), sample(2)]],
    ["copy/ours", [sample(4, 160e6)]],
    ["copy/skopeo", [sample(4.4, 40e6)]],
    ["copy-floor/curl", [sample(4)]],
  ]);
  const bytes = new Map<string, number[]>([
    ["pull/ours/archive", [1e9]],
    ["pull/ours/written", [1.02e9, 1.06e9]],
    ["pull/skopeo/archive", [1e9]],
    ["pull/skopeo/written", [2.1e9]],
  ]);
  const figures = {
    samples: (key: string) => samples.get(key) ?? [],
    bytes: (key: string) => bytes.get(key) ?? [],
  };
  const rows = scenarioTable(pullCopyRows(figures, "")).split("\n");
  assert.match(
    rows[2] ?? "",
    /^\| pull to an archive.* \| 3\.00 s \| 5\.00 s \| 0\.60× \| ≤ 0\.7× \| yes \|/,
  );
  assert.match(
    rows[3] ?? "",
    /^\| ↳ the registry's limit: .*curl GET into files.* \| 2\.00 s \(1\.50–2\.50\) \| – \|/,
  );
  assert.match(
    rows[4] ?? "",
    /^\| copy between two local registries.* \| 0\.91× \| ≤ 0\.7× \| \*\*no\*\* \|/,
  );
  assert.match(rows[5] ?? "", /^\| ↳ the registries' limit.* \| 4\.00 s \| – \|/);
  const floors = floorTable(figures, "").split("\n");
  assert.equal(
    floors[2],
    "| pull: uncompressed image into an archive | 3.00 s | 5.00 s | 2.00 s | 0.60× | 1.50× | 2.50× |",
  );
  assert.equal(
    floors[3],
    "| copy: gzip image between two local registries | 4.00 s | 4.40 s | 4.00 s | 0.91× | 1.00× | 1.10× |",
  );
  const archive = { size: 1e9 } as BuiltArchive;
  const memory = pullCopyMemoryTable(figures, [{ prefix: "", archive }]).split("\n");
  assert.equal(memory[2], "| 1.00 GB | pull | 90.0 MB | 30.0 MB | ≤ 150 MB | yes |");
  assert.equal(memory[3], "| 1.00 GB | copy | 160 MB | 40.0 MB | ≤ 150 MB | **no** |");
  const writes = pullWritesTable(figures, [{ prefix: "", archive }]).split("\n");
  // The worst run counts: 1.06 GB written for a 1 GB archive misses 1.05×.
  assert.equal(writes[2], "| 1.00 GB | ours | 1.00 GB | 1.06 GB | 1.06× | ≤ 1.05× | **no** |");
  assert.equal(writes[3], "| 1.00 GB | skopeo | 1.00 GB | 2.10 GB | 2.10× | – | – |");
  // No GNU time, no count: the row is left out rather than shown as 0 bytes written.
  bytes.set("pull/ours/written", [0]);
  assert.equal(pullWritesTable(figures, [{ prefix: "", archive }]).split("\n").length, 3);
});

Deno.test("bench sync: the list, skopeo's yaml, our result tallied, the tables", async () => {
  await using dir = await tempDir();
  const repositories = syncImageRepositories(3);
  assert.deepEqual(repositories, ["bench/img-01", "bench/img-02", "bench/img-03"]);
  await writeSyncList(`${dir.path}/images.txt`, "127.0.0.1:9", repositories.slice(0, 2));
  assert.equal(
    await Deno.readTextFile(`${dir.path}/images.txt`),
    "# deno task bench: sync images\n127.0.0.1:9/bench/img-01:latest\n" +
      "127.0.0.1:9/bench/img-02:latest\n",
  );
  await writeSkopeoSyncYaml(`${dir.path}/images.yaml`, "127.0.0.1:9", ["bench/img-01"], {
    username: "u",
    password: "p",
  });
  assert.equal(
    await Deno.readTextFile(`${dir.path}/images.yaml`),
    '"127.0.0.1:9":\n  tls-verify: false\n  credentials:\n    username: "u"\n' +
      '    password: "p"\n  images:\n    bench/img-01: [latest]\n',
  );
  const docker = await writeDockerConfig(`${dir.path}/docker`, ["127.0.0.1:9"], {
    username: "u",
    password: "p",
  });
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${docker}/config.json`)), {
    auths: { "127.0.0.1:9": { auth: btoa("u:p") } },
  });
  const ours = ourSyncCommand("/repo/main.ts", "/l.txt", "h:1/m", { PATH: "/bin" }, "/c", {
    username: "u",
    password: "p",
  });
  assert.deepEqual(ours.args.slice(-7), [
    ...["/repo/main.ts", "sync", "--from", "/l.txt", "--to", "h:1/m", "--json"],
  ]);
  assert.equal(ours.env["DOCKER_PUSHER_CACHE_DIR"], "/c");
  assert.equal(ours.env["DOCKER_PUSHER_USERNAME"], "u");

  // The --json event stream: a `sync` event per LIST line among the image events.
  const result = (statuses: [string, number][]): string =>
    [
      JSON.stringify({ type: "syncing", lines: [] }),
      ...statuses.flatMap(([status, bytesSent], index) => [
        JSON.stringify({ type: "blob", line: index + 2 }),
        JSON.stringify({ type: "sync", line: index + 2, status, bytesSent }),
      ]),
      JSON.stringify({ type: "synced", bytesSent: 0 }),
      "",
    ].join("\n");
  const tally = tallySyncResult(
    result([["transferred", 300], ["unchanged", 0], ["transferred", 200], ["unchanged", 0]]),
  );
  assert.deepEqual(tally, {
    transferred: 2,
    unchanged: 2,
    failed: 0,
    transferredBytes: 500,
    unchangedBytes: 0,
  });
  const workload = { images: 4, changed: 2, randomBytes: 1 };
  assert.match(
    syncBytesTable([tally, tally], workload).split("\n")[2] ?? "",
    /^\| 2 runs \| 2, 2 \| 2, 2 \| 500 B \| 0 B \| 0 B \| yes \|$/,
  );
  const leaky = tallySyncResult(result([["transferred", 300], ["unchanged", 7], ["failed", 0]]));
  assert.equal(leaky.unchangedBytes, 7);
  assert.equal(leaky.failed, 1);
  assert.match(syncBytesTable([leaky], workload), /\| 7 B \| 0 B \| \*\*no\*\* \|$/);
  assert.match(syncBytesTable([], workload), /\*\*no\*\* \|$/, "no run is no evidence");
  const rows = scenarioTable(
    syncRows((key) => (key.endsWith("ours") ? [sample(0.6)] : [sample(3)]), {
      images: 20,
      changed: 2,
      randomBytes: 1,
    }),
  ).split("\n");
  assert.match(rows[2] ?? "", /^\| sync of 20 images, first run .*\| 0\.20× \| – \| – \|/);
  assert.match(
    rows[3] ?? "",
    /^\| sync of 20 images, second run, 2 changed .*\| 0\.20× \| ≤ 0\.3× \| yes \|/,
  );
  const seconds: Record<string, number> = { ours: 0.6, skopeo: 3, floor: 0.2 };
  const floor = syncFloorTable(
    (key) => [sample(seconds[key.split("/")[1] ?? ""] ?? Number.NaN)],
    { images: 20, changed: 2, randomBytes: 1 },
  ).split("\n");
  assert.equal(floor[3], "| second run, 2 changed | 0.60 s | 3.00 s | 0.20 s | 3.00× | 15.00× |");
  // Across a link the same rows read the `far-` samples and say how far the registries are.
  const link = { oneWayMs: 10 };
  assert.equal(syncKey("sync-second", "ours", link), "far-sync-second/ours");
  assert.equal(syncKey("sync-second", "floor"), "sync-second/floor");
  const far = (key: string): Sample[] =>
    key.startsWith("far-") ? [sample(seconds[key.split("/")[1] ?? ""] ?? Number.NaN)] : [];
  const farRows = scenarioTable(syncRows(far, { images: 20, changed: 2, randomBytes: 1 }, link))
    .split("\n");
  assert.match(
    farRows[3] ?? "",
    /^\| sync of 20 images, second run, 2 changed at the source, registries 20 ms RTT away .*\| 0\.20× \| ≤ 0\.3× \| yes \|/,
  );
  const farFloor = syncFloorTable(far, { images: 20, changed: 2, randomBytes: 1 }, link)
    .split("\n");
  assert.match(farFloor[0] ?? "", /^\| sync \(medians\), registries 20 ms RTT away \|/);
  assert.equal(
    farFloor[3],
    "| second run, 2 changed | 0.60 s | 3.00 s | 0.20 s | 3.00× | 15.00× |",
  );
  assert.match(
    syncBytesTable([tally], workload, "our second runs, 20 ms RTT").split("\n")[0] ?? "",
    /^\| our second runs, 20 ms RTT \| lines transferred/,
  );
});

Deno.test("bench process: /proc stat, GNU time output and skopeo's cache path", () => {
  // Field 2 may hold spaces and parentheses; utime and stime are fields 14 and 15.
  const stat = "4242 (docker (reg) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12";
  assert.equal(parseStatCpuSeconds(stat), 3.25);
  assert.equal(parseStatCpuSeconds("garbage"), 0);
  assert.deepEqual(
    parseTimeOutput("Command exited with non-zero status 1\n125000 3.50 0.25 2048\n"),
    { peakRss: 125000 * 1024, cpuSeconds: 3.75, writtenBytes: 2048 * 512 },
  );
  assert.deepEqual(parseTimeOutput("125000 3.50 0.25"), {
    peakRss: 125000 * 1024,
    cpuSeconds: 3.75,
    writtenBytes: 0,
  });
  assert.deepEqual(parseTimeOutput(""), { peakRss: 0, cpuSeconds: 0, writtenBytes: 0 });
  const env = (values: Record<string, string>) => (name: string) => values[name];
  assert.equal(
    skopeoCachePath(0, env({ HOME: "/root" })),
    "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
  );
  assert.equal(
    skopeoCachePath(1000, env({ HOME: "/home/u" })),
    "/home/u/.local/share/containers/cache/blob-info-cache-v1.boltdb",
  );
  assert.equal(
    skopeoCachePath(1000, env({ HOME: "/home/u", XDG_DATA_HOME: "/data" })),
    "/data/containers/cache/blob-info-cache-v1.boltdb",
  );
});

Deno.test("bench archive: shares split whole files in order, libraries are recognised", () => {
  const files = [50, 10, 10, 10, 5, 5, 5, 5].map((size, index) => ({ size, index }));
  const groups = splitByShares(files, [0.5, 0.3, 0.2]);
  assert.deepEqual(groups.map((group) => group.map((file) => file.index)), [
    [0],
    [1, 2, 3],
    [4, 5, 6, 7],
  ]);
  assert.deepEqual(groups.flat(), files, "every file once, in order");
  // One huge file leaves the later groups empty: they are dropped, not returned empty.
  assert.deepEqual(splitByShares([{ size: 100 }], [0.5, 0.5]), [[{ size: 100 }]]);
  assert.equal(isSharedLibrary("/usr/lib/libz.so"), true);
  assert.equal(isSharedLibrary("/usr/lib/libz.so.1.3.1"), true);
  assert.equal(isSharedLibrary("/usr/lib/libz.a"), false);
  assert.equal(isSharedLibrary("/usr/lib/python3/site.so.py"), false);
  const plan = { realBytes: 1, randomBytes: 2, sources: ["/usr/lib"] };
  assert.equal(planKey(plan), planKey({ ...plan }));
  assert.notEqual(planKey(plan), planKey({ ...plan, randomBytes: 3 }));
});

/** Runs `scripts/bench.ts` with `args` to success; returns what it printed. */
async function runBench(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", "scripts/bench.ts", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(180_000),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  return { stdout, stderr };
}

/** The pull and the copy against curl's floors: three times and three ratios, all numbers. */
function assertFloorRows(stdout: string): void {
  for (const label of ["pull: uncompressed image", "copy: gzip image"]) {
    assert.match(
      stdout,
      new RegExp(`\\| ${label}[^|]*( \\| \\d+\\.\\d+ s){3}( \\| \\d\\.\\d\\d×){3} \\|`),
    );
  }
}

Deno.test({
  name: "bench: --quick times both tools on a real registry and prints the tables",
  sanitizeResources: false,
  fn: async () => {
    const { stdout, stderr } = await runBench(["--quick"]);
    for (
      const row of [
        "cold push, layers as they are",
        "↳ the registry's limit",
        "cold push, gzip",
        "re-push, nothing changed (with the tool's cache)",
        "re-push, nothing changed, fresh machine",
        "sibling repository, same registry",
        "sibling repository, fresh machine",
        "pull to an archive, layers as they are",
        "copy between two local registries",
        "↳ the registries' limit",
        "sync of 5 images, first run",
        "sync of 5 images, second run, 2 changed",
        "sync of 5 images, second run, 2 changed at the source, registries 4 ms RTT away",
      ]
    ) {
      const line = stdout.split("\n").find((text) => text.startsWith(`| ${row}`));
      assert.ok(line, `row "${row}" in:\n${stdout}`);
      // Our time is a number of seconds in every row.
      assert.match(line, /^\| [^|]+ \| \d+\.\d+ s/);
    }
    assert.match(stdout, /- Machine: .+\d+ cores \(nproc\)/);
    assert.match(stdout, /- Command: `deno task bench --quick`/);
    assert.match(stdout, /\| gzip \| [\d.]+ [kMG]?B \| [\d.]+ [kMG]?B \| \d\.\d\d× \| ≤ 1\.05× \|/);
    assert.match(stdout, /### Peak memory/);
    assertFloorRows(stdout);
    // Peak RSS of our pull and copy was measured.
    assert.match(stdout, /\| [\d.]+ MB \| pull \| [\d.]+ MB \| [\d.]+ MB \| ≤ 150 MB \|/);
    assert.match(stdout, /\| [\d.]+ MB \| copy \| [\d.]+ MB \| [\d.]+ MB \| ≤ 150 MB \|/);
    // Our pull wrote about the archive's bytes to disk (GNU time counted them).
    const written =
      /\| [\d.]+ MB \| ours \| ([\d.]+) MB \| ([\d.]+) MB \| (\d\.\d\d)× \| ≤ 1\.05× \|/
        .exec(stdout);
    assert.ok(written, `our pull's writes in:\n${stdout}`);
    assert.ok(Number(written[3]) > 0.5, "the pull wrote its archive");
    // Both syncs beside the curl floor: three times and two ratios, all numbers.
    assert.match(stdout, /\| second run, 2 changed( \| \d+\.\d+ s){3}( \| \d+\.\d\d×){2} \|/);
    assert.match(stderr, /^ {2}sync-second\/floor: \d+\.\d+ s$/m);
    // Our second sync sent blobs for the 2 changed images and none for the 3 others.
    assert.match(stdout, /\| 1 run \| 2 \| 3 \| [\d.]+ kB \| 0 B \| 0 B \| yes \|/);
    // The same across the 4 ms link: a second table with its own header and the same row.
    assert.match(stdout, /^\| our second runs, 4 ms RTT \| lines transferred/m);
    assert.equal(
      stdout.match(/^\| 1 run \| 2 \| 3 \| [\d.]+ kB \| 0 B \| 0 B \| yes \|$/gm)?.length,
      2,
    );
    assert.match(stderr, /^ {2}far-sync-second\/floor: \d+\.\d+ s$/m);
    // Each timed command ran to completion: one progress line per push, pull, copy and sync
    // (the syncs on loopback and across the link).
    assert.equal(stderr.match(/^ {2}\S+\/(ours|skopeo): /gm)?.length, 24, stderr);
    assert.match(stderr, /^ {2}pull-floor\/curl: \d+\.\d+ s$/m);
    assert.match(stderr, /^ {2}copy-floor\/curl: \d+\.\d+ s$/m);
  },
});

Deno.test({
  name: "bench: --pull-copy-only --quick times only the pulls and copies, beside their floors",
  sanitizeResources: false,
  fn: async () => {
    const { stdout, stderr } = await runBench(["--pull-copy-only", "--quick"]);
    assert.match(stdout, /- Command: `deno task bench --pull-copy-only --quick`/);
    assertFloorRows(stdout);
    assert.doesNotMatch(stdout, /cold push|### Sync|long link/i, "nothing but pull and copy");
    // One pull and one copy per tool, and both floors.
    assert.equal(stderr.match(/^ {2}(pull|copy)\/(ours|skopeo): /gm)?.length, 4, stderr);
    assert.match(stderr, /^ {2}pull-floor\/curl: \d+\.\d+ s$/m);
    assert.match(stderr, /^ {2}copy-floor\/curl: \d+\.\d+ s$/m);
  },
});

Deno.test({
  name: "bench: --long-link --quick times every scenario of both tools and prints round trips",
  sanitizeResources: false,
  fn: async () => {
    const { stdout, stderr } = await runBench(["--long-link", "--quick"]);
    assert.match(stdout, /- Machine: .+\d+ cores \(nproc\)/);
    assert.match(stdout, /- Date: \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    const rows = [
      "first push",
      "re-push unchanged",
      "pull to an archive",
      "copy to a second far registry",
    ];
    const sync = "second sync of 3 unchanged images";
    const modes: [string, string[]][] = [
      ["plain HTTP", [...rows, sync]],
      [
        "bearer token from an auth host elsewhere",
        [...rows, "copy to a second far registry, both realms", sync],
      ],
      ["bearer token on the registry's host", rows],
    ];
    for (const [auth, timed] of modes) {
      for (const row of timed) {
        const line = stdout.split("\n").find((text) =>
          text.startsWith(`| ${row}`) && text.includes(`, ${auth} |`)
        );
        assert.ok(line, `row "${row}, ${auth}" in:\n${stdout}`);
        // Round trips of both tools are numbers (noisy at 10 ms RTT, so any sign), then a target
        // (none for the first contact of a copy whose tokens come from elsewhere).
        assert.match(
          line,
          /\| -?\d+\.\d \| -?\d+\.\d \| (≤ [\d.]+ \| (yes|\*\*no\*\*)|– \| –) \|$/,
        );
      }
    }
    assert.doesNotMatch(stdout, /(both realms|second sync).*, bearer token on the registry's host/);
    const firstContact = (auth: string): string =>
      stdout.split("\n").find((text) =>
        text.startsWith("| copy to a second far registry, first contact with the target") &&
        text.includes(`, ${auth} |`)
      ) ?? "";
    assert.match(firstContact("bearer token from an auth host elsewhere"), /\| – \| – \|$/);
    assert.match(
      firstContact("bearer token on the registry's host"),
      /\| ≤ 7 \| (yes|\*\*no\*\*) \|$/,
    );
    // Every cell was timed: 2 tools × 2 delays × (5 scenarios plain + 6 with tokens from
    // elsewhere + 4 with tokens on the registry's host), one run each.
    assert.equal(stderr.match(/^ {2}long-link \S+: \d+\.\d\d s$/gm)?.length, 60, stderr);
  },
});
