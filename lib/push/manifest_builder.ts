/**
 * Builds the manifests to push from an archive image and what its layers became on the way up.
 * An unchanged source manifest goes up byte for byte; a changed one keeps its annotations and
 * fields and only gets new layer descriptors. Docker and OCI media types are never mixed. A
 * family can be forced: converting to Docker keeps only what schema 2 knows (media type, size,
 * digest, `urls`) and needs every layer in gzip.
 *
 * @module
 */

import { sha256Digest } from "../bytes/sha256.ts";
import { PusherError } from "../errors.ts";
import type { ArchiveImage, ImageSelection, RawDocument } from "../image/types.ts";
import type { BlobRef } from "../oci/descriptor.ts";
import type { Platform } from "../oci/platform.ts";
import {
  configMediaType,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  familyOf,
  IMAGE_CONFIG_TYPES,
  indexMediaType,
  isTarLayerType,
  layerMediaType,
  type ManifestFamily,
  manifestMediaType,
  OCI_INDEX,
} from "../oci/media_types.ts";

/** A manifest or index ready to upload: the exact bytes, their digest and their Content-Type. */
export interface BuiltManifest extends RawDocument {
  /** The platform, for an index entry. */
  platform?: Platform;
  /** Digest of the archive's manifest it was built from, when the archive has one. */
  sourceDigest?: string;
}

/** The family to build: each image's own (`as-is`), or one forced on every manifest. */
export type FamilyChoice = "as-is" | ManifestFamily;

function built(
  json: unknown,
  mediaType: string,
  platform: Platform | undefined,
  sourceDigest?: string,
): BuiltManifest {
  const bytes = new TextEncoder().encode(JSON.stringify(json));
  const manifest: BuiltManifest = { bytes, digest: sha256Digest(bytes), mediaType };
  if (platform) manifest.platform = platform;
  if (sourceDigest !== undefined) manifest.sourceDigest = sourceDigest;
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

/** Whether a layer media type says the layer may not be redistributed (OCI or Docker words). */
function isForeignType(mediaType: unknown): boolean {
  return typeof mediaType === "string" && /nondistributable|foreign/.test(mediaType);
}

/**
 * The layer descriptors of a Docker schema 2 manifest: media type, size, digest and `urls` only.
 * Every layer must be a tar layer that went up as gzip (Docker has no other layer type).
 */
function dockerLayers(
  image: ArchiveImage,
  layers: readonly BlobRef[],
  originalLayers: readonly JsonObject[],
): JsonObject[] {
  return layers.map((layer, index) => {
    const original = originalLayers[index] ?? {};
    const sourceType = original["mediaType"] ?? image.layers[index]?.mediaType;
    if (typeof sourceType === "string" && !isTarLayerType(sourceType)) {
      throw new PusherError(
        "input",
        `layer ${
          index + 1
        } of ${image.config.digest} is a ${sourceType} blob, which Docker media types cannot carry`,
        { hint: "push it with --format oci" },
      );
    }
    if (layer.compression !== "gzip") {
      throw new PusherError(
        "internal",
        `layer ${layer.digest} went up as ${layer.compression}, not gzip, for a Docker manifest`,
      );
    }
    const descriptor: JsonObject = {
      mediaType: layerMediaType("docker", "gzip", isForeignType(sourceType)),
      digest: layer.digest,
      size: layer.size,
    };
    if (Array.isArray(original["urls"])) descriptor["urls"] = original["urls"];
    return descriptor;
  });
}

/** Builds the manifest of one image, in its own family or in the one `family` forces. */
export function buildImageManifest(
  image: ArchiveImage,
  sourceFamily: ManifestFamily,
  layers: readonly BlobRef[],
  family: FamilyChoice = "as-is",
): BuiltManifest {
  if (layers.length !== image.layers.length) {
    throw new PusherError(
      "internal",
      `image has ${image.layers.length} layers but ${layers.length} were pushed`,
    );
  }
  const source = image.sourceManifest;
  const forced = family === "as-is" ? undefined : family;
  if (
    source && (forced === undefined || familyOf(source.mediaType) === forced) &&
    sourceManifestStillTrue(image, layers)
  ) {
    return {
      ...source,
      sourceDigest: source.digest,
      ...(image.platform ? { platform: image.platform } : {}),
    };
  }
  const preferred = source ? familyOf(source.mediaType) : sourceFamily;
  const output = forced ?? outputFamily(preferred, layers);
  const original: JsonObject = source
    ? JSON.parse(new TextDecoder().decode(source.bytes)) as JsonObject
    : {};
  const originalLayers = sourceLayers(image) ?? [];
  if (output === "docker") {
    if (!IMAGE_CONFIG_TYPES.includes(image.config.mediaType)) {
      throw new PusherError(
        "input",
        `${image.config.digest} is a ${image.config.mediaType} config, which Docker media types cannot carry`,
        { hint: "push it with --format oci" },
      );
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: {
        mediaType: configMediaType("docker"),
        digest: image.config.digest,
        size: image.config.bytes.length,
      },
      layers: dockerLayers(image, layers, originalLayers),
    };
    return built(manifest, DOCKER_MANIFEST, image.platform, source?.digest);
  }
  const originalConfig = isObject(original["config"]) ? original["config"] : {};
  const manifest: JsonObject = {
    ...original,
    schemaVersion: 2,
    mediaType: manifestMediaType(output),
    config: {
      ...originalConfig,
      mediaType: configMediaType(output),
      digest: image.config.digest,
      size: image.config.bytes.length,
    },
    layers: layers.map((layer, index) => {
      const annotations = image.layers[index]?.annotations;
      const original = originalLayers[index] ?? {};
      const originalType = original["mediaType"] ?? image.layers[index]?.mediaType;
      const keepType = original["digest"] === layer.digest && typeof originalType === "string" &&
        !isTarLayerType(originalType);
      const descriptor: JsonObject = {
        ...original,
        mediaType: keepType
          ? originalType
          : layerMediaType(output, layer.compression, isForeignType(originalType)),
        digest: layer.digest,
        size: layer.size,
      };
      if (annotations && Object.keys(annotations).length > 0) {
        descriptor["annotations"] = annotations;
      }
      return descriptor;
    }),
  };
  return built(manifest, manifestMediaType(output), image.platform, source?.digest);
}

/** The annotation naming the image an attestation manifest describes. */
const REFERENCE_DIGEST_ANNOTATION = "vnd.docker.reference.digest";

/** The entries of a source index, by the digest they name. */
function sourceEntries(parsed: JsonObject): Map<string, JsonObject> {
  const listed = Array.isArray(parsed["manifests"]) ? parsed["manifests"].filter(isObject) : [];
  return new Map(listed.map((entry) => [String(entry["digest"]), entry]));
}

/**
 * The annotations of a child's source index entry, with a reference to another child (an
 * attestation's subject) moved to that child's new digest.
 */
function entryAnnotations(
  entry: JsonObject | undefined,
  renamed: ReadonlyMap<string, string>,
): Record<string, string> | undefined {
  const annotations = entry?.["annotations"];
  if (!isObject(annotations)) return undefined;
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(annotations)) {
    if (typeof value !== "string") continue;
    result[key] = key === REFERENCE_DIGEST_ANNOTATION ? renamed.get(value) ?? value : value;
  }
  return result;
}

/**
 * Builds the index for several platform images (or returns the source index when unchanged). An
 * OCI index keeps the source index's annotations and each entry's; a Docker manifest list has
 * none.
 */
export function buildIndex(
  selection: ImageSelection,
  children: readonly BuiltManifest[],
): BuiltManifest {
  const sourceIndex = selection.index;
  const family: ManifestFamily = children.every((child) => familyOf(child.mediaType) === "docker")
    ? "docker"
    : "oci";
  const parsed: unknown = sourceIndex
    ? JSON.parse(new TextDecoder().decode(sourceIndex.bytes))
    : undefined;
  const original: JsonObject = isObject(parsed) ? parsed : {};
  const entries = sourceEntries(original);
  if (sourceIndex && selection.skippedPlatforms.length === 0) {
    const listed = [...entries.keys()];
    const same = familyOf(sourceIndex.mediaType) === family &&
      listed.length === children.length &&
      listed.every((digest, index) => digest === children[index]?.digest);
    if (same) return sourceIndex;
  }
  const renamed = new Map(
    children.flatMap((child) =>
      child.sourceDigest !== undefined ? [[child.sourceDigest, child.digest] as const] : []
    ),
  );
  const mediaType = family === "docker" ? DOCKER_MANIFEST_LIST : OCI_INDEX;
  const manifests = children.map((child) => {
    const entry: JsonObject = {
      mediaType: child.mediaType,
      digest: child.digest,
      size: child.bytes.length,
      ...(child.platform ? { platform: child.platform } : {}),
    };
    const annotations = family === "oci" && child.sourceDigest !== undefined
      ? entryAnnotations(entries.get(child.sourceDigest), renamed)
      : undefined;
    if (annotations !== undefined) entry["annotations"] = annotations;
    return entry;
  });
  const annotations = family === "oci" && isObject(original["annotations"])
    ? { annotations: original["annotations"] }
    : {};
  return built(
    { schemaVersion: 2, mediaType: indexMediaType(family), manifests, ...annotations },
    mediaType,
    undefined,
  );
}
