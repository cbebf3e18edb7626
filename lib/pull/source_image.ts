/**
 * What one pull source gives the archive: its manifest tree (read by the shared reader, with the
 * children `--platform` keeps), as the image the archive writer takes, the platforms kept, the
 * one `manifest.json` lists for docker load, and the blobs to download from that repository.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { ImageToWrite } from "../image/archive_plan.ts";
import type { IndexChild } from "../oci/index_filter.ts";
import { INDEX_TYPES } from "../oci/media_types.ts";
import { type Platform, platformMatches, platformName } from "../oci/platform.ts";
import { type ManifestSource, readManifestTree } from "../registry/manifest_tree.ts";
import { formatReference, type Reference } from "../registry/reference.ts";

/** One source, resolved. */
export interface SourceImage {
  /** The source as given, normalised (`registry/repository:tag` or `…@sha256:…`). */
  source: string;
  /** What the archive gets. */
  image: ImageToWrite;
  /** Digest of the manifest or index the source named. */
  sourceDigest: string;
  /** Digest of the manifest or index in the archive (differs when `--platform` rebuilt it). */
  digest: string;
  /** Its media type. */
  mediaType: string;
  /** Its size in bytes. */
  size: number;
  /** `os/arch[/variant]` of every image kept from an index (empty for a single manifest). */
  platforms: string[];
  /** Blobs to download from the source's repository (foreign layers included). */
  blobs: string[];
}

/** The platform of this machine, in OCI words (`linux/amd64`, `linux/arm64`). */
function hostPlatform(): Platform {
  const architectures: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };
  return { os: Deno.build.os, architecture: architectures[Deno.build.arch] ?? Deno.build.arch };
}

/**
 * The platform `manifest.json` should list for docker load: the host's when one of `children`
 * runs on it, else `undefined` (the archive writer then takes the first runnable child).
 */
function loadPlatformFor(children: readonly IndexChild[]): string | undefined {
  const host = hostPlatform();
  const match = children.find((child) =>
    child.describes === undefined && platformMatches(host, child.platform)
  );
  return match?.platform === undefined ? undefined : platformName(match.platform);
}

/** The name the archive records for the source. */
function archiveName(reference: Reference, digest: string): string {
  const { registry, repository, tag } = reference;
  return tag !== undefined
    ? `${registry}/${repository}:${tag}`
    : `${registry}/${repository}@${digest}`;
}

/**
 * Reads the source `reference` through `source`; for an index, keeps the children for
 * `platforms` (all of them when empty).
 *
 * @throws {PusherError} kind `usage` when a wanted platform is missing, `input` for an index
 * that lists another index (the archive holds one level), and what the reader throws.
 */
export async function resolveSource(
  reference: Reference,
  platforms: readonly Platform[],
  source: ManifestSource,
): Promise<SourceImage> {
  const tree = await readManifestTree(
    source,
    reference.digest ?? reference.tag ?? "latest",
    platforms,
  );
  const nested = tree.entries.find((child) => INDEX_TYPES.has(child.mediaType));
  if (nested !== undefined) {
    throw new PusherError(
      "input",
      `index ${tree.sourceDigest} lists another index (${nested.digest})`,
    );
  }
  const image: ImageToWrite = {
    names: [archiveName(reference, tree.top.digest)],
    manifest: tree.top,
  };
  if (INDEX_TYPES.has(tree.top.mediaType)) {
    image.children = tree.children;
    const loadPlatform = loadPlatformFor(tree.entries);
    if (loadPlatform !== undefined) image.loadPlatform = loadPlatform;
  }
  return {
    source: formatReference(reference),
    image,
    sourceDigest: tree.sourceDigest,
    digest: tree.top.digest,
    mediaType: tree.top.mediaType,
    size: tree.top.bytes.length,
    platforms: tree.entries.flatMap((child) =>
      child.describes === undefined && child.platform ? [platformName(child.platform)] : []
    ),
    blobs: [...tree.blobs.map((blob) => blob.digest), ...tree.foreignLayers],
  };
}
