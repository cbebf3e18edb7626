/**
 * Reads what one pull source names: its manifest (by tag or digest), and for a multi-platform
 * index the children kept by `--platform`, giving the image the archive writer takes and the
 * blobs it needs from that repository.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { ImageToWrite } from "../image/archive_plan.ts";
import { arrayField, asObject, optionalString, parseJsonObject } from "../image/json_document.ts";
import type { RawDocument } from "../image/types.ts";
import { DOCKER_MANIFEST_LIST, OCI_INDEX } from "../oci/media_types.ts";
import { type Platform, platformName } from "../oci/platform.ts";
import type { FetchedManifest } from "../registry/client.ts";
import { formatReference, type Reference } from "../registry/reference.ts";
import { keepPlatforms, loadPlatformFor, platformMatches } from "./platforms.ts";

/** Reads a manifest of the source's repository by tag or digest. */
export type ManifestReader = (reference: string) => Promise<FetchedManifest>;

/** Reads a small blob (an image config) of the source's repository whole. */
export type ConfigReader = (digest: string) => Promise<Uint8Array>;

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
  /** Config and layer blobs to download from the source's repository: digest → size. */
  blobs: Map<string, number>;
}

const INDEX_TYPES = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);

function document(fetched: FetchedManifest): RawDocument {
  return { bytes: fetched.bytes, digest: fetched.digest, mediaType: fetched.mediaType };
}

/** Adds the config and layers an image manifest names to `blobs`. */
function collectBlobs(manifest: RawDocument, blobs: Map<string, number>): void {
  const where = `manifest ${manifest.digest}`;
  const json = parseJsonObject(manifest.bytes, where);
  for (const value of [json.config, ...arrayField(json, "layers", where)]) {
    const descriptor = asObject(value, where);
    const { digest, size } = descriptor;
    if (typeof digest !== "string" || typeof size !== "number") {
      throw new PusherError("input", `${where} has a descriptor without digest or size`);
    }
    blobs.set(digest, size);
  }
}

/**
 * Refuses a single-platform image whose config names none of the wanted platforms: `--platform`
 * asks for those, and this image cannot be one of them.
 */
async function checkSinglePlatform(
  reference: Reference,
  manifest: RawDocument,
  platforms: readonly Platform[],
  readConfig: ConfigReader,
): Promise<void> {
  const where = `manifest ${manifest.digest}`;
  const config = asObject(parseJsonObject(manifest.bytes, where).config, `${where} config`);
  if (typeof config.digest !== "string") throw new PusherError("input", `${where} has no config`);
  const json = parseJsonObject(await readConfig(config.digest), `config ${config.digest}`);
  const platform: Platform = {
    os: optionalString(json, "os", `config ${config.digest}`) ?? "",
    architecture: optionalString(json, "architecture", `config ${config.digest}`) ?? "",
  };
  const variant = optionalString(json, "variant", `config ${config.digest}`);
  if (variant !== undefined && variant !== "") platform.variant = variant;
  if (!platforms.some((wanted) => platformMatches(wanted, platform))) {
    throw new PusherError(
      "usage",
      `${formatReference(reference)} is a single-platform image for ${
        platformName(platform)
      }, not ${platforms.map(platformName).join(" or ")}`,
    );
  }
}

/** The name the archive records for the source. */
function archiveName(reference: Reference, digest: string): string {
  const { registry, repository, tag } = reference;
  return tag !== undefined
    ? `${registry}/${repository}:${tag}`
    : `${registry}/${repository}@${digest}`;
}

/**
 * Reads the source `reference` through `read`; for an index, keeps the children for `platforms`
 * (all of them when empty) and reads each.
 *
 * @throws {PusherError} kind `usage` when a wanted platform is missing, `verify` when a pinned
 * digest does not match, and what `read` throws.
 */
export async function resolveSource(
  reference: Reference,
  platforms: readonly Platform[],
  read: ManifestReader,
  readConfig: ConfigReader,
): Promise<SourceImage> {
  const top = document(await read(reference.digest ?? reference.tag ?? "latest"));
  if (reference.digest !== undefined && top.digest !== reference.digest) {
    throw new PusherError("verify", `${formatReference(reference)} resolved to ${top.digest}`);
  }
  const blobs = new Map<string, number>();
  if (!INDEX_TYPES.has(top.mediaType)) {
    collectBlobs(top, blobs);
    if (platforms.length > 0) await checkSinglePlatform(reference, top, platforms, readConfig);
    return {
      source: formatReference(reference),
      image: { names: [archiveName(reference, top.digest)], manifest: top },
      sourceDigest: top.digest,
      digest: top.digest,
      mediaType: top.mediaType,
      size: top.bytes.length,
      platforms: [],
      blobs,
    };
  }
  const kept = keepPlatforms(top, platforms);
  const children: RawDocument[] = [];
  for (const child of kept.children) {
    if (INDEX_TYPES.has(child.mediaType)) {
      throw new PusherError("input", `index ${top.digest} lists another index (${child.digest})`);
    }
    const manifest = document(await read(child.digest));
    collectBlobs(manifest, blobs);
    children.push(manifest);
  }
  const image: ImageToWrite = {
    names: [archiveName(reference, kept.index.digest)],
    manifest: kept.index,
    children,
  };
  const loadPlatform = loadPlatformFor(kept.children);
  if (loadPlatform !== undefined) image.loadPlatform = loadPlatform;
  return {
    source: formatReference(reference),
    image,
    sourceDigest: top.digest,
    digest: kept.index.digest,
    mediaType: kept.index.mediaType,
    size: kept.index.bytes.length,
    platforms: kept.children.flatMap((child) =>
      child.describes === undefined && child.platform ? [platformName(child.platform)] : []
    ),
    blobs,
  };
}
