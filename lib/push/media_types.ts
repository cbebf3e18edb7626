/**
 * Media types of the two manifest families. A manifest never mixes them.
 *
 * @module
 */

import type { Compression, ManifestFamily } from "../image/types.ts";

/** Docker schema 2 manifest. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker manifest list. */
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker image config. */
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** Docker gzip layer. */
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image config. */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** OCI layer media type prefix. */
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";

/** Every manifest and index media type, for `Accept` headers. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  OCI_MANIFEST,
  OCI_INDEX,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
];

/** The layer media type for a family and compression. Docker has only a gzip layer type. */
export function layerMediaType(family: ManifestFamily, compression: Compression): string {
  if (family === "docker") {
    if (compression !== "gzip") {
      throw new Error(`docker manifests have no ${compression} layer type`);
    }
    return DOCKER_LAYER_GZIP;
  }
  return compression === "none" ? OCI_LAYER : `${OCI_LAYER}+${compression}`;
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
