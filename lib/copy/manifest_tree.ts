/**
 * Reads what a copy has to write, before any byte is written: the source's top manifest (an
 * image manifest or an index), every child manifest of an index (filtered by `--platform`), and
 * every blob those name, each once. Manifests are kept byte for byte, so their digests survive;
 * only an index that lost children is rewritten. Reading goes through two functions the caller
 * supplies (with its retries), so the walk itself makes no request of its own.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { DOCKER_MANIFEST_LIST, OCI_INDEX } from "../oci/media_types.ts";
import type { Platform } from "../oci/platform.ts";
import { platformName } from "../oci/platform.ts";
import { sha256Digest } from "../bytes/sha256.ts";
import type { FetchedManifest } from "../registry/client.ts";
import { filterIndex, platformMatches } from "./platforms.ts";

/** A manifest to write: its exact bytes, digest and media type. */
export interface ManifestToWrite {
  /** The bytes, sent as they are. */
  bytes: Uint8Array;
  /** `sha256:` of the bytes. */
  digest: string;
  /** The `Content-Type` to send. */
  mediaType: string;
}

/** A blob an image names. */
export interface BlobToCopy {
  /** Its digest. */
  digest: string;
  /** Its size in bytes, from the descriptor. */
  size: number;
  /** `config` for an image config, `layer` for everything else a manifest lists. */
  role: "layer" | "config";
}

/** Everything a copy writes, in order. */
export interface ImageTree {
  /** The digest of the source's top manifest. */
  sourceDigest: string;
  /** Child manifests, to be written by digest before {@link top}, deepest first. */
  children: ManifestToWrite[];
  /** The manifest the target tag gets: the source's, or a filtered index. */
  top: ManifestToWrite;
  /** Every blob of every kept image, once, configs after layers of the same image. */
  blobs: BlobToCopy[];
  /** Whether `--platform` dropped children, so {@link top} is a new index. */
  filtered: boolean;
  /** Foreign layers (with `urls`) left for the target's clients to fetch from their URLs. */
  foreignLayers: string[];
}

/** How the walk reads from the source. */
export interface TreeReader {
  /** Reads a manifest by tag or digest. */
  manifest(reference: string): Promise<FetchedManifest>;
  /** Reads a small blob (an image config) whole. */
  blob(digest: string, size: number): Promise<Uint8Array>;
}

/** How deep indexes may nest (an index of indexes of manifests is two). */
const MAX_DEPTH = 3;
const INDEX_TYPES = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);

/**
 * Reads the image `reference` names and every manifest and blob below it.
 *
 * @throws {PusherError} kind `input` when `platforms` match nothing; kind `registry` for a
 * manifest that is not valid JSON or lacks descriptors.
 */
export async function readImageTree(
  reader: TreeReader,
  reference: string,
  platforms: readonly Platform[],
): Promise<ImageTree> {
  const top = await reader.manifest(reference);
  const walk = new Walk(reader);
  const json = parseManifest(top);
  if (!INDEX_TYPES.has(top.mediaType)) {
    if (platforms.length > 0) await walk.checkPlatform(json, top.digest, platforms);
    walk.collectBlobs(json, top.digest);
    return walk.tree(top.digest, top, false);
  }
  const filtered = filterIndex(top.bytes, json, platforms, `index ${top.digest}`);
  for (const child of filtered.children) await walk.child(child, 1);
  const written = filtered.changed
    ? { bytes: filtered.bytes, digest: sha256Digest(filtered.bytes), mediaType: top.mediaType }
    : top;
  return walk.tree(top.digest, written, filtered.changed);
}

/** The state of one walk: what was found so far. */
class Walk {
  readonly #reader: TreeReader;
  readonly #children: ManifestToWrite[] = [];
  readonly #seenManifests = new Set<string>();
  readonly #blobs = new Map<string, BlobToCopy>();
  readonly #foreign = new Set<string>();

  constructor(reader: TreeReader) {
    this.#reader = reader;
  }

  /** Reads a child of an index (itself an image manifest or an index) and what it names. */
  async child(digest: string, depth: number): Promise<void> {
    if (this.#seenManifests.has(digest)) return;
    if (depth > MAX_DEPTH) {
      throw new PusherError(
        "registry",
        `indexes nest deeper than ${MAX_DEPTH} levels at ${digest}`,
      );
    }
    this.#seenManifests.add(digest);
    const manifest = await this.#reader.manifest(digest);
    const json = parseManifest(manifest);
    if (INDEX_TYPES.has(manifest.mediaType)) {
      const nested = filterIndex(manifest.bytes, json, [], `index ${digest}`);
      for (const grandchild of nested.children) await this.child(grandchild, depth + 1);
    } else {
      this.collectBlobs(json, digest);
    }
    this.#children.push(manifest);
  }

  /** Adds the config and layers of an image manifest. */
  collectBlobs(json: Record<string, unknown>, digest: string): void {
    const where = `manifest ${digest}`;
    const layers = json.layers;
    if (!Array.isArray(layers)) throw new PusherError("registry", `${where} has no "layers" array`);
    for (const [i, layer] of layers.entries()) {
      const descriptor = descriptorOf(layer, `${where} layer ${i + 1}`);
      if (descriptor.foreign) this.#foreign.add(descriptor.digest);
      else this.#add({ digest: descriptor.digest, size: descriptor.size, role: "layer" });
    }
    const config = descriptorOf(json.config, `${where} config`);
    this.#add({ digest: config.digest, size: config.size, role: "config" });
  }

  /** Checks that a single image manifest's config is for one of `platforms`. */
  async checkPlatform(
    json: Record<string, unknown>,
    digest: string,
    platforms: readonly Platform[],
  ): Promise<void> {
    const config = descriptorOf(json.config, `manifest ${digest} config`);
    const bytes = await this.#reader.blob(config.digest, config.size);
    const parsed = parseObject(bytes, `config ${config.digest}`);
    const { os, architecture, variant } = parsed;
    if (typeof os !== "string" || typeof architecture !== "string") return;
    const platform: Platform = { os, architecture };
    if (typeof variant === "string" && variant !== "") platform.variant = variant;
    if (platforms.some((wanted) => platformMatches(wanted, platform))) return;
    throw new PusherError(
      "input",
      `the image is for ${platformName(platform)} only, not ${
        platforms.map(platformName).join(", ")
      }`,
      { hint: "leave --platform out to copy it as it is" },
    );
  }

  tree(sourceDigest: string, top: ManifestToWrite, filtered: boolean): ImageTree {
    return {
      sourceDigest,
      children: [...this.#children],
      top,
      blobs: [...this.#blobs.values()],
      filtered,
      foreignLayers: [...this.#foreign],
    };
  }

  #add(blob: BlobToCopy): void {
    if (!this.#blobs.has(blob.digest)) this.#blobs.set(blob.digest, blob);
  }
}

interface Descriptor {
  digest: string;
  size: number;
  foreign: boolean;
}

function descriptorOf(value: unknown, where: string): Descriptor {
  if (typeof value !== "object" || value === null) {
    throw new PusherError("registry", `${where} is missing`);
  }
  const { digest, size, urls } = value as Record<string, unknown>;
  if (typeof digest !== "string" || !/^sha(256|512):[a-f0-9]+$/.test(digest)) {
    throw new PusherError("registry", `${where} has no valid digest`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new PusherError("registry", `${where} has no valid size`);
  }
  return { digest, size, foreign: Array.isArray(urls) && urls.length > 0 };
}

function parseManifest(manifest: FetchedManifest): Record<string, unknown> {
  return parseObject(manifest.bytes, `manifest ${manifest.digest}`);
}

function parseObject(bytes: Uint8Array, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new PusherError("registry", `${where} is not valid JSON`, { cause: error });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new PusherError("registry", `${where} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
