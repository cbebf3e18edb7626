/**
 * The settings of one copy from a registry to a registry, as the library API and the command line
 * share them.
 *
 * @module
 */

import type { ExplicitCredentials } from "../options.ts";

/** Everything a copy needs to know. */
export interface CopyOptions {
  /** The image to read, as docker reads references (`nginx`, `host:port/name:tag`, `name@sha256:…`). */
  source: string;
  /** Where to write it (`host:port/name:tag`, or `…@sha256:…` to pin the result's digest). */
  target: string;
  /** `OS/ARCH[/VARIANT]` values to keep of a multi-platform image; empty keeps it whole. */
  platforms: string[];
  /** Credentials for the source registry; otherwise docker/podman config files are consulted. */
  sourceCredentials?: ExplicitCredentials;
  /** Credentials for the target registry; otherwise docker/podman config files are consulted. */
  credentials?: ExplicitCredentials;
  /** The whole copy's time limit, in seconds. */
  timeoutSeconds: number;
  /** Seconds with no bytes moving before a request is aborted and retried. */
  stallTimeoutSeconds: number;
  /** Parallel blob transfers. */
  maxConcurrent: number;
  /** Retries per request after the first attempt. */
  retryAttempts: number;
  /** Turn TLS certificate verification off (both registries). */
  skipTls: boolean;
  /** Extra PEM CA certificate files to trust (both registries). */
  caCertFiles: string[];
  /** Read manifests and look at the target, but write nothing. */
  dryRun: boolean;
}
