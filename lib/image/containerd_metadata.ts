/**
 * What containerd's metadata database (`<root>/io.containerd.metadata.v1.bolt/meta.db`) says
 * about images: its namespaces, each namespace's images (name → target descriptor) and the blobs
 * the namespace holds. The file is read without a lock while containerd may be writing it; a
 * snapshot is used only when the transaction id did not move while it was read.
 *
 * Layout (containerd `core/metadata/buckets.go`): `v1/<namespace>/images/<name>/target/{digest,
 * mediatype,size}` with the size a Go signed varint, and `v1/<namespace>/content/blob/<digest>`.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type BoltBucket, BoltDatabase, BoltFormatError, newestMeta } from "./bbolt.ts";

/** Where containerd keeps the metadata database under its root. */
export const METADATA_DB_PATH = "io.containerd.metadata.v1.bolt/meta.db";
/** Snapshots taken before giving up on a database that keeps changing under the reader. */
const SNAPSHOT_ATTEMPTS = 10;
/** Pause between snapshots, in milliseconds. */
const SNAPSHOT_PAUSE_MS = 25;

/** One image record of a namespace. */
export interface ContainerdImageRecord {
  /** The image name, e.g. `docker.io/library/alpine:3.20`. */
  name: string;
  /** What the name points at: an index or a manifest. */
  target: Descriptor;
}

/** One namespace of the database. */
export interface ContainerdNamespace {
  /** The namespace name. */
  name: string;
  /** Its images, in name order. */
  images: ContainerdImageRecord[];
  /** Digests of the blobs the namespace holds (`sha256:<hex>`). */
  blobs: Set<string>;
}

/** The image-related content of a containerd metadata database. */
export interface ContainerdMetadata {
  /** The database file. */
  path: string;
  /** The bbolt transaction the snapshot shows. */
  txid: bigint;
  /** Namespaces, in name order. */
  namespaces: ContainerdNamespace[];
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a Go `binary.PutVarint` value (zigzag, then 7 bits per byte, low bits first). Throws a
 * {@link BoltFormatError} for a malformed or out-of-range value.
 */
export function decodeGoVarint(bytes: Uint8Array, source: string): number {
  let unsigned = 0n;
  let shift = 0n;
  for (const [i, byte] of bytes.entries()) {
    if (i >= 10) break;
    unsigned |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) {
      if (i !== bytes.length - 1) break;
      const value = (unsigned & 1n) === 0n ? unsigned >> 1n : -(unsigned >> 1n) - 1n;
      if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new BoltFormatError(source, `varint ${value} is out of range`);
      }
      return Number(value);
    }
    shift += 7n;
  }
  throw new BoltFormatError(source, "a varint value is malformed");
}

function text(bytes: Uint8Array, what: string, source: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new BoltFormatError(source, `${what} is not UTF-8`);
  }
}

function readTarget(
  image: BoltBucket,
  name: string,
  source: string,
): Descriptor {
  const where = `image "${name}"`;
  const target = image.bucket("target");
  if (target === undefined) throw new BoltFormatError(source, `${where} has no target bucket`);
  const digest = target.get("digest");
  const mediaType = target.get("mediatype");
  const size = target.get("size");
  if (digest === undefined || mediaType === undefined || size === undefined) {
    throw new BoltFormatError(source, `${where} lacks a target digest, media type or size`);
  }
  return {
    mediaType: text(mediaType, `${where} media type`, source),
    digest: text(digest, `${where} digest`, source),
    size: decodeGoVarint(size, source),
  };
}

function readNamespace(name: string, bucket: BoltBucket, source: string): ContainerdNamespace {
  const images: ContainerdImageRecord[] = [];
  for (const entry of bucket.bucket("images")?.entries() ?? []) {
    if (entry.bucket === undefined) continue;
    const imageName = text(entry.key, "an image name", source);
    images.push({ name: imageName, target: readTarget(entry.bucket, imageName, source) });
  }
  const blobs = new Set<string>();
  for (const entry of bucket.path("content", "blob")?.entries() ?? []) {
    if (entry.bucket !== undefined) blobs.add(text(entry.key, "a blob digest", source));
  }
  return { name, images, blobs };
}

/**
 * Reads the image metadata from a `meta.db` database. Throws a {@link BoltFormatError} when its
 * pages are not a consistent database.
 */
export function containerdMetadataOf(database: BoltDatabase): ContainerdMetadata {
  const source = database.source;
  const namespaces: ContainerdNamespace[] = [];
  const v1 = database.root().bucket("v1");
  for (const entry of v1?.entries() ?? []) {
    if (entry.bucket === undefined) continue; // the schema "version" key
    namespaces.push(readNamespace(text(entry.key, "a namespace", source), entry.bucket, source));
  }
  return { path: source, txid: database.meta.txid, namespaces };
}

async function readDatabase(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new PusherError("input", `${path} does not exist: not a containerd root`, {
        cause: error,
        hint: "containerd's root is /var/lib/containerd by default; k3s uses " +
          "/var/lib/rancher/k3s/agent/containerd",
      });
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new PusherError("input", `cannot read ${path}: permission denied`, {
        cause: error,
        hint: "containerd's files belong to root: run as root or with sudo",
      });
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new PusherError("input", `cannot read ${path}: ${message}`, { cause: error });
  }
}

/** The transaction id the file's meta pages show now. */
async function currentTxid(path: string, pageSize: number): Promise<bigint> {
  const file = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(pageSize * 2);
    let filled = 0;
    while (filled < head.length) {
      const count = await file.read(head.subarray(filled));
      if (count === null) break;
      filled += count;
    }
    return newestMeta(head.subarray(0, filled), path).txid;
  } finally {
    file.close();
  }
}

/**
 * Reads the image metadata of the containerd root `root`, without locking and without writing.
 * A running containerd may commit while the file is read: a snapshot counts only when the
 * newest transaction id is the same after parsing as in the bytes parsed (pages a transaction
 * can still see are never overwritten before a later one commits). Throws input errors for a
 * missing or unreadable database, and a {@link BoltFormatError} when no consistent snapshot
 * could be taken.
 */
export async function readContainerdMetadata(root: string): Promise<ContainerdMetadata> {
  const path = `${root.replace(/\/+$/, "")}/${METADATA_DB_PATH}`;
  let lastError: unknown;
  for (let attempt = 0; attempt < SNAPSHOT_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, SNAPSHOT_PAUSE_MS));
    try {
      const bytes = await readDatabase(path);
      const database = new BoltDatabase(bytes, path);
      const metadata = containerdMetadataOf(database);
      if (await currentTxid(path, database.meta.pageSize) === metadata.txid) return metadata;
      lastError = new BoltFormatError(path, "it kept changing while it was read");
    } catch (error) {
      if (!(error instanceof BoltFormatError)) throw error;
      lastError = error;
    }
  }
  throw lastError;
}
