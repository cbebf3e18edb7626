/**
 * What points at a blob or a manifest: the OCI content descriptor (as in go-containerregistry's
 * `v1.Descriptor`), the small blob reference a push keeps for each layer it sent, and a JSON
 * document (manifest, index, config) held byte for byte with its digest.
 *
 * @module
 */

import type { Compression } from "./media_types.ts";
import type { Platform } from "./platform.ts";

/** An OCI content descriptor, as manifests and indexes write it. */
export interface Descriptor {
  /** Media type of the content it points at. */
  mediaType: string;
  /** `sha256:<hex>` of the content. */
  digest: string;
  /** Size of the content in bytes. */
  size: number;
  /** Where else the content can be fetched (foreign layers). */
  urls?: string[];
  /** Free-form metadata. */
  annotations?: Record<string, string>;
  /** The platform of an index entry. */
  platform?: Platform;
  /** The type of an artifact the content is (artifact manifests and their blobs). */
  artifactType?: string;
}

/** A small JSON document (manifest, index, config) held byte for byte. */
export interface RawDocument {
  /** The exact bytes (sent as they are, so digests stay the same). */
  bytes: Uint8Array;
  /** `<algorithm>:<hex>` of {@link bytes}. */
  digest: string;
  /** The media type the document is sent with. */
  mediaType: string;
}

/** A blob as it went (or will go) up: its digest, its size and the compression of its bytes. */
export interface BlobRef extends Pick<Descriptor, "digest" | "size"> {
  /** Compression of the blob's bytes. */
  compression: Compression;
}

/**
 * Whether a value read from a file is a {@link BlobRef}: a sha256 digest, a whole non-negative
 * size and a known compression.
 */
export function isBlobRef(value: unknown): value is BlobRef {
  if (typeof value !== "object" || value === null) return false;
  const blob = value as Record<string, unknown>;
  const size = blob["size"];
  return typeof blob["digest"] === "string" && /^sha256:[0-9a-f]{64}$/.test(blob["digest"]) &&
    typeof size === "number" && Number.isSafeInteger(size) && size >= 0 &&
    (blob["compression"] === "none" || blob["compression"] === "gzip" ||
      blob["compression"] === "zstd");
}
