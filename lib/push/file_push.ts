/**
 * Pushing from a plain tar file: every layer is read in place at its offset, several at a time,
 * largest first.
 *
 * @module
 */

import type { RandomAccessArchive } from "../image/random_access.ts";
import type { ImageSelection } from "../image/types.ts";
import { schedule } from "../transfer/scheduler.ts";
import type { RunContext } from "./context.ts";
import { pushLayer } from "./layer_push.ts";
import type { BlobRef } from "../oci/descriptor.ts";
import { uniqueLayers } from "./selection.ts";

/** Pushes every layer of the selection; returns what each became, by archive entry. */
export async function pushFromFile(
  ctx: RunContext,
  archive: RandomAccessArchive,
  selection: ImageSelection,
): Promise<Map<string, BlobRef>> {
  const layers = uniqueLayers(selection);
  const results = await schedule(
    layers.map((layer) => ({
      weight: layer.size,
      run: () => pushLayer(ctx, layer, () => archive.openEntry(layer.entry)),
    })),
    ctx.options.maxConcurrent,
    ctx.signal,
  );
  return new Map(layers.map((layer, index) => [layer.entry, results[index] as BlobRef]));
}
