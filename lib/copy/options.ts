/**
 * The settings of one registry-to-registry copy, shared by the command line and the library API.
 *
 * @module
 */

import type { ExplicitCredentials } from "../options.ts";

/** Everything a copy needs to know. Tunables default like a push's (`DEFAULT_PUSH_SETTINGS` in lib/options.ts). */
export interface CopyOptions {
  /** Source reference as docker reads it (`nginx`, `host:port/path/name:tag`, `name@sha256:…`). */
  source: string;
  /** Target reference or URL. */
  target: string;
  /** `OS/ARCH[/VARIANT]` to keep from a multi-platform source; empty keeps every platform. */
  platforms: string[];
  /** Explicit credentials for the source registry; otherwise docker/podman config files. */
  sourceCredentials?: ExplicitCredentials;
  /** Explicit credentials for the target registry; otherwise docker/podman config files. */
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
  /** Read the source and plan, but write nothing to the target. */
  dryRun: boolean;
}
