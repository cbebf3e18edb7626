/**
 * The settings of `push --all`: a push's, with a target prefix instead of targets, shared by the
 * command line and the library API.
 *
 * @module
 */

import type { PushOptions } from "../options.ts";

/** Everything `push --all` needs to know. */
export interface BundlePushOptions extends Omit<PushOptions, "targets" | "image" | "file"> {
  /** The archive holding the images (a file; standard input cannot be read once per image). */
  file: string;
  /**
   * `registry[:port][/namespace]` (or a URL of one): every image lands at
   * `PREFIX/<repository path>:<tag>`.
   */
  prefix: string;
  /** Keep only the last path segment of each repository under the prefix. */
  flatten: boolean;
  /** Images pushed at once; 3 when absent. */
  parallelImages?: number;
}

/** Images pushed at once by default. */
export const DEFAULT_PARALLEL_IMAGES = 3;
