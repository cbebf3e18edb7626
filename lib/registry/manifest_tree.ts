/**
 * Reads a source image's manifest tree from a registry, before any byte of it is transferred: the
 * manifest a reference names (an image manifest or an index), every child manifest of an index
 * (kept by `--platform`, nested indexes walked), and every blob those name, each once. Manifests
 * are kept byte for byte, so their digests survive; only an index that lost children is new.
 * Reading goes through functions the caller supplies (with its retries), so the walk makes no
 * request of its own and needs no client. Pull and copy both read their sources with it.
 *
 * @module
 */

import { digestAlgorithm, digestOf } from "../bytes/sha256.ts";
import { PusherError } from "../errors.ts";
import type { RawDocument } from "../oci/descriptor.ts";
import { filterIndex, type IndexChild, indexChildren } from "../oci/index_filter.ts";
import { INDEX_TYPES } from "../oci/media_types.ts";
import { type Platform, platformMatches, platformName } from "../oci/platform.ts";
import { MAX_MANIFEST_BYTES } from "./manifest_read.ts";

/** How the walk reads from the source repository. */
export interface ManifestSource {
  /** Names the source in messages (`registry/repository:tag`). */
  label: string;
  /** Reads a manifest by tag or digest, its digest checked (as `RegistryClient.getManifest`). */
  manifest(reference: string): Promise<RawDocument>;
  /** Reads a small blob (an image config) whole; the walk checks its size and digest. */
  blob(digest: string): Promise<Uint8Array>;
}

/** A blob an image names. */
export interface TreeBlob {
  /** Its digest. */
  digest: string;
  /** Its size in bytes, from the descriptor. */
  size: number;
  /** `config` for an image config, `layer` for everything else a manifest lists. */
  role: "layer" | "config";
}

/** Everything below the manifest a reference names. */
export interface ManifestTree {
  /** The digest of the manifest the reference names. */
  sourceDigest: string;
  /** That manifest, or the index `--platform` built from it. */
  top: RawDocument;
  /** The entries {@link top} lists when it is an index (empty for an image manifest). */
  entries: IndexChild[];
  /** Child manifests, each once, deepest first (an index's children in index order). */
  children: RawDocument[];
  /** Every blob of every kept image, once, configs after layers of the same image. */
  blobs: TreeBlob[];
  /** Whether `--platform` dropped children, so {@link top} is a new index. */
  filtered: boolean;
  /** Foreign layers (with `urls`), which clients fetch from their URLs, not the registry. */
  foreignLayers: string[];
}

/** How deep indexes may nest (an index of indexes of manifests is two). */
const MAX_DEPTH = 3;

/**
 * Reads the manifest `reference` (a tag or digest) names and everything below it. With
 * `platforms`, an index keeps the children for them and a single image must be for one of them.
 *
 * @throws {PusherError} kind `usage` when the image has no wanted platform; `input` for a
 * malformed manifest or config; `verify` for a config whose bytes are not its digest; and what
 * the source's functions throw.
 */
export async function readManifestTree(
  source: ManifestSource,
  reference: string,
  platforms: readonly Platform[],
): Promise<ManifestTree> {
  const top = await source.manifest(reference);
  const walk = new Walk(source);
  const json = parseObject(top.bytes, `manifest ${top.digest}`);
  if (!INDEX_TYPES.has(top.mediaType)) {
    if (platforms.length > 0) await walk.checkPlatform(json, top.digest, platforms);
    walk.collectBlobs(json, top.digest);
    return walk.tree(top.digest, top, [], false);
  }
  const kept = filterIndex(top, json, platforms);
  for (const child of kept.children) await walk.child(child.digest, 1);
  return walk.tree(top.digest, kept.index, kept.children, kept.rebuilt);
}

/** The state of one walk: what was found so far. */
class Walk {
  readonly #source: ManifestSource;
  readonly #children: RawDocument[] = [];
  readonly #seenManifests = new Set<string>();
  readonly #blobs = new Map<string, TreeBlob>();
  readonly #foreign = new Set<string>();

  constructor(source: ManifestSource) {
    this.#source = source;
  }

  /** Reads a child of an index (itself an image manifest or an index) and what it names. */
  async child(digest: string, depth: number): Promise<void> {
    if (this.#seenManifests.has(digest)) return;
    if (depth > MAX_DEPTH) {
      throw new PusherError("input", `indexes nest deeper than ${MAX_DEPTH} levels at ${digest}`);
    }
    this.#seenManifests.add(digest);
    const manifest = await this.#source.manifest(digest);
    const json = parseObject(manifest.bytes, `manifest ${digest}`);
    if (INDEX_TYPES.has(manifest.mediaType)) {
      for (const grandchild of indexChildren(json, `index ${digest}`)) {
        await this.child(grandchild.digest, depth + 1);
      }
    } else {
      this.collectBlobs(json, digest);
    }
    this.#children.push(manifest);
  }

  /** Adds the config and layers of an image manifest. */
  collectBlobs(json: Record<string, unknown>, digest: string): void {
    const where = `manifest ${digest}`;
    const layers = json.layers;
    if (!Array.isArray(layers)) throw new PusherError("input", `${where} has no "layers" array`);
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
    const where = `config ${config.digest}`;
    if (config.size > MAX_MANIFEST_BYTES) {
      throw new PusherError("input", `${where} has ${config.size} bytes, more than a config has`);
    }
    const bytes = await this.#source.blob(config.digest);
    const actual = digestOf(bytes, digestAlgorithm(config.digest));
    if (bytes.byteLength !== config.size || actual !== config.digest) {
      throw new PusherError("verify", `${where} from ${this.#source.label} does not match`, {
        hint: "the registry, or a proxy or cache in front of it, served other bytes",
      });
    }
    const { os, architecture, variant } = parseObject(bytes, where);
    const platform: Platform = {
      os: typeof os === "string" ? os : "",
      architecture: typeof architecture === "string" ? architecture : "",
    };
    if (typeof variant === "string" && variant !== "") platform.variant = variant;
    if (platforms.some((wanted) => platformMatches(wanted, platform))) return;
    throw new PusherError(
      "usage",
      `${this.#source.label} is a single-platform image for ${platformName(platform)}, not ${
        platforms.map(platformName).join(" or ")
      }`,
      { hint: "leave --platform out to take it as it is" },
    );
  }

  tree(
    sourceDigest: string,
    top: RawDocument,
    entries: IndexChild[],
    filtered: boolean,
  ): ManifestTree {
    return {
      sourceDigest,
      top,
      entries,
      children: [...this.#children],
      blobs: [...this.#blobs.values()],
      filtered,
      foreignLayers: [...this.#foreign],
    };
  }

  #add(blob: TreeBlob): void {
    if (!this.#blobs.has(blob.digest)) this.#blobs.set(blob.digest, blob);
  }
}

/** A descriptor of a manifest, with what the walk needs of it. */
interface NamedBlob {
  digest: string;
  size: number;
  foreign: boolean;
}

function descriptorOf(value: unknown, where: string): NamedBlob {
  if (typeof value !== "object" || value === null) {
    throw new PusherError("input", `${where} is missing`);
  }
  const { digest, size, urls } = value as Record<string, unknown>;
  if (typeof digest !== "string" || !/^sha(256|512):[a-f0-9]+$/.test(digest)) {
    throw new PusherError("input", `${where} has no valid digest`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new PusherError("input", `${where} has no valid size`);
  }
  return { digest, size, foreign: Array.isArray(urls) && urls.length > 0 };
}

function parseObject(bytes: Uint8Array, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new PusherError("input", `${where} is not valid JSON`, { cause: error });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new PusherError("input", `${where} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
