/**
 * Keeping only some platforms of a multi-platform index: the image manifests whose platform
 * matches a wanted one, with the BuildKit attestation manifests that describe them, listed in a
 * new index (same fields, fewer `manifests`). The children keep their bytes and digests; only the
 * index changes, and when nothing is dropped it keeps its original bytes, so its digest stays.
 *
 * @module
 */

import { sha256Digest } from "../bytes/sha256.ts";
import { PusherError } from "../errors.ts";
import {
  DOCKER_REFERENCE_DIGEST_ANNOTATION,
  DOCKER_REFERENCE_TYPE_ANNOTATION,
} from "./annotations.ts";
import type { Descriptor, RawDocument } from "./descriptor.ts";
import { type Platform, platformMatches, platformName } from "./platform.ts";

/** An entry of an index, as platform filtering reads it. */
export interface IndexChild extends Pick<Descriptor, "digest" | "mediaType" | "size"> {
  /** Its platform, when the index names one. */
  platform?: Platform;
  /** For an attestation manifest: the digest of the image manifest it describes. */
  describes?: string;
}

/** An index after {@link filterIndex}. */
export interface FilteredIndex {
  /** The index: the original document when every child is kept, else a new one. */
  index: RawDocument;
  /** The children it lists, in index order. */
  children: IndexChild[];
  /** True when children were dropped, so {@link index} is new and has another digest. */
  rebuilt: boolean;
}

const encoder = new TextEncoder();

/**
 * The entries of an index's `manifests` array (`json` is the parsed index).
 *
 * @throws {PusherError} kind `input`, naming `where`, for an entry without digest or size.
 */
export function indexChildren(
  json: Readonly<Record<string, unknown>>,
  where: string,
): IndexChild[] {
  const manifests = json.manifests;
  if (!Array.isArray(manifests)) {
    throw new PusherError("input", `${where} has no "manifests" array`);
  }
  return manifests.map((value, i) => {
    const entry: Record<string, unknown> = typeof value === "object" && value !== null
      ? value as Record<string, unknown>
      : {};
    const { digest, size, mediaType, platform, annotations } = entry;
    if (typeof digest !== "string" || typeof size !== "number" || !Number.isSafeInteger(size)) {
      throw new PusherError("input", `${where} entry ${i + 1} has no digest or size`);
    }
    const child: IndexChild = { digest, size, mediaType: String(mediaType ?? "") };
    if (typeof platform === "object" && platform !== null) {
      const { os, architecture, variant } = platform as Record<string, unknown>;
      if (typeof os === "string" && typeof architecture === "string") {
        child.platform = { os, architecture };
        if (typeof variant === "string" && variant !== "") child.platform.variant = variant;
      }
    }
    if (typeof annotations === "object" && annotations !== null) {
      const notes = annotations as Record<string, unknown>;
      const subject = notes[DOCKER_REFERENCE_DIGEST_ANNOTATION];
      if (
        notes[DOCKER_REFERENCE_TYPE_ANNOTATION] === "attestation-manifest" &&
        typeof subject === "string"
      ) {
        child.describes = subject;
      }
    }
    return child;
  });
}

/**
 * Keeps the children of `index` (parsed as `json`) that run on one of `wanted` (every child when
 * `wanted` is empty), with the attestations describing them.
 *
 * @throws {PusherError} kind `usage` when a wanted platform has no image in the index, naming
 * the platforms it has; kind `input` for a malformed index.
 */
export function filterIndex(
  index: RawDocument,
  json: Readonly<Record<string, unknown>>,
  wanted: readonly Platform[],
): FilteredIndex {
  const where = `index ${index.digest}`;
  const children = indexChildren(json, where);
  if (wanted.length === 0) return { index, children, rebuilt: false };
  const images = children.filter((child) => child.describes === undefined);
  const missing = wanted.filter((platform) =>
    !images.some((child) => platformMatches(platform, child.platform))
  );
  if (missing.length > 0) {
    const available = images.flatMap((child) =>
      child.platform ? [platformName(child.platform)] : []
    );
    throw new PusherError(
      "usage",
      `${where} has no image for ${missing.map(platformName).join(", ")} (it has ${
        available.join(", ") || "no named platform"
      })`,
      { hint: "leave --platform out to take every platform" },
    );
  }
  const keptImages = new Set(
    images.filter((child) => wanted.some((platform) => platformMatches(platform, child.platform)))
      .map((child) => child.digest),
  );
  const keep = children.map((child) =>
    keptImages.has(child.digest) ||
    (child.describes !== undefined && keptImages.has(child.describes))
  );
  if (keep.every(Boolean)) return { index, children, rebuilt: false };
  const manifests = (json.manifests as unknown[]).filter((_, i) => keep[i]);
  const bytes = encoder.encode(JSON.stringify({ ...json, manifests }));
  return {
    index: { bytes, digest: sha256Digest(bytes), mediaType: index.mediaType },
    children: children.filter((_, i) => keep[i]),
    rebuilt: true,
  };
}
