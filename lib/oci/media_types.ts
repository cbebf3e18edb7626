/**
 * The media types of OCI and Docker images in one table, like go-containerregistry's
 * `pkg/v1/types`: every constant this tool reads or writes, the compression each layer type
 * declares, the types of each manifest family, and the `Accept` list sent when looking a manifest
 * up. Nothing else in lib/ spells a media type out.
 *
 * @module
 */

import { PusherError } from "../errors.ts";

/** Compression of a blob's bytes as stored or uploaded. */
export type Compression = "none" | "gzip" | "zstd";

/** A manifest family: Docker schema 2 or OCI. A manifest never mixes the two. */
export type ManifestFamily = "docker" | "oci";

/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image config. */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** OCI uncompressed tar layer; the compressed types add `+gzip` or `+zstd`. */
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
/** OCI gzip layer. */
export const OCI_LAYER_GZIP = `${OCI_LAYER}+gzip`;
/** OCI zstd layer. */
export const OCI_LAYER_ZSTD = `${OCI_LAYER}+zstd`;
/** OCI non-distributable (foreign) tar layer, deprecated but still written by old tools. */
export const OCI_FOREIGN_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/** OCI non-distributable gzip layer. */
export const OCI_FOREIGN_LAYER_GZIP = `${OCI_FOREIGN_LAYER}+gzip`;
/** OCI non-distributable zstd layer. */
export const OCI_FOREIGN_LAYER_ZSTD = `${OCI_FOREIGN_LAYER}+zstd`;

/** Docker schema 2 manifest. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker schema 2 manifest list. */
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker image config. */
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** Docker uncompressed tar layer (few registries accept it). */
export const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar";
/** Docker gzip layer: the only layer type every registry takes in a Docker manifest. */
export const DOCKER_LAYER_GZIP = `${DOCKER_LAYER}.gzip`;
/** Docker zstd layer (refused by podman under Docker schema 2; read, never written). */
export const DOCKER_LAYER_ZSTD = `${DOCKER_LAYER}.zstd`;
/** Docker foreign (Windows base) tar layer. */
export const DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar";
/** Docker foreign gzip layer. */
export const DOCKER_FOREIGN_LAYER_GZIP = `${DOCKER_FOREIGN_LAYER}.gzip`;

/** Config media types whose JSON holds `rootfs.diff_ids`. */
export const IMAGE_CONFIG_TYPES: readonly string[] = [OCI_CONFIG, DOCKER_CONFIG];
/** Media types of a single image's manifest. */
export const IMAGE_MANIFEST_TYPES: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);
/** Media types of an index of manifests. */
export const INDEX_TYPES: ReadonlySet<string> = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);

/** `Accept` of a manifest lookup: every manifest and index type, so none is converted. */
export const MANIFEST_ACCEPT: string = [
  OCI_MANIFEST,
  OCI_INDEX,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
].join(", ");

/** Every tar layer type and the compression it declares. */
const LAYER_COMPRESSION: Readonly<Record<string, Compression>> = {
  [OCI_LAYER]: "none",
  [OCI_LAYER_GZIP]: "gzip",
  [OCI_LAYER_ZSTD]: "zstd",
  [OCI_FOREIGN_LAYER]: "none",
  [OCI_FOREIGN_LAYER_GZIP]: "gzip",
  [OCI_FOREIGN_LAYER_ZSTD]: "zstd",
  [DOCKER_LAYER]: "none",
  [DOCKER_LAYER_GZIP]: "gzip",
  [DOCKER_LAYER_ZSTD]: "zstd",
  [DOCKER_FOREIGN_LAYER]: "none",
  [DOCKER_FOREIGN_LAYER_GZIP]: "gzip",
};

/**
 * The compression a layer media type declares: tar layers by the table, JSON documents
 * (attestations, empty descriptors) as `"none"`. Undefined for types this tool does not know.
 */
export function layerCompression(mediaType: string): Compression | undefined {
  const known = LAYER_COMPRESSION[mediaType];
  if (known !== undefined) return known;
  return mediaType.endsWith("+json") ? "none" : undefined;
}

/** Whether a media type names a tar layer (any compression), as opposed to an artifact blob. */
export function isTarLayerType(mediaType: string): boolean {
  return mediaType in LAYER_COMPRESSION;
}

/** The family a manifest or index media type belongs to (anything not Docker's is OCI). */
export function familyOf(mediaType: string): ManifestFamily {
  return mediaType === DOCKER_MANIFEST || mediaType === DOCKER_MANIFEST_LIST ? "docker" : "oci";
}

/**
 * The layer media type for a family and compression. Docker has gzip layer types only; a layer
 * that may not be redistributed gets the `nondistributable` (OCI) or `foreign` (Docker) type.
 */
export function layerMediaType(
  family: ManifestFamily,
  compression: Compression,
  nondistributable = false,
): string {
  if (family === "docker") {
    if (compression !== "gzip") {
      throw new PusherError("internal", `docker manifests have no ${compression} layer type`);
    }
    return nondistributable ? DOCKER_FOREIGN_LAYER_GZIP : DOCKER_LAYER_GZIP;
  }
  const base = nondistributable ? OCI_FOREIGN_LAYER : OCI_LAYER;
  return compression === "none" ? base : `${base}+${compression}`;
}

/** The config media type for a family. */
export function configMediaType(family: ManifestFamily): string {
  return family === "docker" ? DOCKER_CONFIG : OCI_CONFIG;
}

/** The manifest media type for a family. */
export function manifestMediaType(family: ManifestFamily): string {
  return family === "docker" ? DOCKER_MANIFEST : OCI_MANIFEST;
}

/** The index media type for a family. */
export function indexMediaType(family: ManifestFamily): string {
  return family === "docker" ? DOCKER_MANIFEST_LIST : OCI_INDEX;
}
