/**
 * The shortcut of an unchanged re-push: when every layer's registry digest is known without
 * reading it, the manifest the push would write is known too; when every tag already names it,
 * the registry holds it and all it refers to, and the push reports that and stops.
 *
 * @module
 */

import type { ImageSelection } from "../image/types.ts";
import type { RepositoryClient } from "./clients.ts";
import { emitBlob, type RunContext } from "./context.ts";
import { knownOutcome } from "./layer_push.ts";
import type { BlobRef } from "../oci/descriptor.ts";
import type { ManifestShape } from "./manifest_shape.ts";
import { type ManifestPlan, planManifests } from "./publish.ts";
import { uniqueLayers } from "./selection.ts";

/**
 * The manifests the push would write, when every layer's registry digest is known without
 * reading it (compressed layers, or layers the cache knows), in `shape`; otherwise `undefined`.
 */
export function plannedFromKnown(
  ctx: RunContext,
  selection: ImageSelection,
  shape: ManifestShape,
): ManifestPlan | undefined {
  const layers = new Map<string, BlobRef>();
  for (const layer of uniqueLayers(selection)) {
    const known = knownOutcome(ctx, layer);
    if (known === undefined) return undefined;
    layers.set(layer.entry, known);
  }
  return planManifests(selection, layers, shape);
}

/** Reports an image whose tags already name its manifest: every blob is there, nothing to do. */
export function reportPublished(
  ctx: RunContext,
  selection: ImageSelection,
  plan: ManifestPlan,
  targets: readonly RepositoryClient[],
): string[] {
  const reason = "the tag already names this manifest";
  for (const image of selection.images) {
    const { digest, bytes } = image.config;
    emitBlob(ctx, { id: digest, digest, size: bytes.length, role: "config" }, "exists", reason);
  }
  for (const layer of uniqueLayers(selection)) {
    const known = knownOutcome(ctx, layer);
    const id = layer.storedDigest ?? layer.diffId ?? layer.entry;
    const blob = { id, size: layer.size, role: "layer" as const };
    emitBlob(
      ctx,
      known ? { ...blob, digest: known.digest, uploadSize: known.size } : blob,
      "exists",
      reason,
    );
  }
  const references: string[] = [];
  for (const target of targets) {
    for (const tag of target.tags) {
      const reference = `${target.name}:${tag}`;
      references.push(reference);
      ctx.emit({
        type: "manifest",
        digest: plan.top.digest,
        mediaType: plan.top.mediaType,
        size: plan.top.bytes.length,
        reference,
      });
      ctx.emit({ type: "tag", reference, digest: plan.top.digest });
    }
  }
  return references;
}
