/**
 * Choosing among the images an archive holds: the options that pick one for a push, and the
 * listing of every one (for `ls`), each resolved as a push choosing it would resolve it.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import type { ImageSelection } from "./types.ts";

/** Options of `resolveLayout`. */
export interface LayoutOptions {
  /** Which image of a multi-image archive (`name:tag`, a bare tag, or a digest). */
  image?: string | undefined;
  /**
   * The arguments that point `ls` at this archive or store (its path, or `--containerd-root DIR
   * --namespace NS`), for the hint when several images are there and {@link image} is absent;
   * the hint says `FILE` without them.
   */
  lsArguments?: readonly string[] | undefined;
}

/** One image an archive holds, and what a push that chooses it would push. */
export interface LayoutImage {
  /** Its names as the archive stores them (what `--image` matches); empty when untagged. */
  names: string[];
  /** The `index.json` entry naming it (OCI layouts); absent for docker `manifest.json` images. */
  descriptor?: Descriptor;
  /** What a push choosing it would push, or why that push would fail. */
  resolved: ImageSelection | PusherError;
}

/** Waits for a resolution; a {@link PusherError} becomes the result, other errors propagate. */
export async function settle<T>(resolving: Promise<T>): Promise<T | PusherError> {
  try {
    return await resolving;
  } catch (error) {
    if (error instanceof PusherError) return error;
    throw error;
  }
}
