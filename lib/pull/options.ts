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
  /**
   * A LIST file (the sync list format, registry sources only, no `=> TARGET`) whose images are
   * pulled after {@link sources}; a line's own `--platform=` options replace {@link platforms}.
   */
  from?: string;
  /**
   * Write a delta bundle: leave out the layers the far side already holds — those of an earlier
   * bundle (a file path), or those a mirror under a registry prefix has (looked up with `HEAD`).
   */
  excludeFrom?: string;
  /**
   * With a registry prefix in {@link excludeFrom}: the mirror keeps only the last path segment of
   * each repository (as `push --all --flatten` names them).
   */
  flatten?: boolean;
}
