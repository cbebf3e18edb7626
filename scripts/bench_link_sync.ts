/**
 * The sync row of the long-link table: a list of small images put into a link's first registry
 * (with skopeo, straight to the registry, not through the delay), a LIST and a skopeo yaml naming
 * them through the delay proxy, and a first sync by each tool (untimed), so the timed second
 * syncs find every image unchanged.
 *
 * @module
 */

import { join } from "node:path";
import type { LinkSyncJob, LinkTools } from "./bench_link_commands.ts";
import type { TimedCommand } from "./bench_process.ts";
import {
  type BenchCredentials,
  ourSyncCommand,
  seedWithSkopeo,
  skopeoSyncCommand,
  syncImageRepositories,
  writeDockerConfig,
  writeSkopeoSyncYaml,
  writeSyncImages,
  writeSyncList,
} from "./bench_sync_images.ts";

/** What a link's sync rows need. */
export interface LinkSyncSetup {
  /** The LIST, yaml, prefixes and docker config of the timed syncs. */
  job: LinkSyncJob;
}

/** Options of {@link linkSyncSetup}. */
export interface LinkSyncOptions {
  /** `main.ts` and the environment of the children. */
  tools: LinkTools;
  /** Where images, lists and caches go (created). */
  dir: string;
  /** Images in the list. */
  images: number;
  /** The source registry: straight (to fill it) and through the delay proxy (to sync from). */
  source: { direct: string; far: string };
  /** The target registry through its delay proxy. */
  target: string;
  /** Credentials of both registries, when they want a token. */
  credentials?: BenchCredentials;
  /** Runs a command to its end (throws when it fails). */
  timed: (run: TimedCommand, what: string) => Promise<number>;
}

/** Fills the source, writes the lists and runs each tool's first sync. */
export async function linkSyncSetup(options: LinkSyncOptions): Promise<LinkSyncSetup> {
  const { dir, credentials, tools } = options;
  const repositories = syncImageRepositories(options.images);
  const archives = await writeSyncImages(join(dir, "images"), repositories, 500, 16 * 1024);
  await seedWithSkopeo(archives, repositories, options.source.direct, tools.env, credentials);
  const syncList = join(dir, "images.txt");
  const skopeoYaml = join(dir, "images.yaml");
  await writeSyncList(syncList, options.source.far, repositories);
  await writeSkopeoSyncYaml(skopeoYaml, options.source.far, repositories, credentials);
  const dockerConfigDir = credentials !== undefined
    ? await writeDockerConfig(join(dir, "docker"), [options.source.far], credentials)
    : undefined;
  const job: LinkSyncJob = {
    syncList,
    skopeoYaml,
    syncPrefix: `${options.target}/mirror`,
    skopeoPrefix: `${options.target}/skopeo-mirror`,
    ...(dockerConfigDir !== undefined ? { dockerConfigDir } : {}),
  };
  const cache = join(dir, "cache");
  await options.timed(
    ourSyncCommand(
      tools.main,
      syncList,
      job.syncPrefix,
      tools.env,
      cache,
      credentials,
      dockerConfigDir,
    ),
    "our first sync",
  );
  await options.timed(
    skopeoSyncCommand(skopeoYaml, job.skopeoPrefix, tools.env, credentials),
    "skopeo's first sync",
  );
  return { job };
}
