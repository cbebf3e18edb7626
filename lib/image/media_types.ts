/**
 * Media types and annotations the archive layouts use, and the compression a layer media type
 * declares.
 *
 * @module
 */

import type { Compression } from "./types.ts";

/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image config. */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** Docker schema 2 manifest. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker schema 2 manifest list. */
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker image config. */
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** Config media types whose JSON holds `rootfs.diff_ids`. */
export const IMAGE_CONFIG_TYPES: readonly string[] = [OCI_CONFIG, DOCKER_CONFIG];

/** The image name annotation containerd, buildx and docker write in `index.json`. */
export const CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name";
/** The OCI reference name annotation (a tag, or a full reference). */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

const LAYER_COMPRESSION: Readonly<Record<string, Compression>> = {
  "application/vnd.oci.image.layer.v1.tar": "none",
  "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
  "application/vnd.docker.image.rootfs.diff.tar": "none",
  "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
  "application/vnd.docker.image.rootfs.foreign.diff.tar": "none",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
};

/**
 * The compression a layer media type declares: tar layers by their suffix, JSON documents
 * (attestations, empty descriptors) as `"none"`. Undefined for types this tool does not know.
 */
export function layerCompression(mediaType: string): Compression | undefined {
  const known = LAYER_COMPRESSION[mediaType];
  if (known !== undefined) return known;
  return mediaType.endsWith("+json") ? "none" : undefined;
}

/**
 * The compression an archive entry's name declares (`.gz`, `.tgz`, `.zst`); `"none"` otherwise.
 * Docker's `manifest.json` gives no media types, so names are all there is before the bytes.
 */
export function nameCompression(path: string): Compression {
  if (/\.(t?gz|gzip)$/i.test(path)) return "gzip";
  if (/\.(zst|zstd)$/i.test(path)) return "zstd";
  return "none";
}

/** Whether a media type names a tar layer (any compression), as opposed to an artifact blob. */
export function isTarLayerType(mediaType: string): boolean {
  return mediaType in LAYER_COMPRESSION;
}
