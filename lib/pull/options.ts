/**
 * The settings of one pull, shared by the command line and the library API.
 *
 * @module
 */

import type { Credentials } from "../credentials/credentials.ts";
import type { TransferSettings } from "../options.ts";

/** Everything a pull needs to know; the shared settings default like a push's (`DEFAULT_PUSH_SETTINGS`). */
export interface PullOptions extends TransferSettings {
  /** Images to pull, as docker reads them (`nginx`, `host:port/path/name:tag`, `name@sha256:…`). */
  sources: string[];
  /** The archive to write, or `-` for standard output (which cannot resume). */
  output: string;
  /** `OS/ARCH[/VARIANT]` to keep from multi-platform images; empty keeps every platform. */
  platforms: string[];
  /** Explicit credentials for the source registries; otherwise docker/podman config files. */
  credentials?: Credentials;
}
