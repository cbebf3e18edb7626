/**
 * The settings of one sync, shared by the command line and the library API.
 *
 * @module
 */

import type { Credentials } from "../credentials/credentials.ts";
import type { Compression } from "../oci/media_types.ts";
import { DEFAULT_PUSH_SETTINGS, type TransferSettings } from "../options.ts";

/**
 * Everything a sync needs to know (the transfer settings apply to each image: `timeoutSeconds` is
 * each image's limit). Defaults live in {@link DEFAULT_SYNC_SETTINGS}.
 */
export interface SyncOptions extends TransferSettings {
  /** The LIST file: one image per line (see `lib/sync/list_file.ts`). */
  from: string;
  /** The target prefix, `registry[:port][/namespace]`, that lines without `=> TARGET` land under. */
  to: string;
  /** Keep only the last path segment of a repository under the prefix. */
  flatten: boolean;
  /** Images transferred at once. */
  parallelImages: number;
  /**
   * Lines checked (`HEAD` of source and target, both at once) at once. Checks are small requests,
   * so many more go at once than transfers: the lines of a short LIST in one round.
   */
  parallelChecks: number;
  /**
   * Credentials for the prefix's registry; when absent, and for sources and for targets on other
   * registries, docker/podman config files and credential helpers are consulted.
   */
  credentials?: Credentials;
  /** What uncompressed layers of archive sources are compressed with. */
  compression: Compression;
  /** Layers of archive sources larger than this many bytes go up in chunks. */
  largeLayerThreshold: number;
  /**
   * Archive sources: skip the local layer cache and resume state; every line: start from no token
   * realm an earlier run remembered (and keep none).
   */
  noCache: boolean;
}

/** Default values of the tunable settings of a sync. */
export const DEFAULT_SYNC_SETTINGS: Readonly<
  Pick<
    SyncOptions,
    | "flatten"
    | "parallelImages"
    | "parallelChecks"
    | "timeoutSeconds"
    | "stallTimeoutSeconds"
    | "maxConcurrent"
    | "retryAttempts"
    | "compression"
    | "largeLayerThreshold"
  >
> = {
  flatten: false,
  parallelImages: 3,
  parallelChecks: 32,
  timeoutSeconds: DEFAULT_PUSH_SETTINGS.timeoutSeconds,
  stallTimeoutSeconds: DEFAULT_PUSH_SETTINGS.stallTimeoutSeconds,
  maxConcurrent: DEFAULT_PUSH_SETTINGS.maxConcurrent,
  retryAttempts: DEFAULT_PUSH_SETTINGS.retryAttempts,
  compression: DEFAULT_PUSH_SETTINGS.compression,
  largeLayerThreshold: DEFAULT_PUSH_SETTINGS.largeLayerThreshold,
};
