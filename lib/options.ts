/**
 * The settings of one push, as the library API and the command line share them.
 *
 * @module
 */

import type { Credentials } from "./credentials/credentials.ts";
import type { Compression } from "./oci/media_types.ts";

/**
 * The media types of the pushed manifests: `auto` pushes the archive's own and converts to
 * Docker's only when the registry refuses OCI media types; `oci` and `docker` convert up front.
 */
export type ManifestFormat = "auto" | "oci" | "docker";

/**
 * What happens to BuildKit attestation manifests in an index: `keep` pushes them and leaves them
 * out only when the registry refuses them; `drop` leaves them out up front.
 */
export type AttestationPolicy = "keep" | "drop";

/** How progress is shown. */
export type OutputMode = "tty" | "plain" | "json" | "quiet";

/**
 * The settings every command (push, pull, copy) shares: time limits, retries, parallel
 * transfers, TLS and dry run. Defaults live in {@link DEFAULT_PUSH_SETTINGS}.
 */
export interface TransferSettings {
  /** The whole run's time limit, in seconds. */
  timeoutSeconds: number;
  /** Seconds with no bytes moving before a request is aborted and retried. */
  stallTimeoutSeconds: number;
  /** Parallel blob transfers (uploads, downloads or copies). */
  maxConcurrent: number;
  /**
   * Retries after failures in a row (0: no retry at all); a registry that is out is waited for by
   * time instead (see `lib/transfer/retry.ts`).
   */
  retryAttempts: number;
  /** Turn TLS certificate verification off (for every registry of the run). */
  skipTls: boolean;
  /** Extra PEM CA certificate files to trust. */
  caCertFiles: string[];
  /** Read, verify and plan, but transfer and write nothing. */
  dryRun: boolean;
}

/** Everything a push needs to know. Defaults live in {@link DEFAULT_PUSH_SETTINGS}. */
export interface PushOptions extends TransferSettings {
  /**
   * Archive path, or `-` for standard input. With {@link containerdRoot} set, it only names the
   * source in progress events.
   */
  file: string;
  /**
   * Push from this containerd root (e.g. `/var/lib/containerd`) instead of an archive, read-only;
   * {@link image} names the image.
   */
  containerdRoot?: string;
  /** The containerd namespace to read (`default` when absent; k3s and Kubernetes use `k8s.io`). */
  namespace?: string;
  /** Target references or URLs; the first is where blobs go, the rest get the same manifest. */
  targets: string[];
  /**
   * Credentials for every target (flags, env, stdin, or the library caller); when absent,
   * docker/podman config files and credential helpers are consulted per target.
   */
  credentials?: Credentials;
  /** Layers larger than this many bytes go up in chunks. */
  largeLayerThreshold: number;
  /** Upload blobs even when the registry has them. */
  forceUpload: boolean;
  /** What uncompressed layers are compressed with. */
  compression: Compression;
  /** Which image of a multi-image archive or a containerd namespace (`name:tag`). */
  image?: string;
  /** Repository on the same registry to mount blobs from. */
  mountFrom?: string;
  /** Skip the local cache and resume state (always re-check with the registry). */
  noCache: boolean;
  /** Media types of the pushed manifests; `auto` when absent. */
  format?: ManifestFormat;
  /** Attestation manifests of an index; `keep` when absent. */
  attestations?: AttestationPolicy;
}

/** Default values of the tunable settings. */
export const DEFAULT_PUSH_SETTINGS: Readonly<
  Pick<
    PushOptions,
    | "timeoutSeconds"
    | "stallTimeoutSeconds"
    | "largeLayerThreshold"
    | "maxConcurrent"
    | "retryAttempts"
    | "compression"
  >
> = {
  timeoutSeconds: 7200,
  stallTimeoutSeconds: 60,
  largeLayerThreshold: 1024 * 1024 * 1024,
  maxConcurrent: 4,
  retryAttempts: 3,
  compression: "gzip",
};
