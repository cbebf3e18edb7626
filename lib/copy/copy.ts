/**
 * Registry-to-registry copy. A placeholder with the agreed signature, so the command line can be
 * wired to it; the real implementation replaces this file.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { EventSink } from "../logging/events.ts";
import type { CopyOptions } from "./options.ts";

/** Hooks of a copy run. */
export interface CopyRuntime {
  /** Receives progress events. */
  events?: EventSink;
  /** Aborts the copy (Ctrl-C). */
  signal?: AbortSignal;
}

/** What a copy did. */
export interface CopyResult {
  /** `registry/repository@sha256:…` of the copied manifest or index in the target. */
  digestReference: string;
}

/** Copies an image from one registry to another (not built yet: always throws). */
export function copy(_options: CopyOptions, _runtime: CopyRuntime = {}): Promise<CopyResult> {
  return Promise.reject(new PusherError("internal", "copy is not built yet"));
}
