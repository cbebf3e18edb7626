/**
 * The local layer map: for each uncompressed layer (by diff_id) and encoder setting, the digest
 * and size its compressed form has, and the repositories of the registry known to hold it. A
 * re-push then needs no compression at all, and a push to a sibling repository mounts instead of
 * uploading. Everything read here is confirmed with the registry before it is trusted.
 *
 * @module
 */

import { join } from "node:path";
import { type BlobRef, isBlobRef } from "../oci/descriptor.ts";
import { moduleLogger } from "../logging/logger.ts";
import { readRegistryFile, registryFilePath, writeFileAtomic } from "./cache_dir.ts";

/** What a layer became in the registry, and where it is. */
export interface CachedLayer extends BlobRef {
  /** Repositories of this registry known to hold the blob, newest first. */
  repositories: string[];
}

interface CacheFile {
  format: "docker-image-pusher/layer-cache";
  version: 1;
  registry: string;
  layers: Record<string, CachedLayer>;
}

const log = moduleLogger("cache");
const FORMAT = "docker-image-pusher/layer-cache";
const MAX_ENTRIES = 5000;
const MAX_REPOSITORIES = 16;

function isCachedLayer(value: unknown): value is CachedLayer {
  if (!isBlobRef(value)) return false;
  const repositories: unknown = (value as Partial<CachedLayer>).repositories;
  return Array.isArray(repositories) &&
    repositories.every((repository) => typeof repository === "string");
}

/** The cache of one registry, loaded from and saved to one JSON file. */
export class LayerCache {
  readonly #path: string;
  readonly #registry: string;
  #layers: Map<string, CachedLayer> = new Map();
  #dirty = false;

  private constructor(path: string, registry: string) {
    this.#path = path;
    this.#registry = registry;
  }

  /** The cache file of a registry inside `directory`. */
  static pathFor(directory: string, registry: string): string {
    return registryFilePath(directory, "layers", registry);
  }

  /** Loads the cache of `registry`; a missing file is empty, a corrupt one is ignored with a warning. */
  static async load(directory: string, registry: string): Promise<LayerCache> {
    const cache = new LayerCache(LayerCache.pathFor(directory, registry), registry);
    const file = await readRegistryFile(cache.#path, "layer cache", FORMAT, registry);
    const layers = (file as Partial<CacheFile> | undefined)?.layers ?? {};
    for (const [key, value] of Object.entries(layers)) {
      if (isCachedLayer(value)) cache.#layers.set(key, value);
    }
    return cache;
  }

  /** The key of a source layer under an encoder setting. */
  static key(sourceDigest: string, encoder: string): string {
    return `${sourceDigest}|${encoder}`;
  }

  /** What the layer became, when known. */
  lookup(sourceDigest: string, encoder: string): CachedLayer | undefined {
    return this.#layers.get(LayerCache.key(sourceDigest, encoder));
  }

  /** Records that a layer is in `repository` as `layer` (only its blob reference is kept). */
  record(sourceDigest: string, encoder: string, layer: BlobRef, repository: string): void {
    const key = LayerCache.key(sourceDigest, encoder);
    const previous = this.#layers.get(key);
    const sameBlob = previous?.digest === layer.digest;
    const repositories = [
      repository,
      ...(sameBlob ? previous.repositories.filter((name) => name !== repository) : []),
    ].slice(0, MAX_REPOSITORIES);
    this.#layers.delete(key);
    const { digest, size, compression } = layer;
    this.#layers.set(key, { digest, size, compression, repositories });
    this.#dirty = true;
  }

  /** Saves the cache if it changed (atomically; the oldest entries go past the size cap). */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    const entries = [...this.#layers.entries()].slice(-MAX_ENTRIES);
    const file: CacheFile = {
      format: FORMAT,
      version: 1,
      registry: this.#registry,
      layers: Object.fromEntries(entries),
    };
    // Clean as of this snapshot: a record made while the file is written marks it dirty again.
    this.#dirty = false;
    try {
      await Deno.mkdir(join(this.#path, ".."), { recursive: true });
      await writeFileAtomic(this.#path, JSON.stringify(file));
    } catch (error) {
      this.#dirty = true;
      log.warn(`cannot save the layer cache ${this.#path}: ${String(error)}`);
    }
  }
}
