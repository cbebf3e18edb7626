/**
 * Builds the manifests to push from an archive image and what its layers became on the way up.
 * An unchanged source manifest goes up byte for byte; a changed one keeps its annotations and
 * fields and only gets new layer descriptors. Docker and OCI media types are never mixed.
 *
 * @module
 */

import { sha256Digest } from "../bytes/sha256.ts";
import type { ArchiveImage, ImageSelection, RawDocument } from "../image/types.ts";
import type { BlobRef, Descriptor } from "../oci/descriptor.ts";
import type { Platform } from "../oci/platform.ts";
import {
  configMediaType,
  familyOf,
  IMAGE_CONFIG_TYPES,
  indexMediaType,
  isTarLayerType,
  layerMediaType,
  type ManifestFamily,
  manifestMediaType,
} from "../oci/media_types.ts";

/** A manifest or index ready to upload: the exact bytes, their digest and their Content-Type. */
export interface BuiltManifest extends RawDocument {
  /** The platform, for an index entry. */
  platform?: Platform;
}

function built(json: unknown, mediaType: string, platform: Platform | undefined): BuiltManifest {
  const bytes = new TextEncoder().encode(JSON.stringify(json));
  const manifest: BuiltManifest = { bytes, digest: sha256Digest(bytes), mediaType };
  if (platform) manifest.platform = platform;
  return manifest;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Chooses the family of the pushed manifest: OCI sources stay OCI; docker sources stay docker
 * only when every layer goes up as gzip (docker has no other layer type).
 */
export function outputFamily(
  sourceFamily: ManifestFamily,
  layers: readonly BlobRef[],
): ManifestFamily {
  if (sourceFamily === "oci") return "oci";
  return layers.every((layer) => layer.compression === "gzip") ? "docker" : "oci";
}

function sourceLayers(image: ArchiveImage): JsonObject[] | undefined {
  if (!image.sourceManifest) return undefined;
  const parsed: unknown = JSON.parse(new TextDecoder().decode(image.sourceManifest.bytes));
  if (!isObject(parsed) || !Array.isArray(parsed["layers"])) return undefined;
  return parsed["layers"].filter(isObject);
}

/** The family a config or tar-layer media type belongs to; undefined for any other type. */
function familyOfBlobType(mediaType: unknown): ManifestFamily | undefined {
  if (typeof mediaType !== "string") return undefined;
  if (!isTarLayerType(mediaType) && !IMAGE_CONFIG_TYPES.includes(mediaType)) return undefined;
  return mediaType.startsWith("application/vnd.docker.") ? "docker" : "oci";
}

/**
 * Whether the source manifest can go up byte for byte: the pushed layers are exactly the ones it
 * lists, and its layer and config media types are of its own family (a ggcr layout write can
 * put OCI layer types in a Docker manifest, which clients such as skopeo refuse to pull).
 */
function sourceManifestStillTrue(image: ArchiveImage, layers: readonly BlobRef[]): boolean {
  const listed = sourceLayers(image);
  const source = image.sourceManifest;
  if (!listed || !source || listed.length !== layers.length) return false;
  const family = familyOf(source.mediaType);
  const types = [image.config.mediaType, ...listed.map((descriptor) => descriptor["mediaType"])];
  if (types.some((type) => (familyOfBlobType(type) ?? family) !== family)) return false;
  return listed.every((descriptor, index) =>
    descriptor["digest"] === layers[index]?.digest && descriptor["size"] === layers[index]?.size
  );
}

/** Builds the manifest of one image. */
export function buildImageManifest(
  image: ArchiveImage,
  sourceFamily: ManifestFamily,
  layers: readonly BlobRef[],
): BuiltManifest {
  if (layers.length !== image.layers.length) {
    throw new Error(`image has ${image.layers.length} layers but ${layers.length} were pushed`);
  }
  const source = image.sourceManifest;
  if (source && sourceManifestStillTrue(image, layers)) {
    return { ...source, ...(image.platform ? { platform: image.platform } : {}) };
  }
  const preferred = source ? familyOf(source.mediaType) : sourceFamily;
  const family = outputFamily(preferred, layers);
  const original: JsonObject = source
    ? JSON.parse(new TextDecoder().decode(source.bytes)) as JsonObject
    : {};
  const originalLayers = sourceLayers(image) ?? [];
  const originalConfig = isObject(original["config"]) ? original["config"] : {};
  const manifest: JsonObject = {
    ...original,
    schemaVersion: 2,
    mediaType: manifestMediaType(family),
    config: {
      ...originalConfig,
      mediaType: configMediaType(family),
      digest: image.config.digest,
      size: image.config.bytes.length,
    },
    layers: layers.map((layer, index) => {
      const annotations = image.layers[index]?.annotations;
      const original = originalLayers[index] ?? {};
      const originalType = original["mediaType"];
      const keepType = original["digest"] === layer.digest && typeof originalType === "string" &&
        !isTarLayerType(originalType);
      const descriptor: JsonObject = {
        ...original,
        mediaType: keepType ? originalType : layerMediaType(family, layer.compression),
        digest: layer.digest,
        size: layer.size,
      };
      if (annotations && Object.keys(annotations).length > 0) {
        descriptor["annotations"] = annotations;
      }
      return descriptor;
    }),
  };
  return built(manifest, manifestMediaType(family), image.platform);
}

/** Builds the index for several platform images (or returns the source index when unchanged). */
export function buildIndex(
  selection: ImageSelection,
  children: readonly BuiltManifest[],
): BuiltManifest {
  const sourceIndex = selection.index;
  if (sourceIndex && selection.skippedPlatforms.length === 0) {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(sourceIndex.bytes));
    const listed = isObject(parsed) && Array.isArray(parsed["manifests"])
      ? parsed["manifests"].filter(isObject)
      : [];
    const same = listed.length === children.length &&
      listed.every((descriptor, index) => descriptor["digest"] === children[index]?.digest);
    if (same) return sourceIndex;
  }
  const family: ManifestFamily = children.every((child) => familyOf(child.mediaType) === "docker")
    ? "docker"
    : "oci";
  const mediaType = indexMediaType(family);
  return built(
    {
      schemaVersion: 2,
      mediaType,
      manifests: children.map((child): Descriptor => ({
        mediaType: child.mediaType,
        digest: child.digest,
        size: child.bytes.length,
        ...(child.platform ? { platform: child.platform } : {}),
      })),
    },
    mediaType,
    undefined,
  );
}
