/**
 * Images built in memory for archive writer tests: layers of random bytes in a tar, gzipped;
 * a config whose `rootfs.diff_ids` match; an OCI or Docker schema 2 manifest; and indexes of
 * several platforms. Everything a writer needs (manifests, blobs) is at hand as bytes.
 *
 * ```ts
 * const image = buildImage({ layers: 2 });
 * const plan = planArchive([{ names: ["app:v1"], manifest: image.manifest }]);
 * writeArchive(plan, blobOpener([image]));
 * ```
 *
 * @module
 */

import { gzipSync } from "node:zlib";
import type { BlobOpener } from "../../lib/image/archive_writer.ts";
import type { RawDocument } from "../../lib/image/types.ts";
import type { Platform } from "../../lib/oci/platform.ts";
import { chunkedStream } from "./byte_streams.ts";
import { digestOf, writeTar } from "./fixtures.ts";

/** A layer blob: gzipped tar bytes, their digest and the tar's digest. */
export interface MemoryLayer {
  /** The gzipped tar, as stored and pushed. */
  bytes: Uint8Array;
  /** Digest of {@link bytes}. */
  digest: string;
  /** Digest of the uncompressed tar (the config's diff_id). */
  diffId: string;
  /** The manifest's media type for it. */
  mediaType: string;
}

/** An image built in memory. */
export interface MemoryImage {
  /** The manifest document. */
  manifest: RawDocument;
  /** The config bytes. */
  config: Uint8Array;
  /** Digest of the config. */
  configDigest: string;
  /** The layers, bottom first. */
  layers: MemoryLayer[];
  /** The platform the config names. */
  platform: Platform;
}

/** Options of {@link buildImage}. */
export interface BuildImageOptions {
  /** New random layers to make (on top of {@link baseLayers}); 2 by default. */
  layers?: number;
  /** Bytes of random file content per new layer; 96 KiB by default. */
  layerSize?: number;
  /** Existing layers to put at the bottom (to share blobs between images). */
  baseLayers?: MemoryLayer[];
  /** OCI (default) or Docker schema 2 media types. */
  family?: "oci" | "docker";
  /** Platform; linux/amd64 by default. */
  platform?: Platform;
}

const encoder = new TextEncoder();

const TYPES = {
  oci: {
    manifest: "application/vnd.oci.image.manifest.v1+json",
    config: "application/vnd.oci.image.config.v1+json",
    layer: "application/vnd.oci.image.layer.v1.tar+gzip",
    index: "application/vnd.oci.image.index.v1+json",
  },
  docker: {
    manifest: "application/vnd.docker.distribution.manifest.v2+json",
    config: "application/vnd.docker.container.image.v1+json",
    layer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
    index: "application/vnd.docker.distribution.manifest.list.v2+json",
  },
} as const;

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(offset + 65536, size)));
  }
  return bytes;
}

/** A document whose digest is computed from `value`'s JSON. */
export function jsonDocument(value: unknown, mediaType: string): RawDocument {
  const bytes = encoder.encode(JSON.stringify(value));
  return { bytes, digest: digestOf(bytes), mediaType };
}

/** A layer holding one file of `size` random bytes, as a gzipped tar. */
export function randomLayer(size: number, family: "oci" | "docker" = "oci"): MemoryLayer {
  const name = `data/${crypto.randomUUID()}.bin`;
  const tar = writeTar([{ name: "data/", type: "directory" }, { name, data: randomBytes(size) }]);
  const bytes = new Uint8Array(gzipSync(tar, { level: 1 }));
  return { bytes, digest: digestOf(bytes), diffId: digestOf(tar), mediaType: TYPES[family].layer };
}

/** Builds an image of random layers with a matching config and manifest. */
export function buildImage(options: BuildImageOptions = {}): MemoryImage {
  const family = options.family ?? "oci";
  const types = TYPES[family];
  const platform = options.platform ?? { os: "linux", architecture: "amd64" };
  const layers = [
    ...(options.baseLayers ?? []),
    ...Array.from(
      { length: options.layers ?? 2 },
      () => randomLayer(options.layerSize ?? 96 * 1024, family),
    ),
  ];
  const config = encoder.encode(JSON.stringify({
    architecture: platform.architecture,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    os: platform.os,
    created: "2024-01-01T00:00:00Z",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
  }));
  const configDigest = digestOf(config);
  const manifest = jsonDocument({
    schemaVersion: 2,
    mediaType: types.manifest,
    config: { mediaType: types.config, digest: configDigest, size: config.length },
    layers: layers.map((layer) => ({
      mediaType: layer.mediaType,
      digest: layer.digest,
      size: layer.bytes.length,
    })),
  }, types.manifest);
  return { manifest, config, configDigest, layers, platform };
}

/** An index of `images` (each entry with its platform), and its child manifests. */
export function buildIndex(
  images: MemoryImage[],
  family: "oci" | "docker" = "oci",
): { index: RawDocument; children: RawDocument[] } {
  const index = jsonDocument({
    schemaVersion: 2,
    mediaType: TYPES[family].index,
    manifests: images.map((image) => ({
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.bytes.length,
      platform: image.platform,
    })),
  }, TYPES[family].index);
  return { index, children: images.map((image) => image.manifest) };
}

/** Every config and layer blob of `images`, by digest. */
export function blobsOf(images: MemoryImage[]): Map<string, Uint8Array> {
  const blobs = new Map<string, Uint8Array>();
  for (const image of images) {
    blobs.set(image.configDigest, image.config);
    for (const layer of image.layers) blobs.set(layer.digest, layer.bytes);
  }
  return blobs;
}

/**
 * A {@link BlobOpener} serving the blobs of `images` in chunks of `chunkSize` bytes, recording the
 * digests asked for in `asked` when given.
 */
export function blobOpener(images: MemoryImage[], chunkSize = 8192, asked?: string[]): BlobOpener {
  const blobs = blobsOf(images);
  return (blob) => {
    asked?.push(blob.digest);
    const bytes = blobs.get(blob.digest);
    if (bytes === undefined) throw new Error(`test opener has no blob ${blob.digest}`);
    return chunkedStream(bytes, chunkSize);
  };
}
