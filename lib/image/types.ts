/**
 * What an image archive holds, independent of its layout (docker save, skopeo/podman
 * docker-archive, OCI layout) and of how it is read (random access or one streaming pass).
 *
 * @module
 */

import type { Compression, ManifestFamily } from "../oci/media_types.ts";
import type { Platform } from "../oci/platform.ts";
import type { RawDocument } from "../oci/descriptor.ts";
import type { OmittedLayer } from "./omitted_layers.ts";

export type { RawDocument } from "../oci/descriptor.ts";

/** One layer of an image, pointing at the archive entry that holds its bytes. */
export interface ArchiveLayer {
  /** Normalised entry path holding the layer bytes, symlinks already resolved. */
  entry: string;
  /** Size in bytes of the entry as stored in the archive. */
  size: number;
  /** Digest of the stored bytes when the layout names it (OCI blobs, skopeo `<digest>.tar`). */
  storedDigest?: string;
  /** Compression of the stored bytes as the layout declares it (confirmed by magic bytes later). */
  compression: Compression;
  /** Media type the source manifest declares (OCI sources); absent for docker `manifest.json`. */
  mediaType?: string;
  /** The uncompressed digest from the config's `rootfs.diff_ids`. */
  diffId?: string;
  /** Extra descriptor fields from the source manifest (annotations, urls), kept on re-push. */
  annotations?: Record<string, string>;
  /**
   * Set when a delta bundle leaves the layer out (see `omitted_layers.ts`): {@link entry} is not
   * in the archive, and the registry must already hold the layer.
   */
  omitted?: OmittedLayer;
}

/** One image: a config and its layers, with the source manifest when the layout has one. */
export interface ArchiveImage {
  /** Names (`repo:tag`) from `RepoTags` or the OCI ref-name annotation. */
  names: string[];
  /** Platform, when an index names one. */
  platform?: Platform;
  /** The config blob, byte for byte. */
  config: RawDocument;
  /** Layers, bottom first. */
  layers: ArchiveLayer[];
  /** The manifest as the archive stores it (OCI layouts); absent for docker `manifest.json` only. */
  sourceManifest?: RawDocument;
}

/** What to push from an archive: one image, or a multi-platform index of images. */
export interface ImageSelection {
  /** The family of the archive's own metadata. */
  family: ManifestFamily;
  /** One image, or the present children of an index (in index order). */
  images: ArchiveImage[];
  /** The source index when several platforms are pushed as an index. */
  index?: RawDocument;
  /** Platforms the archive's index names whose blobs are absent (left out, reported to the user). */
  skippedPlatforms: string[];
  /** What the reader accepted although it deviates from the layout (reported to the user). */
  warnings: string[];
}

/** A read-only view of archive entries used to resolve the layout. */
export interface EntryView {
  /** Every regular-file entry path (normalised, symlinks resolved to their targets). */
  paths(): string[];
  /** Whether a regular-file entry exists at the (normalised) path, following symlinks. */
  has(path: string): boolean;
  /** The size of an entry, following symlinks. Throws an input error when absent. */
  size(path: string): number;
  /** The normalised target path of an entry, following symlinks. Throws when absent. */
  resolve(path: string): string;
  /** Reads a small entry whole (JSON documents). Throws an input error when absent. */
  read(path: string): Promise<Uint8Array>;
}
