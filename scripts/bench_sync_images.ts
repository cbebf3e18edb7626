/**
 * The sync workload of `deno task bench`: a set of small images (`bench/img-01:latest`, …, each a
 * docker-archive from the sample writer) put into a source registry with skopeo, a LIST naming
 * them for our sync and the same list as a skopeo `sync --src yaml` file, and the command lines
 * of both tools' syncs into a prefix (`PREFIX/bench/img-NN:latest` for both): ours is the command
 * a user runs, `main.ts sync --from LIST --to PREFIX --json`.
 *
 * @module
 */

import { join } from "node:path";
import { writeSampleDockerArchive } from "../tests/helpers/sample_archive.ts";
import { RUNTIME_V8_FLAGS } from "./compile.ts";
import type { TimedCommand } from "./bench_process.ts";

const TAG = "latest";
const SEED_PARALLEL = 4;

/** A user name and password for registries that want them. */
export interface BenchCredentials {
  /** User name. */
  username: string;
  /** Password. */
  password: string;
}

/** The repository of the `index`-th image (0-based): `bench/img-01`, … */
export function syncImageRepository(index: number): string {
  return `bench/img-${String(index + 1).padStart(2, "0")}`;
}

/** The repositories of `count` images. */
export function syncImageRepositories(count: number): string[] {
  return Array.from({ length: count }, (_, index) => syncImageRepository(index));
}

/**
 * Writes one small docker-archive per repository into `dir`, each from its own seed
 * (`seed + index`), so no two share a layer; returns their paths in order.
 */
export async function writeSyncImages(
  dir: string,
  repositories: readonly string[],
  seed: number,
  randomBytes: number,
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (const [index, repository] of repositories.entries()) {
    const path = join(dir, `${repository.replaceAll("/", "_")}-${seed + index}.tar`);
    await writeSampleDockerArchive(path, {
      layers: 3,
      randomBytes,
      seed: seed + index,
      name: `${repository}:${TAG}`,
    });
    paths.push(path);
  }
  return paths;
}

/** skopeo's copy of each archive to `host/<repository>:latest`, a few at a time. */
export async function seedWithSkopeo(
  archives: readonly string[],
  repositories: readonly string[],
  host: string,
  env: Record<string, string>,
  credentials?: BenchCredentials,
): Promise<void> {
  const queue = archives.map((archive, index) => ({ archive, repository: repositories[index] }));
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      const creds = credentials !== undefined
        ? [`--dest-creds=${credentials.username}:${credentials.password}`]
        : [];
      const output = await new Deno.Command("skopeo", {
        args: [
          ...["copy", "--quiet", "--dest-tls-verify=false", ...creds],
          `docker-archive:${next.archive}`,
          `docker://${host}/${next.repository}:${TAG}`,
        ],
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!output.success) {
        throw new Error(
          `skopeo copy of ${next.archive} to ${host} failed: ` +
            new TextDecoder().decode(output.stderr).trim(),
        );
      }
    }
  };
  await Promise.all(Array.from({ length: SEED_PARALLEL }, worker));
}

/** Writes our LIST: one `host/<repository>:latest` per line. */
export async function writeSyncList(
  path: string,
  sourceHost: string,
  repositories: readonly string[],
): Promise<void> {
  const lines = repositories.map((repository) => `${sourceHost}/${repository}:${TAG}`);
  await Deno.writeTextFile(path, ["# deno task bench: sync images", ...lines, ""].join("\n"));
}

/** Writes the same list as a skopeo `sync --src yaml` file. */
export async function writeSkopeoSyncYaml(
  path: string,
  sourceHost: string,
  repositories: readonly string[],
  credentials?: BenchCredentials,
): Promise<void> {
  const lines = [`"${sourceHost}":`, "  tls-verify: false"];
  if (credentials !== undefined) {
    lines.push(
      "  credentials:",
      `    username: ${JSON.stringify(credentials.username)}`,
      `    password: ${JSON.stringify(credentials.password)}`,
    );
  }
  lines.push("  images:", ...repositories.map((repository) => `    ${repository}: [${TAG}]`));
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
}

/**
 * Our sync of `list` into `prefix` through `main` (the CLI, printing its events as JSON); the
 * prefix registry's credentials go in the environment, those of sources in the docker config at
 * `dockerConfigDir`.
 */
export function ourSyncCommand(
  main: string,
  list: string,
  prefix: string,
  env: Record<string, string>,
  cacheDir: string,
  credentials?: BenchCredentials,
  dockerConfigDir?: string,
): TimedCommand {
  return {
    command: Deno.execPath(),
    args: [
      ...["run", "-A", "--no-prompt", RUNTIME_V8_FLAGS, main],
      ...["sync", "--from", list, "--to", prefix, "--json"],
    ],
    env: {
      ...env,
      DOCKER_PUSHER_CACHE_DIR: cacheDir,
      ...(credentials !== undefined
        ? {
          DOCKER_PUSHER_USERNAME: credentials.username,
          DOCKER_PUSHER_PASSWORD: credentials.password,
        }
        : {}),
      ...(dockerConfigDir !== undefined ? { DOCKER_CONFIG: dockerConfigDir } : {}),
    },
  };
}

/** skopeo's sync of the yaml list into `prefix`. */
export function skopeoSyncCommand(
  yaml: string,
  prefix: string,
  env: Record<string, string>,
  credentials?: BenchCredentials,
): TimedCommand {
  const creds = credentials !== undefined
    ? [`--dest-creds=${credentials.username}:${credentials.password}`]
    : [];
  return {
    command: "skopeo",
    args: [
      ...["sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", ...creds],
      ...[yaml, prefix],
    ],
    env,
  };
}

/** Writes a docker config giving `credentials` for each host; returns its directory. */
export async function writeDockerConfig(
  dir: string,
  hosts: readonly string[],
  credentials: BenchCredentials,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const auth = btoa(`${credentials.username}:${credentials.password}`);
  const auths = Object.fromEntries(hosts.map((host) => [host, { auth }]));
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify({ auths }));
  return dir;
}

/** What our sync's result says about the lines of a run. */
export interface SyncTally {
  /** Lines transferred. */
  transferred: number;
  /** Lines left as they were. */
  unchanged: number;
  /** Lines that failed. */
  failed: number;
  /** Bytes sent for the lines transferred. */
  transferredBytes: number;
  /** Bytes sent for the lines reported unchanged (the goal: 0). */
  unchangedBytes: number;
}

/** Counts the lines of a sync from its `--json` events: one `sync` event per LIST line. */
export function tallySyncResult(ndjson: string): SyncTally {
  const lines = ndjson.split("\n").filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as { type: string; status?: string; bytesSent?: number })
    .filter((event) => event.type === "sync")
    .map((event) => ({ status: event.status ?? "", bytesSent: event.bytesSent ?? 0 }));
  const tally: SyncTally = {
    transferred: 0,
    unchanged: 0,
    failed: 0,
    transferredBytes: 0,
    unchangedBytes: 0,
  };
  for (const line of lines) {
    if (line.status === "transferred") {
      tally.transferred++;
      tally.transferredBytes += line.bytesSent;
    } else if (line.status === "unchanged") {
      tally.unchanged++;
      tally.unchangedBytes += line.bytesSent;
    } else tally.failed++;
  }
  return tally;
}
