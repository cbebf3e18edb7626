/**
 * The request-body size known to pass a registry and the proxies in front of it: learnt when a
 * push had to make its chunks smaller after a 413 (nginx's `client_max_body_size`, Cloudflare's
 * 100 MB), and kept in the cache directory, one file per registry, so the next push starts with
 * chunks of that size instead of finding it again. With `--no-cache` it is kept for the run only.
 *
 * The size is only ever lowered by a push; a proxy whose limit was raised later keeps getting
 * chunks of the old size until the file is removed.
 *
 * @module
 */

import { join } from "node:path";
import { moduleLogger } from "../logging/logger.ts";
import { readRegistryFile, registryFilePath, writeFileAtomic } from "./cache_dir.ts";

interface LimitFile {
  format: "docker-image-pusher/chunk-limit";
  version: 1;
  registry: string;
  /** Bytes a request body may have. */
  bytes: number;
}

const FORMAT = "docker-image-pusher/chunk-limit";
const log = moduleLogger("cache");

/** The largest request body known to pass one registry. */
export class ChunkLimit {
  readonly #path: string | undefined;
  readonly #registry: string;
  #bytes: number | undefined;
  #saving: Promise<void> = Promise.resolve();

  private constructor(path: string | undefined, registry: string, bytes: number | undefined) {
    this.#path = path;
    this.#registry = registry;
    this.#bytes = bytes;
  }

  /** The file of a registry inside `directory`. */
  static pathFor(directory: string, registry: string): string {
    return registryFilePath(directory, "chunk-limit", registry);
  }

  /** Loads the limit of `registry`; a missing file knows none, a corrupt one is ignored. */
  static async load(directory: string, registry: string): Promise<ChunkLimit> {
    const path = ChunkLimit.pathFor(directory, registry);
    const file = await readRegistryFile(path, "chunk limit", FORMAT, registry);
    const bytes = (file as Partial<LimitFile> | undefined)?.bytes;
    const valid = typeof bytes === "number" && Number.isSafeInteger(bytes) && bytes > 0;
    return new ChunkLimit(path, registry, valid ? bytes : undefined);
  }

  /** A limit kept for this run only (`--no-cache`). */
  static unsaved(registry: string): ChunkLimit {
    return new ChunkLimit(undefined, registry, undefined);
  }

  /** The largest request body known to pass, when one was learnt. */
  get bytes(): number | undefined {
    return this.#bytes;
  }

  /** Chunks of `bytes` got through after larger ones were refused; saved in the background. */
  learnt(bytes: number): void {
    if (this.#bytes !== undefined && this.#bytes <= bytes) return;
    this.#bytes = bytes;
    const path = this.#path;
    if (path === undefined) return;
    const file: LimitFile = { format: FORMAT, version: 1, registry: this.#registry, bytes };
    const text = JSON.stringify(file);
    this.#saving = this.#saving.then(async () => {
      try {
        await Deno.mkdir(join(path, ".."), { recursive: true });
        await writeFileAtomic(path, text);
      } catch (error) {
        log.warn(`cannot save the chunk limit ${path}: ${String(error)}`);
      }
    });
  }

  /** Waits for the saves started so far. */
  async flush(): Promise<void> {
    await this.#saving;
  }
}
