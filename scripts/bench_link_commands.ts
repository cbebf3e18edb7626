/**
 * The command lines of the long-link table (see {@link ./bench_long_link.ts}): for each scenario
 * (push, re-push, pull, copy — first contact with the target, then with both token realms
 * known —, second sync), ours and skopeo's, with credentials when the registries want a token,
 * and the untimed copy that lets our cache learn both realms before the second copy.
 *
 * @module
 */

import type { TimedCommand } from "./bench_process.ts";
import { type BenchCredentials, ourSyncCommand, skopeoSyncCommand } from "./bench_sync_images.ts";

/** The tools timed. */
export type LinkTool = "ours" | "skopeo";
/**
 * What is timed: a push to a new repository, the same push again, a pull, a copy whose cache
 * has not met the target registry, a copy whose cache knows both registries' token realms
 * (`copy-known`, timed with token registries only), a sync.
 */
export type LinkScenario = "cold" | "repush" | "pull" | "copy" | "copy-known" | "sync";
/** Every scenario, in table order. */
export const LINK_SCENARIOS: readonly LinkScenario[] = [
  "cold",
  "repush",
  "pull",
  "copy",
  "copy-known",
  "sync",
];

/** Where one scenario's command reads and writes. */
export interface LinkJob {
  /** The archive pushed. */
  archive: string;
  /** The archive a pull writes (removed before each pull). */
  pulled: string;
  /** The image pushed, pulled, or copied from. */
  image: string;
  /** Where the copy goes (a new repository). */
  copyTarget: string;
  /** Our cache (layers, token realms) of every scenario but `copy-known`. */
  cacheDir: string;
  /** What `copy-known` needs (when it is timed). */
  known?: KnownRealmsJob;
  /** What the sync needs (when it is timed). */
  sync?: LinkSyncJob;
  /** Credentials of every registry, when they want a token. */
  credentials?: BenchCredentials;
}

/** Where `copy-known`, the copy whose cache knows both registries' token realms, goes. */
export interface KnownRealmsJob {
  /** Where the copy goes (another new repository). */
  copyTarget: string;
  /** Its cache: it has seen both registries only through the warm-up copy. */
  cacheDir: string;
  /**
   * The untimed copy before it: a different small image from the first registry to a new
   * repository of the second, so the cache learns both realms without the timed image.
   */
  warmup: { source: string; target: string };
}

/** The lists and prefixes of the second syncs. */
export interface LinkSyncJob {
  /** Our sync's LIST. */
  syncList: string;
  /** skopeo's sync yaml. */
  skopeoYaml: string;
  /** The prefix our sync writes under. */
  syncPrefix: string;
  /** The prefix skopeo's sync writes under. */
  skopeoPrefix: string;
  /** A docker config with the credentials of the sync's sources (token registries). */
  dockerConfigDir?: string;
}

/** What every command shares: `main.ts` and the environment. */
export interface LinkTools {
  /** `main.ts` of the checkout timed. */
  main: string;
  /** The environment of the children. */
  env: Record<string, string>;
}

/** Our command line for a scenario. */
function oursCommand(tools: LinkTools, scenario: LinkScenario, job: LinkJob): TimedCommand {
  const { credentials } = job;
  const run = (args: string[], secrets: string[]): TimedCommand => ({
    command: Deno.execPath(),
    args: ["run", "-A", "--no-prompt", tools.main, ...args, "--quiet", ...secrets],
    env: {
      ...tools.env,
      DOCKER_PUSHER_CACHE_DIR: scenario === "copy-known" ? knownOf(job).cacheDir : job.cacheDir,
    },
  });
  const target = credentials !== undefined
    ? ["-u", credentials.username, "-p", credentials.password]
    : [];
  switch (scenario) {
    case "cold":
    case "repush":
      return run(["-f", job.archive, "-r", job.image], target);
    case "pull":
      return run(["pull", job.image, "-o", job.pulled], target);
    case "copy":
    case "copy-known":
      return run(
        ["copy", job.image, copyTarget(scenario, job)],
        [...target, ...sourceCredentials(credentials)],
      );
    case "sync": {
      const sync = syncOf(job);
      return ourSyncCommand(
        tools.main,
        sync.syncList,
        sync.syncPrefix,
        tools.env,
        job.cacheDir,
        credentials,
        sync.dockerConfigDir,
      );
    }
  }
}

/** Where the copy of `scenario` goes. */
function copyTarget(scenario: "copy" | "copy-known", job: LinkJob): string {
  return scenario === "copy" ? job.copyTarget : knownOf(job).copyTarget;
}

/** What `copy-known` needs; a job timed without it has none. */
function knownOf(job: LinkJob): KnownRealmsJob {
  if (job.known === undefined) throw new Error("copy-known is not timed for this job");
  return job.known;
}

/** What the sync needs; a job timed without it has none. */
function syncOf(job: LinkJob): LinkSyncJob {
  if (job.sync === undefined) throw new Error("the sync is not timed for this job");
  return job.sync;
}

/** Our `--src-username`/`--src-password` flags for `credentials`, if any. */
function sourceCredentials(credentials: BenchCredentials | undefined): string[] {
  return credentials !== undefined
    ? ["--src-username", credentials.username, "--src-password", credentials.password]
    : [];
}

/**
 * Our untimed copy before `copy-known` (see {@link KnownRealmsJob.warmup}), in the cache of
 * `copy-known`.
 */
export function realmWarmupCommand(tools: LinkTools, job: LinkJob): TimedCommand {
  const { credentials } = job;
  const known = knownOf(job);
  const target = credentials !== undefined
    ? ["-u", credentials.username, "-p", credentials.password]
    : [];
  return {
    command: Deno.execPath(),
    args: [
      ...["run", "-A", "--no-prompt", tools.main, "copy"],
      ...[known.warmup.source, known.warmup.target, "--quiet"],
      ...target,
      ...sourceCredentials(credentials),
    ],
    env: { ...tools.env, DOCKER_PUSHER_CACHE_DIR: known.cacheDir },
  };
}

/** skopeo's command line for a scenario. */
function skopeoCommand(tools: LinkTools, scenario: LinkScenario, job: LinkJob): TimedCommand {
  const { credentials } = job;
  const creds = (side: "src" | "dest"): string[] =>
    credentials !== undefined
      ? [`--${side}-creds=${credentials.username}:${credentials.password}`]
      : [];
  const copy = (flags: string[], from: string, to: string): TimedCommand => ({
    command: "skopeo",
    args: ["copy", "--quiet", ...flags, from, to],
    env: tools.env,
  });
  switch (scenario) {
    case "cold":
    case "repush":
      return copy(
        ["--dest-tls-verify=false", ...creds("dest")],
        `docker-archive:${job.archive}`,
        `docker://${job.image}`,
      );
    case "pull":
      return copy(
        ["--src-tls-verify=false", ...creds("src")],
        `docker://${job.image}`,
        `docker-archive:${job.pulled}`,
      );
    case "copy":
    case "copy-known":
      return copy(
        [
          ...["--src-tls-verify=false", "--dest-tls-verify=false"],
          ...creds("src"),
          ...creds("dest"),
        ],
        `docker://${job.image}`,
        `docker://${copyTarget(scenario, job)}`,
      );
    case "sync": {
      const sync = syncOf(job);
      return skopeoSyncCommand(sync.skopeoYaml, sync.skopeoPrefix, tools.env, credentials);
    }
  }
}

/** The command line of `tool` for `scenario`. */
export function linkCommand(
  tools: LinkTools,
  tool: LinkTool,
  scenario: LinkScenario,
  job: LinkJob,
): TimedCommand {
  return tool === "ours" ? oursCommand(tools, scenario, job) : skopeoCommand(tools, scenario, job);
}
