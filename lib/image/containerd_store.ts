/**
 * A containerd content store as an image source, read-only: one namespace's images, seen as an
 * OCI layout. Its `index.json` is made up from the metadata database (one entry per image, named
 * by `io.containerd.image.name`), and `blobs/sha256/<hex>` are the namespace's blob files under
 * `<root>/io.containerd.content.v1.content/blobs/sha256/`. The OCI layout resolution then does
 * the work, so push uses a store as it uses an archive: layers are read in place by entry.
 *
 * Nothing under the root is written or locked. A blob counts as present only when the namespace
 * records it and its file exists: platforms never pulled are reported as skipped, like an archive
 * reader reports platforms whose blobs are absent.
 *
 * ```ts
 * const store = await openContainerdStore("/var/lib/containerd", { namespace: "k8s.io" });
 * const selection = await resolveContainerdImage(store, "docker.io/library/alpine:3.20");
 * const bytes = store.openEntry(selection.images[0]!.layers[0]!.entry);
 * ```
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { CONTAINERD_NAME_ANNOTATION } from "../oci/annotations.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { IMAGE_MANIFEST_TYPES, INDEX_TYPES, OCI_INDEX } from "../oci/media_types.ts";
import {
  type ContainerdImageRecord,
  type ContainerdNamespace,
  readContainerdMetadata,
} from "./containerd_metadata.ts";
import { type ImageSummary, summarizeImages } from "./archive_listing.ts";
import { fileRangeStream, openForReading, readFully } from "./file_io.ts";
import { resolveLayout } from "./layout.ts";
import type { RandomAccessArchive } from "./random_access.ts";
import { DEFAULT_NAMESPACE } from "./containerd_namespace.ts";
import { normalizeEntryPath } from "./tar_path.ts";
import type { ImageSelection } from "./types.ts";

/** Where containerd keeps sha256 blobs under its root. */
export const CONTENT_BLOBS_PATH = "io.containerd.content.v1.content/blobs/sha256";
/** The name of the made-up index that lists a namespace's images. */
const INDEX_ENTRY = "index.json";
/** Largest blob {@link ContainerdStore.read} loads whole (documents are far smaller). */
const MAX_READ_SIZE = 64 * 1024 * 1024;
/** Blob files looked up at once when a store is opened. */
const STAT_BATCH = 64;
const SHA256_DIGEST = /^sha256:([a-f0-9]{64})$/;

/** Options of {@link openContainerdStore}. */
export interface ContainerdStoreOptions {
  /** The namespace to read; {@link DEFAULT_NAMESPACE} when absent (k3s and CRI use `k8s.io`). */
  namespace?: string | undefined;
}

/**
 * One namespace of a containerd store, readable like an indexed archive: `index.json` lists the
 * namespace's images, `blobs/sha256/<hex>` are its blobs.
 */
export interface ContainerdStore extends RandomAccessArchive {
  /** The namespace read. */
  readonly namespace: string;
  /** Every namespace of the store, in name order. */
  readonly namespaces: readonly string[];
  /** The namespace's images, in name order, as the metadata database records them. */
  readonly images: readonly ContainerdImageRecord[];
}

/** A blob file of the namespace. */
interface BlobFile {
  /** Its path on disk. */
  file: string;
  /** Its size in bytes. */
  size: number;
}

/** Whether a record's target is something this tool can push (an image manifest or an index). */
function isPushable(record: ContainerdImageRecord): boolean {
  const { mediaType, digest } = record.target;
  return SHA256_DIGEST.test(digest) &&
    (IMAGE_MANIFEST_TYPES.has(mediaType) || INDEX_TYPES.has(mediaType));
}

function indexDocument(records: readonly ContainerdImageRecord[]): Uint8Array {
  const manifests = records.filter(isPushable).map((record): Descriptor => ({
    mediaType: record.target.mediaType,
    digest: record.target.digest,
    size: record.target.size,
    annotations: { [CONTAINERD_NAME_ANNOTATION]: record.name },
  }));
  return new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }),
  );
}

/** One namespace's blobs and a made-up `index.json` naming its images. */
class NamespaceView implements ContainerdStore {
  /** The containerd root. */
  readonly path: string;
  /** Bytes of the namespace's blob files together. */
  readonly fileSize: number;
  readonly namespace: string;
  readonly namespaces: readonly string[];
  readonly images: readonly ContainerdImageRecord[];
  readonly #blobs: ReadonlyMap<string, BlobFile>;
  readonly #index: Uint8Array;

  constructor(
    root: string,
    namespace: string,
    namespaces: readonly string[],
    images: readonly ContainerdImageRecord[],
    blobs: ReadonlyMap<string, BlobFile>,
  ) {
    this.path = root;
    this.namespace = namespace;
    this.namespaces = namespaces;
    this.images = images;
    this.#blobs = blobs;
    this.#index = indexDocument(images);
    this.fileSize = [...blobs.values()].reduce((sum, blob) => sum + blob.size, 0);
  }

  #where(): string {
    return `namespace "${this.namespace}" of containerd store ${this.path}`;
  }

  /** The blob an entry path names, or undefined (also for `index.json`). */
  #blob(path: string): BlobFile | undefined {
    const match = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(normalizeEntryPath(path) ?? "");
    return match === null ? undefined : this.#blobs.get(match[1] as string);
  }

  #lookup(path: string): BlobFile {
    const blob = this.#blob(path);
    if (blob === undefined) {
      throw new PusherError("input", `${this.#where()} has no blob "${path}"`);
    }
    return blob;
  }

  #isIndex(path: string): boolean {
    return normalizeEntryPath(path) === INDEX_ENTRY;
  }

  paths(): string[] {
    return [INDEX_ENTRY, ...[...this.#blobs.keys()].map((hex) => `blobs/sha256/${hex}`)];
  }

  has(path: string): boolean {
    return this.#isIndex(path) || this.#blob(path) !== undefined;
  }

  size(path: string): number {
    return this.#isIndex(path) ? this.#index.length : this.#lookup(path).size;
  }

  resolve(path: string): string {
    if (this.#isIndex(path)) return INDEX_ENTRY;
    this.#lookup(path);
    return normalizeEntryPath(path) as string;
  }

  /** Reads a blob whole; reading `index.json` of a namespace with no images is an input error. */
  async read(path: string): Promise<Uint8Array> {
    if (this.#isIndex(path)) {
      if (!this.images.some(isPushable)) {
        throw new PusherError("input", `${this.#where()} holds no images`, {
          hint: `its namespaces: ${this.namespaces.join(", ")}`,
        });
      }
      return this.#index.slice();
    }
    const blob = this.#lookup(path);
    if (blob.size > MAX_READ_SIZE) {
      throw new PusherError(
        "input",
        `${blob.file} is too large to read as a document (${blob.size} bytes)`,
      );
    }
    const file = await openForReading(blob.file);
    try {
      const bytes = new Uint8Array(blob.size);
      if (await readFully(file, bytes) < blob.size) {
        throw new PusherError("input", `${blob.file} shrank while it was read`);
      }
      return bytes;
    } finally {
      file.close();
    }
  }

  openEntry(path: string, offset = 0): ReadableStream<Uint8Array> {
    const blob = this.#lookup(path);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > blob.size) {
      throw new PusherError(
        "internal",
        `offset ${offset} is outside blob ${blob.file} (${blob.size} bytes)`,
      );
    }
    return fileRangeStream(blob.file, offset, blob.size - offset, "the blob", true);
  }
}

/** The namespace's blob files that exist, by hex digest. */
async function presentBlobs(root: string, namespace: ContainerdNamespace): Promise<
  Map<string, BlobFile>
> {
  const hexes = [...namespace.blobs].flatMap((digest) => {
    const match = SHA256_DIGEST.exec(digest);
    return match === null ? [] : [match[1] as string];
  });
  const blobs = new Map<string, BlobFile>();
  for (let start = 0; start < hexes.length; start += STAT_BATCH) {
    await Promise.all(
      hexes.slice(start, start + STAT_BATCH).map(async (hex) => {
        const file = `${root}/${CONTENT_BLOBS_PATH}/${hex}`;
        try {
          const info = await Deno.stat(file);
          if (info.isFile) blobs.set(hex, { file, size: info.size });
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        }
      }),
    );
  }
  return blobs;
}

/**
 * Opens one namespace of the containerd store at `root` (e.g. `/var/lib/containerd`) for
 * reading, without locking it, while containerd runs or not. Throws input errors when the root
 * has no readable metadata database or the namespace does not exist.
 */
export async function openContainerdStore(
  root: string,
  options: ContainerdStoreOptions = {},
): Promise<ContainerdStore> {
  const trimmed = root.length > 1 ? root.replace(/\/+$/, "") : root;
  const namespaceName = options.namespace ?? DEFAULT_NAMESPACE;
  const metadata = await readContainerdMetadata(trimmed);
  const names = metadata.namespaces.map((namespace) => namespace.name);
  const namespace = metadata.namespaces.find((candidate) => candidate.name === namespaceName);
  if (namespace === undefined) {
    throw new PusherError(
      "input",
      `containerd store ${trimmed} has no namespace "${namespaceName}"`,
      {
        hint: names.length === 0
          ? "it holds no namespaces yet"
          : `its namespaces: ${names.join(", ")}`,
      },
    );
  }
  const blobs = await presentBlobs(trimmed, namespace);
  return new NamespaceView(trimmed, namespace.name, names, namespace.images, blobs);
}

/**
 * Resolves an image of the store's namespace (`name` as stored, or familiar like `app:v1`, or a
 * digest) to what push takes: one image, or the present platforms of an index with the absent
 * ones in `skippedPlatforms`. Layer bytes come from `store.openEntry(layer.entry)`. Without a
 * name, the namespace must hold exactly one image. Throws a usage error when the name matches
 * none or several images, and input errors when the namespace holds no images or the image's
 * documents are absent or malformed.
 */
export async function resolveContainerdImage(
  store: ContainerdStore,
  name?: string,
): Promise<ImageSelection> {
  return await resolveLayout(store, {
    image: name,
    lsArguments: ["--containerd-root", store.path, "--namespace", store.namespace],
  });
}

/** Describes a record whose target this tool cannot push. */
function unpushable(record: ContainerdImageRecord): ImageSummary {
  return {
    names: [record.name],
    digest: record.target.digest,
    mediaType: record.target.mediaType,
    platforms: [],
    skippedPlatforms: [],
    size: 0,
    uncompressedLayers: 0,
    problem: `its target ${record.target.digest} has unsupported media type "${
      record.target.mediaType || "(none)"
    }"`,
  };
}

/**
 * Lists the images of the store's namespace as `ls` shows them, with the platforms present and
 * absent: one summary per target (names sharing a target are listed together), then the images
 * whose target cannot be pushed, with the reason in `problem`.
 */
export async function listContainerdImages(store: ContainerdStore): Promise<ImageSummary[]> {
  const pushable = store.images.some(isPushable);
  const listed = pushable ? await summarizeImages(store) : [];
  return [...listed, ...store.images.filter((record) => !isPushable(record)).map(unpushable)];
}
