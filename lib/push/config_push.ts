/**
 * The image configs: their digests are known before any layer is read, so each is looked up and
 * uploaded at the start, beside the layers, and the upload stops before its closing `PUT` when
 * the lookup found it.
 *
 * @module
 */

import type { ImageSelection } from "../image/types.ts";
import type { RunContext } from "./context.ts";
import { isRetryable } from "../transfer/retry.ts";
import { retrying } from "../transfer/retrying_request.ts";
import { pushBytes } from "./layer_push.ts";

/**
 * A lookup of each distinct config of the selection, sent now (none with `--force-upload`); one
 * the registry refuses for good stops the run.
 */
export function configLookups(
  ctx: RunContext,
  selection: ImageSelection,
): Map<string, Promise<boolean>> {
  const lookups = new Map<string, Promise<boolean>>();
  if (ctx.options.forceUpload) return lookups;
  for (const image of selection.images) {
    const digest = image.config.digest;
    if (lookups.has(digest)) continue;
    const lookup = retrying(
      ctx,
      `HEAD ${digest}`,
      (signal) => ctx.primary.client.blobExists(digest, signal),
    ).then((status) => status.exists);
    // A lookup the registry refuses for good (403: no such namespace, no permission) ends the
    // run with its own message, before the uploads beside it get further.
    lookup.catch((error: unknown) => {
      if (!isRetryable(error)) ctx.abort(error);
    });
    lookups.set(digest, lookup);
  }
  return lookups;
}

/** Starts the upload of each distinct config beside its lookup; failures surface when awaited. */
export function pushConfigs(
  ctx: RunContext,
  selection: ImageSelection,
  lookups: ReadonlyMap<string, Promise<boolean>>,
): Promise<void>[] {
  const seen = new Map<string, Uint8Array>();
  for (const image of selection.images) seen.set(image.config.digest, image.config.bytes);
  return [...seen].map(([digest, bytes]) => {
    const push = pushBytes(ctx, bytes, digest, lookups.get(digest));
    push.catch(() => {});
    return push;
  });
}
