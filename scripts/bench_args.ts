/**
 * Command-line options of `deno task bench` (see {@link ./bench.ts}).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { PusherError } from "../lib/errors.ts";

/** What one benchmark run does. */
export interface BenchOptions {
  /** Timed runs per scenario; the table shows medians. */
  runs: number;
  /** Small archive, one run, no profile: proves the script works in well under a minute. */
  quick: boolean;
  /** Also push a ~4 GB archive (cold pushes, time and peak RSS). */
  large: boolean;
  /** Where archives are built and kept between runs; a temporary directory in quick mode. */
  workDir: string | undefined;
  /** The `main.ts` to time (another checkout, to compare trees). */
  main: string | undefined;
  /** Extra `--max-concurrent` values to time our cold pushes with (both modes). */
  sweepConcurrency: number[];
  /** Time where our push goes, stage by stage, on the 1 GB archive. */
  profile: boolean;
  /** Also write the raw samples as JSON to this file. */
  json: string | undefined;
  /** Only the long-link table: round trips through delay proxies (quick: short delay, 1 run). */
  longLink: boolean;
  /** Only the sync section: both tools and the curl floor (quick: 5 images, 1 run). */
  syncOnly: boolean;
  /** Only the pull and copy section (the standard archive, its curl floors). */
  pullCopyOnly: boolean;
  /** Print the help text and exit. */
  help: boolean;
}

/** The help text. */
export const BENCH_HELP = `Usage: deno task bench [options]

Times docker-image-pusher against skopeo on local Distribution registries: cold pushes with
layers as they are and with gzip, re-pushes, a sibling repository; pull into an archive, copy
between registries (beside curl's floor), a sync of 20 images with 2 changed (on loopback and
20 ms RTT away); peak RSS, bytes written and medians.

Options:
  --runs <n>                  timed runs per scenario (default 3; 1 with --quick)
  --quick                     small archive, one run, no profile (a test runs this)
  --large                     also push a ~4 GB archive (cold pushes only)
  --work-dir <dir>            keep built archives here (default: the user's cache directory)
  --main <path>               the main.ts to time (default: this checkout's)
  --sweep-concurrency <list>  also time our cold pushes at these --max-concurrent values (1,2,4,8)
  --no-profile                skip the stage-by-stage profile
  --json <file>               also write the raw samples as JSON
  --long-link                 only the long-link table: round trips at 100 ms RTT, both tools
                              (with --quick: 10 ms RTT, 3 sync images, one run)
  --sync-only                 only the sync section: ours, skopeo and the curl floor
  --pull-copy-only            only the pull and copy section: ours, skopeo and the curl floors
                              (with --quick: 5 images, one run)
  -h, --help                  show this help
`;

/** Parses a comma-separated list of positive integers; throws a usage error otherwise. */
export function parseIntegerList(flag: string, text: string): number[] {
  const values = text.split(",").map((part) => part.trim()).filter((part) => part !== "");
  if (values.length === 0) throw new PusherError("usage", `${flag} needs a list like 1,2,4`);
  return values.map((value) => parsePositive(flag, value));
}

/** Parses a positive integer; throws a usage error naming the flag otherwise. */
export function parsePositive(flag: string, text: string): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new PusherError("usage", `${flag} must be a positive whole number, not '${text}'`);
  }
  return value;
}

/** Parses the benchmark's arguments; throws a usage {@link PusherError} for bad ones. */
export function parseBenchArgs(args: readonly string[]): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        runs: { type: "string" },
        quick: { type: "boolean" },
        large: { type: "boolean" },
        "work-dir": { type: "string" },
        main: { type: "string" },
        "sweep-concurrency": { type: "string" },
        "no-profile": { type: "boolean" },
        json: { type: "string" },
        "long-link": { type: "boolean" },
        "sync-only": { type: "boolean" },
        "pull-copy-only": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new PusherError("usage", error instanceof Error ? error.message : String(error), {
      hint: "run `deno task bench --help` for the options",
    });
  }
  const values = parsed.values;
  const quick = values.quick === true;
  if (quick && values.large === true) {
    throw new PusherError("usage", "--quick and --large do not go together");
  }
  const sweep = values["sweep-concurrency"];
  return {
    runs: values.runs !== undefined ? parsePositive("--runs", values.runs) : quick ? 1 : 3,
    quick,
    large: values.large === true,
    workDir: values["work-dir"],
    main: values.main,
    sweepConcurrency: sweep !== undefined ? parseIntegerList("--sweep-concurrency", sweep) : [],
    profile: !quick && values["no-profile"] !== true,
    json: values.json,
    longLink: values["long-link"] === true,
    syncOnly: values["sync-only"] === true,
    pullCopyOnly: values["pull-copy-only"] === true,
    help: values.help === true,
  };
}
