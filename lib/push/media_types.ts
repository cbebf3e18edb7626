/**
 * Media types of the two manifest families. A manifest never mixes them.
 *
 * @module
 */

import type { Compression, ManifestFamily } from "../image/types.ts";

import {
  DOCKER_CONFIG,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../image/media_types.ts";

export { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX };

/** Docker gzip layer. */
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/** Docker gzip layer that may not be redistributed (Windows base layers, with `urls`). */
export const DOCKER_FOREIGN_LAYER_GZIP =
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/** OCI non-distributable layer media type prefix. */
export const OCI_NONDISTRIBUTABLE_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/** OCI layer media type prefix. */
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";

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
      throw new Error(`docker manifests have no ${compression} layer type`);
    }
    return nondistributable ? DOCKER_FOREIGN_LAYER_GZIP : DOCKER_LAYER_GZIP;
  }
  const base = nondistributable ? OCI_NONDISTRIBUTABLE_LAYER : OCI_LAYER;
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
