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
 * The children of an index are read at once (one round trip for all of them, not one each).
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
    if (platforms.length > 0) await checkPlatform(source, json, top.digest, platforms);
    return walk.tree(top.digest, top, [], false, [imageFound(json, top.digest)]);
  }
  const kept = filterIndex(top, json, platforms);
  const found = await Promise.all(kept.children.map((child) => walk.child(child.digest, 1)));
  return walk.tree(top.digest, kept.index, kept.children, kept.rebuilt, found);
}

/** What one manifest and the manifests below it name, in the order the tree lists them. */
interface Found {
  /** Manifests, deepest first (a manifest after the children it lists). */
  manifests: RawDocument[];
  /** Blobs, configs after the layers of the same image. */
  blobs: TreeBlob[];
  /** Foreign layers. */
  foreign: string[];
}

/**
 * One walk below an index: each manifest is read once, however often it is listed (a digest names
 * its bytes, so no manifest can list itself or an ancestor).
 */
class Walk {
  readonly #source: ManifestSource;
  readonly #reads = new Map<string, Promise<Found>>();

  constructor(source: ManifestSource) {
    this.#source = source;
  }

  /**
   * Reads a child of an index (itself an image manifest or an index) and what it names. A child
   * listed again is read once; {@link tree} keeps what it names where it was first listed.
   */
  child(digest: string, depth: number): Promise<Found> {
    if (depth > MAX_DEPTH) {
      return Promise.reject(
        new PusherError("input", `indexes nest deeper than ${MAX_DEPTH} levels at ${digest}`),
      );
    }
    let read = this.#reads.get(digest);
    if (read === undefined) {
      read = this.#read(digest, depth);
      this.#reads.set(digest, read);
    }
    return read;
  }

  async #read(digest: string, depth: number): Promise<Found> {
    const manifest = await this.#source.manifest(digest);
    const json = parseObject(manifest.bytes, `manifest ${digest}`);
    if (!INDEX_TYPES.has(manifest.mediaType)) {
      return { ...imageFound(json, digest), manifests: [manifest] };
    }
    const below = await Promise.all(
      indexChildren(json, `index ${digest}`).map((child) => this.child(child.digest, depth + 1)),
    );
    return {
      manifests: [...below.flatMap((found) => found.manifests), manifest],
      blobs: below.flatMap((found) => found.blobs),
      foreign: below.flatMap((found) => found.foreign),
    };
  }

  tree(
    sourceDigest: string,
    top: RawDocument,
    entries: IndexChild[],
    filtered: boolean,
    found: readonly Found[],
  ): ManifestTree {
    // A manifest listed twice is kept where it came first: still after its own children.
    const blobs = new Map<string, TreeBlob>();
    for (const blob of found.flatMap((part) => part.blobs)) {
      if (!blobs.has(blob.digest)) blobs.set(blob.digest, blob);
    }
    const children = new Map<string, RawDocument>();
    for (const manifest of found.flatMap((part) => part.manifests)) {
      if (!children.has(manifest.digest)) children.set(manifest.digest, manifest);
    }
    return {
      sourceDigest,
      top,
      entries,
      children: [...children.values()],
      blobs: [...blobs.values()],
      filtered,
      foreignLayers: [...new Set(found.flatMap((part) => part.foreign))],
    };
  }
}

/** The config and layers of an image manifest (its own bytes are the caller's to add). */
function imageFound(json: Record<string, unknown>, digest: string): Found {
  const where = `manifest ${digest}`;
  const layers = json.layers;
  if (!Array.isArray(layers)) throw new PusherError("input", `${where} has no "layers" array`);
  const blobs: TreeBlob[] = [];
  const foreign: string[] = [];
  for (const [i, layer] of layers.entries()) {
    const descriptor = descriptorOf(layer, `${where} layer ${i + 1}`);
    if (descriptor.foreign) foreign.push(descriptor.digest);
    else blobs.push({ digest: descriptor.digest, size: descriptor.size, role: "layer" });
  }
  const config = descriptorOf(json.config, `${where} config`);
  blobs.push({ digest: config.digest, size: config.size, role: "config" });
  return { manifests: [], blobs, foreign };
}

/** Checks that a single image manifest's config is for one of `platforms`. */
async function checkPlatform(
  source: ManifestSource,
  json: Record<string, unknown>,
  digest: string,
  platforms: readonly Platform[],
): Promise<void> {
  const config = descriptorOf(json.config, `manifest ${digest} config`);
  const where = `config ${config.digest}`;
  if (config.size > MAX_MANIFEST_BYTES) {
    throw new PusherError("input", `${where} has ${config.size} bytes, more than a config has`);
  }
  const bytes = await source.blob(config.digest);
  const actual = digestOf(bytes, digestAlgorithm(config.digest));
  if (bytes.byteLength !== config.size || actual !== config.digest) {
    throw new PusherError("verify", `${where} from ${source.label} does not match`, {
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
    `${source.label} is a single-platform image for ${platformName(platform)}, not ${
      platforms.map(platformName).join(" or ")
    }`,
    { hint: "leave --platform out to take it as it is" },
  );
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
