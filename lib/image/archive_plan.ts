/**
 * What a Docker-25-style archive holds, worked out before any blob byte is written: the
 * top-level files (`oci-layout`, `index.json`, `manifest.json`, `repositories`) and every blob
 * once, in a fixed order, each with the descriptor its tar header and checks need.
 *
 * The archive is an OCI image layout that `docker save` 25+ also writes: `index.json` has one
 * entry per name (`io.containerd.image.name` = full reference, `org.opencontainers.image.ref.name`
 * = tag) pointing at the manifest or index exactly as pulled, so its digest survives.
 * `manifest.json` and `repositories` are the docker half for `docker load` before 25 and podman's
 * docker-archive path: one item per image that docker can run, and for a multi-platform index
 * only one platform (`loadPlatform`, else the first runnable child). Docker applies an item's
 * `RepoTags` as it loads it, so listing every platform under the same names would leave the
 * names on whichever platform happened to load last and store the other platforms for nothing;
 * docker 25 with the containerd store likewise lists one platform. OCI readers (`skopeo copy
 * oci-archive:`, `ctr import`, podman's OCI path, this tool) see every platform through the index.
 * A manifest keeps its Docker media type when it was pulled with one (its bytes are its digest);
 * skopeo 1.9 then finds it in `index.json` only when it is the sole entry, not by ref name, and
 * reads it through `manifest.json` instead.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { canonicalReference, familiarName } from "./image_select.ts";
import { arrayField, type JsonObject, parseDescriptor, parseJsonObject } from "./json_document.ts";
import { sha256Digest } from "../bytes/sha256.ts";
import {
  CONTAINERD_NAME_ANNOTATION,
  DOCKER_REFERENCE_TYPE_ANNOTATION,
  REF_NAME_ANNOTATION,
} from "../oci/annotations.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import {
  IMAGE_CONFIG_TYPES,
  IMAGE_MANIFEST_TYPES,
  INDEX_TYPES,
  isTarLayerType,
  OCI_INDEX,
} from "../oci/media_types.ts";
import { platformName } from "../oci/platform.ts";
import {
  encodeOmittedLayers,
  OMITTED_LAYERS_FILE,
  type OmittedLayer,
  type OmittedLayers,
} from "./omitted_layers.ts";
import { BLOCK_SIZE, paddedSize } from "./tar_header.ts";
import { END_OF_ARCHIVE_SIZE } from "./tar_writer.ts";
import type { RawDocument } from "./types.ts";

/** A blob as a descriptor names it: all the writer needs for its header and its checks. */
export interface BlobDescriptor {
  /** Media type from the manifest or index that names the blob. */
  mediaType: string;
  /** `sha256:<hex>` of the blob's bytes. */
  digest: string;
  /** Size of the blob in bytes. */
  size: number;
}

/** One image to write, as pulled. */
export interface ImageToWrite {
  /**
   * References naming the image (`registry/repo:tag`, `repo:tag`, or `repo@sha256:…`), parsed
   * and checked by the caller; may be empty. A tagged name goes into every part of the archive;
   * a digest-only name only into `index.json`, as docker cannot tag an image by digest.
   */
  names: readonly string[];
  /** The manifest exactly as pulled: an image manifest, or an index of image manifests. */
  manifest: RawDocument;
  /** For an index: every manifest it lists, exactly as pulled. */
  children?: readonly RawDocument[];
  /**
   * For an index: the platform (`os/architecture[/variant]`) that `manifest.json` lists for
   * docker load; by default the first child that docker can run. Pull passes the host's.
   */
  loadPlatform?: string;
}

/** A top-level file of the archive. */
export interface PlannedFile {
  /** Its path (no directory). */
  path: string;
  /** Its bytes. */
  bytes: Uint8Array;
}

/** A blob of the archive, stored under `blobs/sha256/<hex>`. */
export interface PlannedBlob {
  /** The blob's descriptor. */
  descriptor: BlobDescriptor;
  /**
   * The bytes of the manifests and indexes, which the plan holds; absent for configs and layers,
   * which the writer asks the caller for.
   */
  bytes?: Uint8Array;
}

/** Everything an archive holds, in archive order. */
export interface ArchivePlan {
  /** The top-level files, written first so a streaming reader meets the metadata first. */
  files: PlannedFile[];
  /** Every blob once, in order of first mention (manifest, then its config and layers). */
  blobs: PlannedBlob[];
  /** The blobs the caller supplies (configs and layers), in archive order: what pull fetches. */
  fetched: BlobDescriptor[];
  /** Size of the whole archive in bytes. */
  size: number;
  /** Layers the manifests name that the archive leaves out (a delta bundle), in archive order. */
  omitted: OmittedLayer[];
}

/** Options of {@link planArchive}. */
export interface PlanOptions {
  /**
   * Layers to leave out, by digest (a delta bundle: the far side holds them). Those the images
   * name are listed in `omitted-layers.json` instead of stored; configs and manifests are always
   * stored.
   */
  omit?: OmittedLayers;
}

const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion": "1.0.0"}';
const encoder = new TextEncoder();

/** The path of a blob inside the archive (and inside a staging directory). */
export function blobPath(digest: string): string {
  return `blobs/sha256/${digest.slice("sha256:".length)}`;
}

/** Checks that a document's bytes are what its digest (and, when given, its size) say. */
function checkDocument(document: RawDocument, size: number | undefined, where: string): void {
  const actual = sha256Digest(document.bytes);
  if (actual !== document.digest) {
    throw new PusherError(
      "verify",
      `${where} ${document.digest}: the bytes hash to ${actual}`,
      { hint: "the registry served a document that does not match its digest" },
    );
  }
  if (size !== undefined && size !== document.bytes.length) {
    throw new PusherError(
      "verify",
      `${where} ${document.digest} is ${document.bytes.length} bytes, its descriptor says ${size}`,
    );
  }
}

/** An image manifest's config and layers, and whether docker could load it. */
interface ParsedManifest {
  document: RawDocument;
  config: Descriptor;
  layers: Descriptor[];
  loadable: boolean;
}

function parseManifest(document: RawDocument, where: string): ParsedManifest {
  if (!IMAGE_MANIFEST_TYPES.has(document.mediaType)) {
    throw new PusherError(
      "input",
      `${where} ${document.digest} has media type "${document.mediaType}", not an image manifest`,
    );
  }
  const json = parseJsonObject(document.bytes, `${where} ${document.digest}`);
  const config = parseDescriptor(json.config, `${where} ${document.digest} config`);
  const layers = arrayField(json, "layers", `${where} ${document.digest}`).map((value, i) =>
    parseDescriptor(value, `${where} ${document.digest} layer ${i + 1}`)
  );
  const loadable = IMAGE_CONFIG_TYPES.includes(config.mediaType) &&
    layers.every((layer) => isTarLayerType(layer.mediaType));
  return { document, config, layers, loadable };
}

/** Whether an index child is a runnable platform (not an attestation or `unknown/unknown`). */
function isPlatformChild(child: Descriptor): boolean {
  return child.annotations?.[DOCKER_REFERENCE_TYPE_ANNOTATION] === undefined &&
    child.platform?.os !== "unknown";
}

/** An image resolved to its manifests, and the one manifest docker load gets. */
interface ResolvedImage {
  input: ImageToWrite;
  /** Every manifest, in index order. */
  manifests: ParsedManifest[];
  /** The manifest `manifest.json` lists, when docker can load one. */
  dockerManifest: ParsedManifest | undefined;
}

function resolveIndex(image: ImageToWrite, json: JsonObject): ResolvedImage {
  const where = `index ${image.manifest.digest}`;
  const supplied = new Map((image.children ?? []).map((child) => [child.digest, child]));
  const manifests: ParsedManifest[] = [];
  const platforms: { name: string; manifest: ParsedManifest }[] = [];
  for (const [i, value] of arrayField(json, "manifests", where).entries()) {
    const child = parseDescriptor(value, `${where} entry ${i + 1}`);
    if (INDEX_TYPES.has(child.mediaType)) {
      throw new PusherError("input", `${where} lists another index (${child.digest})`, {
        hint: "nested indexes are not supported; write the inner index as its own image",
      });
    }
    const document = supplied.get(child.digest);
    if (document === undefined) {
      throw new PusherError(
        "internal",
        `${where} lists ${child.digest}, but its manifest was not given to the writer`,
      );
    }
    checkDocument(document, child.size, `${where} entry ${i + 1}`);
    const manifest = parseManifest(document, `${where} entry ${i + 1}`);
    manifests.push(manifest);
    if (manifest.loadable && isPlatformChild(child)) {
      platforms.push({ name: child.platform ? platformName(child.platform) : "", manifest });
    }
  }
  const wanted = image.loadPlatform;
  const chosen = wanted === undefined
    ? platforms[0]
    : platforms.find((platform) => platform.name === wanted);
  if (wanted !== undefined && chosen === undefined) {
    throw new PusherError(
      "usage",
      `${where} has no runnable image for platform ${wanted} (it has ${
        platforms.map((platform) => platform.name || "unnamed").join(", ") || "none"
      })`,
    );
  }
  return { input: image, manifests, dockerManifest: chosen?.manifest };
}

function resolveImage(image: ImageToWrite): ResolvedImage {
  checkDocument(image.manifest, undefined, "manifest");
  if (INDEX_TYPES.has(image.manifest.mediaType)) {
    return resolveIndex(image, parseJsonObject(image.manifest.bytes, "index"));
  }
  const manifest = parseManifest(image.manifest, "manifest");
  return {
    input: image,
    manifests: [manifest],
    dockerManifest: manifest.loadable ? manifest : undefined,
  };
}

/** A name split into what each part of the archive records. */
interface ArchiveName {
  /** Full reference, e.g. `docker.io/library/app:v1` (`io.containerd.image.name`). */
  full: string;
  /** The tag, for a tagged name (`org.opencontainers.image.ref.name`). */
  tag?: string;
  /** Repository as docker shows it, e.g. `app` or `localhost:5000/team/app`. */
  repository?: string;
}

function archiveName(name: string): ArchiveName {
  const full = canonicalReference(name);
  if (full.includes("@")) return { full };
  const colon = full.lastIndexOf(":");
  return { full, tag: full.slice(colon + 1), repository: familiarName(full.slice(0, colon)) };
}

/** Refuses a name given twice: readers would pick one of its images arbitrarily. */
function refuseRepeatedNames(images: readonly ImageToWrite[]): void {
  const seen = new Set<string>();
  for (const name of images.flatMap((image) => image.names)) {
    const full = canonicalReference(name);
    if (seen.has(full)) {
      throw new PusherError("usage", `the name ${name} is given more than once`, {
        hint: "give every image its own name:tag",
      });
    }
    seen.add(full);
  }
}

function json(value: unknown, newline: boolean): Uint8Array {
  return encoder.encode(JSON.stringify(value) + (newline ? "\n" : ""));
}

function indexJson(images: ResolvedImage[]): Uint8Array {
  const manifests = images.flatMap((image) => {
    const { digest, mediaType, bytes } = image.input.manifest;
    const descriptor = { mediaType, digest, size: bytes.length };
    if (image.input.names.length === 0) return [descriptor];
    return image.input.names.map((name) => {
      const parsed = archiveName(name);
      const annotations: Record<string, string> = { [CONTAINERD_NAME_ANNOTATION]: parsed.full };
      if (parsed.tag !== undefined) annotations[REF_NAME_ANNOTATION] = parsed.tag;
      return { ...descriptor, annotations };
    });
  });
  return json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, false);
}

interface DockerItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/** `manifest.json` items (one per loadable manifest) and the `repositories` table. */
function dockerFiles(images: ResolvedImage[]): { items: DockerItem[]; repositories: Uint8Array } {
  const items = new Map<string, DockerItem>();
  const repositories = new Map<string, Map<string, string>>();
  for (const image of images) {
    const manifest = image.dockerManifest;
    if (manifest === undefined) continue;
    const item = items.get(manifest.document.digest) ?? {
      Config: blobPath(manifest.config.digest),
      RepoTags: [],
      Layers: manifest.layers.map((layer) => blobPath(layer.digest)),
    };
    items.set(manifest.document.digest, item);
    const top = manifest.layers.at(-1);
    for (const name of image.input.names.map(archiveName)) {
      if (name.tag === undefined || name.repository === undefined) continue;
      const repoTag = `${name.repository}:${name.tag}`;
      if (!item.RepoTags.includes(repoTag)) item.RepoTags.push(repoTag);
      if (top === undefined) continue;
      const tags = repositories.get(name.repository) ?? new Map<string, string>();
      tags.set(name.tag, top.digest.slice("sha256:".length));
      repositories.set(name.repository, tags);
    }
  }
  const table: Record<string, Record<string, string>> = {};
  for (const repository of [...repositories.keys()].sort()) {
    const tags = repositories.get(repository) ?? new Map<string, string>();
    table[repository] = Object.fromEntries([...tags].sort(([a], [b]) => a < b ? -1 : 1));
  }
  return {
    items: [...items.values()],
    repositories: repositories.size === 0 ? new Uint8Array(0) : json(table, true),
  };
}

/** Adds a blob once; a second mention must agree on the size. */
function addBlob(blobs: Map<string, PlannedBlob>, blob: PlannedBlob): void {
  const known = blobs.get(blob.descriptor.digest);
  if (known === undefined) {
    blobs.set(blob.descriptor.digest, blob);
    return;
  }
  if (known.descriptor.size !== blob.descriptor.size) {
    throw new PusherError(
      "verify",
      `blob ${blob.descriptor.digest} is named with two sizes (${known.descriptor.size} and ${blob.descriptor.size})`,
    );
  }
}

function documentBlob(document: RawDocument): PlannedBlob {
  const { mediaType, digest, bytes } = document;
  return { descriptor: { mediaType, digest, size: bytes.length }, bytes };
}

function plainDescriptor(descriptor: Descriptor): BlobDescriptor {
  return { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
}

function archiveSize(files: PlannedFile[], blobs: PlannedBlob[]): number {
  let size = 2 * BLOCK_SIZE + END_OF_ARCHIVE_SIZE; // blobs/ and blobs/sha256/
  for (const file of files) size += BLOCK_SIZE + paddedSize(file.bytes.length);
  for (const blob of blobs) size += BLOCK_SIZE + paddedSize(blob.descriptor.size);
  return size;
}

/**
 * Plans the archive for `images` (in the order given; the same images in the same order always
 * give the same plan), leaving out the layers `options.omit` names (a delta bundle). Checks every manifest and index against its digest (verify errors), and
 * throws an input error for a document that is not an image manifest or index, a usage error
 * when a name is given twice or `loadPlatform` names a platform the index lacks, and an internal
 * error when an index's child manifest was not supplied.
 */
export function planArchive(
  images: readonly ImageToWrite[],
  options: PlanOptions = {},
): ArchivePlan {
  if (images.length === 0) throw new PusherError("internal", "an archive needs at least one image");
  refuseRepeatedNames(images);
  const resolved = images.map(resolveImage);
  const blobs = new Map<string, PlannedBlob>();
  const omitted = new Map<string, OmittedLayer>();
  for (const image of resolved) {
    addBlob(blobs, documentBlob(image.input.manifest));
    for (const manifest of image.manifests) {
      addBlob(blobs, documentBlob(manifest.document));
      addBlob(blobs, { descriptor: plainDescriptor(manifest.config) });
      for (const layer of manifest.layers) {
        const left = options.omit?.get(layer.digest);
        if (left === undefined) addBlob(blobs, { descriptor: plainDescriptor(layer) });
        else omitted.set(layer.digest, { ...left, ...plainDescriptor(layer) });
      }
    }
  }
  const docker = dockerFiles(resolved);
  const files: PlannedFile[] = [
    { path: "oci-layout", bytes: encoder.encode(OCI_LAYOUT_CONTENT) },
    { path: "index.json", bytes: indexJson(resolved) },
  ];
  // Without a runnable image there is nothing for docker load; readers then use index.json.
  if (docker.items.length > 0) {
    files.push({ path: "manifest.json", bytes: json(docker.items, true) });
  }
  if (docker.repositories.length > 0) {
    files.push({ path: "repositories", bytes: docker.repositories });
  }
  if (omitted.size > 0) {
    files.push({ path: OMITTED_LAYERS_FILE, bytes: encodeOmittedLayers([...omitted.values()]) });
  }
  const planned = [...blobs.values()];
  return {
    files,
    blobs: planned,
    fetched: planned.filter((blob) => blob.bytes === undefined).map((blob) => blob.descriptor),
    size: archiveSize(files, planned),
    omitted: [...omitted.values()],
  };
}
