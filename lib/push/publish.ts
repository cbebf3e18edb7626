/**
 * The last steps of a push: make every blob present in the other target repositories, write
 * child manifests by digest, and only then the tags. A push that fails before here writes no tag.
 * A manifest the registry refuses for its shape (media types, attestations) fails as
 * {@link ManifestRefused}, so the caller can build the manifests again in another shape.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { ImageSelection } from "../image/types.ts";
import type { RegistryClient } from "../registry/client.ts";
import { RegistryError } from "../registry/errors.ts";
import type { RepositoryClient } from "./clients.ts";
import { type RunContext } from "./context.ts";
import { type RequestContext, retrying } from "../transfer/retrying_request.ts";
import type { BlobRef, RawDocument } from "../oci/descriptor.ts";
import { INDEX_TYPES } from "../oci/media_types.ts";
import { schedule } from "../transfer/scheduler.ts";
import type { CurrentTags } from "./current_tags.ts";
import { buildImageManifest, buildIndex, type BuiltManifest } from "./manifest_builder.ts";
import { attestationDigests, type ManifestShape, shapedSelection } from "./manifest_shape.ts";
import { ManifestRefused, refusalOf } from "./refusal.ts";

/** The manifests to write: children (by digest) and the top one (by tag). */
export interface ManifestPlan {
  /** Platform manifests of an index, written first, by digest. */
  children: BuiltManifest[];
  /** The manifest (or index) the tags point at. */
  top: BuiltManifest;
  /** Attestation manifests among {@link children}. */
  attestations: number;
  /** Attestation manifests of the archive the shape left out. */
  droppedAttestations: number;
}

/** Builds the manifests from the selection and what its layers became, in the given shape. */
export function planManifests(
  selection: ImageSelection,
  layers: ReadonlyMap<string, BlobRef>,
  shape: ManifestShape = { family: "as-is", dropAttestations: false },
): ManifestPlan {
  const shaped = shapedSelection(selection, shape);
  const pushed = shaped.selection;
  const manifests = pushed.images.map((image) =>
    buildImageManifest(
      image,
      pushed.family,
      image.layers.map((layer) => {
        const outcome = layers.get(layer.entry);
        if (!outcome) throw new PusherError("internal", `layer ${layer.entry} was not pushed`);
        return outcome;
      }),
      shape.family,
    )
  );
  const droppedAttestations = shaped.dropped;
  if (manifests.length === 1) {
    return {
      children: [],
      top: manifests[0] as BuiltManifest,
      attestations: 0,
      droppedAttestations,
    };
  }
  const marked = attestationDigests(pushed);
  return {
    children: manifests,
    top: buildIndex(pushed, manifests),
    attestations: manifests.filter((manifest) => marked.has(manifest.sourceDigest ?? "")).length,
    droppedAttestations,
  };
}

/** Runs a manifest `PUT`; a refusal of the manifest's shape becomes {@link ManifestRefused}. */
async function putShaped<T>(manifest: BuiltManifest, put: () => Promise<T>): Promise<T> {
  try {
    return await put();
  } catch (error) {
    const refusal = refusalOf(error, manifest.mediaType);
    if (refusal === undefined || !(error instanceof RegistryError)) throw error;
    throw new ManifestRefused(refusal, manifest.digest, error);
  }
}

/**
 * Makes every blob of the first repository present in the other target repositories: the checks
 * and mounts of one repository run beside each other, up to the run's `--max-concurrent`.
 */
async function copyBlobs(
  ctx: RunContext,
  others: readonly RepositoryClient[],
  digests: readonly string[],
): Promise<void> {
  for (const target of others) {
    const present = async (digest: string): Promise<void> => {
      const existing = await retrying(
        ctx,
        `HEAD ${digest}`,
        (signal) => target.client.blobExists(digest, signal),
      );
      if (existing.exists || ctx.options.dryRun) return;
      const mounted = await retrying(
        ctx,
        `mount ${digest}`,
        (signal) => target.client.mountBlob(digest, ctx.primary.repository, signal),
      );
      if (!mounted) {
        throw new PusherError(
          "registry",
          `the registry did not mount ${digest} from ${ctx.primary.repository} into ${target.repository}`,
          { hint: "push to that repository in a separate run" },
        );
      }
    };
    await schedule(
      digests.map((digest) => ({ weight: 1, run: () => present(digest) })),
      ctx.options.maxConcurrent,
    );
  }
}

/**
 * Writes the child manifests of an index by digest: the image manifests at once (each needs only
 * its blobs), then any nested index in the given order (after the manifests it lists).
 */
export async function putChildManifests<T extends RawDocument>(
  children: readonly T[],
  put: (child: T) => Promise<void>,
): Promise<void> {
  await Promise.all(children.filter((child) => !INDEX_TYPES.has(child.mediaType)).map(put));
  for (const index of children.filter((child) => INDEX_TYPES.has(child.mediaType))) {
    await put(index);
  }
}

/**
 * Writes a child manifest (an index's image manifest) by its digest, under the run's retries, and
 * reports it (push and copy). `name` is `registry/repository` as shown to the user.
 */
export async function putChildManifest(
  ctx: RequestContext,
  client: RegistryClient,
  name: string,
  child: RawDocument,
): Promise<void> {
  await retrying(
    ctx,
    `manifest ${child.digest}`,
    (signal) => client.putManifest(child.digest, child.bytes, child.mediaType, signal),
    child.bytes.byteLength,
  );
  ctx.emit({
    type: "manifest",
    digest: child.digest,
    mediaType: child.mediaType,
    size: child.bytes.byteLength,
    reference: `${name}@${child.digest}`,
  });
}

/**
 * Writes the top manifest under a tag (push and copy). A registry with immutable tags (ECR)
 * refuses to write a tag again; when the tag already points at this very manifest, that is
 * success.
 */
export async function putTopManifest(
  ctx: RequestContext,
  client: RegistryClient,
  tag: string,
  top: Pick<BuiltManifest, "bytes" | "digest" | "mediaType">,
  reference: string,
): Promise<void> {
  try {
    await retrying(
      ctx,
      `manifest ${reference}`,
      (signal) => client.putManifest(tag, top.bytes, top.mediaType, signal),
      top.bytes.length,
    );
  } catch (error) {
    if (!(error instanceof PusherError) || error.kind !== "registry") throw error;
    const current = await retrying(
      ctx,
      `manifest lookup ${reference}`,
      (signal) => client.getManifestDigest(tag, signal),
    ).catch(() => undefined);
    if (current !== top.digest) throw error;
  }
}

/**
 * Writes manifests and tags to every target; returns the references written. A tag that
 * already pointed at the manifest when the push started (`current`) is not written again.
 */
export async function publish(
  ctx: RunContext,
  targets: readonly RepositoryClient[],
  plan: ManifestPlan,
  blobDigests: readonly string[],
  current: CurrentTags,
): Promise<string[]> {
  const { top, children } = plan;
  for (const target of targets) {
    if (target.pinnedDigest !== undefined && target.pinnedDigest !== top.digest) {
      throw new PusherError(
        "verify",
        `the pushed manifest would be ${top.digest}, not ${target.pinnedDigest} as -r asks`,
      );
    }
  }
  await copyBlobs(ctx, targets.slice(1), blobDigests);
  const references: string[] = [];
  for (const target of targets) {
    // Tags that name the index already mean its children are there.
    if (ctx.options.dryRun || await current.allPointAt([target], top.digest)) continue;
    const put = (child: BuiltManifest): Promise<void> =>
      putShaped(child, () => putChildManifest(ctx, target.client, target.name, child));
    // The first child goes alone: a registry that refuses the manifests' shape refuses it, and
    // the push is built again before the others are sent.
    const [first, ...others] = children;
    if (first !== undefined) await put(first);
    await putChildManifests(others, put);
  }
  for (const target of targets) {
    const tags = target.tags.length > 0 ? target.tags : [top.digest];
    for (const tag of tags) {
      const isDigest = tag.startsWith("sha256:");
      const reference = isDigest ? `${target.name}@${tag}` : `${target.name}:${tag}`;
      references.push(reference);
      if (ctx.options.dryRun) continue;
      if (isDigest || await current.digestOf(target, tag) !== top.digest) {
        await putShaped(top, () => putTopManifest(ctx, target.client, tag, top, reference));
      }
      ctx.emit({
        type: "manifest",
        digest: top.digest,
        mediaType: top.mediaType,
        size: top.bytes.length,
        reference,
      });
      if (!isDigest) ctx.emit({ type: "tag", reference, digest: top.digest });
    }
  }
  return references;
}
