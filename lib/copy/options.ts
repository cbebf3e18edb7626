/**
 * The settings of one registry-to-registry copy, shared by the command line and the library API.
 *
 * @module
 */

import type { Credentials } from "../credentials/credentials.ts";
import type { TransferSettings } from "../options.ts";

/** Everything a copy needs to know; the shared settings default like a push's (`DEFAULT_PUSH_SETTINGS`). */
export interface CopyOptions extends TransferSettings {
  /** Source reference as docker reads it (`nginx`, `host:port/path/name:tag`, `name@sha256:…`). */
  source: string;
  /** Target reference or URL. */
  target: string;
  /** `OS/ARCH[/VARIANT]` to keep from a multi-platform source; empty keeps every platform. */
  platforms: string[];
  /** Explicit credentials for the source registry; otherwise docker/podman config files. */
  sourceCredentials?: Credentials;
  /** Explicit credentials for the target registry; otherwise docker/podman config files. */
  credentials?: Credentials;
}
