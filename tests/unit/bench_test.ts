import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { PusherError } from "../../lib/errors.ts";
import { isSharedLibrary, planKey, splitByShares } from "../../scripts/bench_archive.ts";
import { parseBenchArgs, parseIntegerList } from "../../scripts/bench_args.ts";
import {
  type LinkSamples,
  longLinkTable,
  ONE_WAY_MS,
  roundTrips,
  sampleKey,
} from "../../scripts/bench_long_link.ts";
import {
  parseStatCpuSeconds,
  parseTimeOutput,
  skopeoCachePath,
} from "../../scripts/bench_process.ts";
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
  return { seconds, peakRss, cpuSeconds: 0, registryCpuSeconds: 0 };
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
    help: false,
  });
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
  // Fastest at 100 ms RTT minus fastest at 0 ms, in round trips: (1.0 - 0.4) / 0.1 = 6.
  assert.ok(Math.abs(roundTrips([0.5, 0.4, 0.9], [1.2, 1.0, 1.1]) - 6) < 1e-9);
  assert.ok(Number.isNaN(roundTrips([], [1])));
  const samples: LinkSamples = new Map();
  const put = (
    auth: "plain" | "token",
    tool: "ours" | "skopeo",
    scenario: "cold" | "repush",
    fast: number,
    slow: number,
  ): void => {
    samples.set(sampleKey(auth, tool, scenario, 0), [fast]);
    samples.set(sampleKey(auth, tool, scenario, ONE_WAY_MS), [slow]);
  };
  put("plain", "ours", "cold", 0.5, 0.9);
  put("plain", "skopeo", "cold", 0.3, 2.5);
  put("plain", "ours", "repush", 0.3, 0.5);
  put("token", "ours", "cold", 0.5, 1.3);
  const lines = longLinkTable(samples).split("\n");
  assert.equal(lines.length, 6, "a header, its rule and four rows");
  assert.equal(
    lines[2],
    "| first push (empty registry, empty cache), plain HTTP | 4.0 | 22.0 | ≤ 6.5 | yes |",
  );
  assert.equal(lines[3], "| re-push unchanged, plain HTTP | 2.0 | – | ≤ 3.5 | yes |");
  assert.match(lines[4] ?? "", /bearer token \| 8\.0 \| – \| ≤ 6\.5 \| \*\*no\*\* \|$/);
  assert.match(
    lines[5] ?? "",
    /re-push unchanged, bearer token \| – \| – \| ≤ 3\.5 \| \*\*no\*\* \|$/,
  );
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

Deno.test("bench process: /proc stat, GNU time output and skopeo's cache path", () => {
  // Field 2 may hold spaces and parentheses; utime and stime are fields 14 and 15.
  const stat = "4242 (docker (reg) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12";
  assert.equal(parseStatCpuSeconds(stat), 3.25);
  assert.equal(parseStatCpuSeconds("garbage"), 0);
  assert.deepEqual(parseTimeOutput("Command exited with non-zero status 1\n125000 3.50 0.25\n"), {
    peakRss: 125000 * 1024,
    cpuSeconds: 3.75,
  });
  assert.deepEqual(parseTimeOutput(""), { peakRss: 0, cpuSeconds: 0 });
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

Deno.test({
  name: "bench: --quick times both tools on a real registry and prints the tables",
  sanitizeResources: false,
  fn: async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-prompt", "scripts/bench.ts", "--quick"],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
      signal: AbortSignal.timeout(120_000),
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    for (
      const row of [
        "cold push, layers as they are",
        "↳ the registry's limit",
        "cold push, gzip",
        "re-push, nothing changed (with the tool's cache)",
        "re-push, nothing changed, fresh machine",
        "sibling repository, same registry",
        "sibling repository, fresh machine",
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
    // Each timed push ran to completion against the registry: one progress line per scenario.
    assert.equal(stderr.match(/^ {2}\S+\/(ours|skopeo): /gm)?.length, 12, stderr);
  },
});
