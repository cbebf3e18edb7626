/**
 * OCI image layout archives: `index.json` + `blobs/<alg>/<hex>`. Covers skopeo/podman
 * `oci-archive:`, buildx `type=oci`, docker save v25+ (OCI plus `manifest.json`) and docker save
 * from the containerd image store (an index naming every platform, with only some present).
 *
 * @module
 */

import { sha256Digest } from "../bytes/sha256.ts";
import { PusherError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import {
  CONTAINERD_NAME_ANNOTATION,
  DOCKER_REFERENCE_DIGEST_ANNOTATION,
  DOCKER_REFERENCE_TYPE_ANNOTATION,
  REF_NAME_ANNOTATION,
} from "../oci/annotations.ts";
import {
  configMediaType,
  familyOf,
  IMAGE_CONFIG_TYPES,
  IMAGE_MANIFEST_TYPES,
  INDEX_TYPES,
  layerCompression,
} from "../oci/media_types.ts";
import { platformName } from "../oci/platform.ts";
import {
  arrayField,
  asObject,
  configDiffIds,
  documentPath,
  type JsonObject,
  optionalString,
  parseDescriptor,
  parseJsonObject,
  parseManifestList,
  readNamedEntry,
  requiredString,
  stringArrayField,
} from "./json_document.ts";
import { type Candidate, selectCandidate } from "./image_select.ts";
import { type LayoutImage, type LayoutOptions, settle } from "./layout_choice.ts";
import { type OmittedLayers, readOmittedLayers } from "./omitted_layers.ts";
import type {
  ArchiveImage,
  ArchiveLayer,
  EntryView,
  ImageSelection,
  RawDocument,
} from "./types.ts";

function blobPath(digest: string): string {
  return `blobs/${digest.replace(":", "/")}`;
}

/** Whether the blob a descriptor names is in the archive. */
function blobPresent(view: EntryView, descriptor: Descriptor): boolean {
  return view.has(blobPath(descriptor.digest));
}

/** Reads a blob, checking it against its descriptor's digest and size. */
async function readBlob(
  view: EntryView,
  descriptor: Descriptor,
  where: string,
): Promise<Uint8Array> {
  const path = blobPath(descriptor.digest);
  const bytes = await readNamedEntry(view, path, where);
  const digest = sha256Digest(bytes);
  if (digest !== descriptor.digest) {
    throw new PusherError("verify", `blob ${path} has digest ${digest}, not ${descriptor.digest}`, {
      hint: "the archive is damaged; re-create it",
    });
  }
  if (bytes.length !== descriptor.size) {
    throw new PusherError(
      "verify",
      `blob ${path} is ${bytes.length} bytes, but ${where} says ${descriptor.size}`,
    );
  }
  return bytes;
}

/** A manifest document and its parsed form. */
interface LoadedManifest {
  document: RawDocument;
  json: JsonObject;
}

async function readDocument(
  view: EntryView,
  descriptor: Descriptor,
  allowed: ReadonlySet<string>,
  where: string,
): Promise<LoadedManifest> {
  const bytes = await readBlob(view, descriptor, where);
  const path = blobPath(descriptor.digest);
  const json = parseJsonObject(bytes, path);
  const mediaType = optionalString(json, "mediaType", path) ?? descriptor.mediaType;
  if (!allowed.has(mediaType)) {
    throw new PusherError(
      "input",
      `${path} has unsupported media type "${mediaType || "(none)"}" (expected ${
        [...allowed].join(" or ")
      })`,
    );
  }
  return { document: { bytes, digest: descriptor.digest, mediaType }, json };
}

/** Why an image could not be assembled: a blob is absent. */
class MissingBlob {
  constructor(readonly path: string, readonly where: string) {}
}

/** An image assembled from its manifest, with the diff_ids count its config declares. */
interface LoadedImage {
  image: ArchiveImage;
  declaredDiffIds: number;
}

/**
 * Assembles the image a manifest descriptor names (`namedBy` says where the descriptor came
 * from), or says which blob is absent. A layer a delta bundle leaves out (`omitted`) is not
 * absent: it is marked so, and push looks for it in the registry.
 */
async function loadImage(
  view: EntryView,
  descriptor: Descriptor,
  names: string[],
  namedBy: string,
  omitted: OmittedLayers,
): Promise<LoadedImage | MissingBlob> {
  const manifestPath = blobPath(descriptor.digest);
  if (!blobPresent(view, descriptor)) return new MissingBlob(manifestPath, namedBy);
  const manifest = await readDocument(view, descriptor, IMAGE_MANIFEST_TYPES, namedBy);
  const where = `manifest ${manifestPath}`;
  const configDescriptor = parseDescriptor(manifest.json.config, `${where} config`);
  if (!blobPresent(view, configDescriptor)) {
    return new MissingBlob(blobPath(configDescriptor.digest), `${where} config`);
  }
  const layerDescriptors = arrayField(manifest.json, "layers", where).map((value, i) =>
    parseDescriptor(value, `${where} layer ${i + 1}`)
  );
  const leftOut = (layer: Descriptor): boolean =>
    !blobPresent(view, layer) && omitted.has(layer.digest);
  for (const [i, layer] of layerDescriptors.entries()) {
    if (!blobPresent(view, layer) && !leftOut(layer)) {
      return new MissingBlob(blobPath(layer.digest), `${where} layer ${i + 1}`);
    }
  }
  const configBytes = await readBlob(view, configDescriptor, `${where} config`);
  const configPath = blobPath(configDescriptor.digest);
  const configType = configDescriptor.mediaType ||
    configMediaType(familyOf(manifest.document.mediaType));
  const diffIds = IMAGE_CONFIG_TYPES.includes(configType)
    ? configDiffIds(parseJsonObject(configBytes, `config ${configPath}`), `config ${configPath}`)
    : undefined;
  if (
    diffIds !== undefined && layerDescriptors.length > 0 &&
    diffIds.length !== layerDescriptors.length
  ) {
    throw new PusherError(
      "input",
      `config ${configPath} lists ${diffIds.length} diff_ids but ${where} has ${layerDescriptors.length} layers`,
    );
  }
  const layers = layerDescriptors.map((layer, i): ArchiveLayer => {
    const omission = leftOut(layer) ? omitted.get(layer.digest) : undefined;
    const entry = omission === undefined
      ? view.resolve(blobPath(layer.digest))
      : blobPath(layer.digest);
    const size = omission === undefined ? view.size(entry) : layer.size;
    if (size !== layer.size) {
      throw new PusherError(
        "verify",
        `layer ${entry} is ${size} bytes, but ${where} says ${layer.size}`,
        { hint: "the archive is damaged; re-create it" },
      );
    }
    const compression = layerCompression(layer.mediaType);
    if (compression === undefined) {
      throw new PusherError(
        "input",
        `${where} layer ${i + 1} has unsupported media type "${layer.mediaType || "(none)"}"`,
      );
    }
    const result: ArchiveLayer = {
      entry,
      size,
      storedDigest: layer.digest,
      compression,
      mediaType: layer.mediaType,
    };
    const diffId = diffIds?.[i];
    if (diffId !== undefined) result.diffId = diffId;
    if (layer.annotations !== undefined) result.annotations = layer.annotations;
    if (omission !== undefined) result.omitted = omission;
    return result;
  });
  const image: ArchiveImage = {
    names,
    config: { bytes: configBytes, digest: configDescriptor.digest, mediaType: configType },
    layers,
    sourceManifest: manifest.document,
  };
  if (descriptor.platform !== undefined) image.platform = descriptor.platform;
  return { image, declaredDiffIds: diffIds?.length ?? 0 };
}

function mustLoad(loaded: LoadedImage | MissingBlob): LoadedImage {
  if (loaded instanceof MissingBlob) {
    throw new PusherError(
      "input",
      `${loaded.where} names "${loaded.path}", which is not in the archive`,
      {
        hint: "the archive is incomplete; re-create it",
      },
    );
  }
  return loaded;
}

function childLabel(child: Descriptor): string {
  return child.platform === undefined
    ? `unknown platform (${child.digest.slice(0, 19)})`
    : platformName(child.platform);
}

/** The present children of an index; absent platforms are reported, absent attestations dropped. */
async function loadIndex(
  view: EntryView,
  descriptor: Descriptor,
  names: string[],
  omitted: OmittedLayers,
): Promise<ImageSelection> {
  const index = await readDocument(view, descriptor, INDEX_TYPES, "index.json");
  const where = `index ${blobPath(descriptor.digest)}`;
  const children = arrayField(index.json, "manifests", where).map((value, i) =>
    parseDescriptor(value, `${where} entry ${i + 1}`)
  );
  const platforms: ArchiveImage[] = [];
  const attestations = new Map<ArchiveImage, string>();
  const ordered: ArchiveImage[] = [];
  const skippedPlatforms: string[] = [];
  for (const child of children) {
    if (!IMAGE_MANIFEST_TYPES.has(child.mediaType)) {
      throw new PusherError(
        "input",
        `${where} names ${child.digest} with unsupported media type "${
          child.mediaType || "(none)"
        }"`,
      );
    }
    const attestationOf =
      child.annotations?.[DOCKER_REFERENCE_TYPE_ANNOTATION] === "attestation-manifest"
        ? child.annotations[DOCKER_REFERENCE_DIGEST_ANNOTATION] ?? ""
        : undefined;
    const loaded = await loadImage(view, child, names, where, omitted);
    if (loaded instanceof MissingBlob) {
      if (attestationOf === undefined) skippedPlatforms.push(childLabel(child));
      continue;
    }
    ordered.push(loaded.image);
    if (attestationOf === undefined) platforms.push(loaded.image);
    else attestations.set(loaded.image, attestationOf);
  }
  const only = platforms[0];
  if (only === undefined) {
    throw new PusherError(
      "input",
      `none of the platforms ${where} names (${
        skippedPlatforms.join(", ")
      }) has its blobs in the archive`,
    );
  }
  if (platforms.length === 1) {
    return { family: "oci", images: [only], skippedPlatforms, warnings: [] };
  }
  const present = new Set(platforms.map((image) => image.sourceManifest?.digest));
  const images = ordered.filter((image) => {
    const subject = attestations.get(image);
    return subject === undefined || present.has(subject);
  });
  return { family: "oci", images, index: index.document, skippedPlatforms, warnings: [] };
}

/** One image `index.json` names (several entries may name it, one per tag). */
interface TopLevelImage {
  descriptor: Descriptor;
  names: string[];
}

/** Groups `index.json` entries by digest: docker writes one entry per tag of an image. */
function groupByDigest(descriptors: Descriptor[]): Candidate<TopLevelImage>[] {
  const byDigest = new Map<string, Candidate<TopLevelImage>>();
  for (const descriptor of descriptors) {
    if (!IMAGE_MANIFEST_TYPES.has(descriptor.mediaType) && !INDEX_TYPES.has(descriptor.mediaType)) {
      throw new PusherError(
        "input",
        `index.json names ${descriptor.digest} with unsupported media type "${
          descriptor.mediaType || "(none)"
        }"`,
      );
    }
    const candidate = byDigest.get(descriptor.digest) ?? {
      names: [],
      refNames: [],
      digests: [descriptor.digest],
      fallbackLabel: descriptor.platform === undefined
        ? descriptor.digest
        : `${platformName(descriptor.platform)} ${descriptor.digest}`,
      value: { descriptor, names: [] },
    };
    const name = descriptor.annotations?.[CONTAINERD_NAME_ANNOTATION];
    const refName = descriptor.annotations?.[REF_NAME_ANNOTATION];
    if (name !== undefined && !candidate.names.includes(name)) candidate.names.push(name);
    if (refName !== undefined && !candidate.refNames.includes(refName)) {
      candidate.refNames.push(refName);
    }
    byDigest.set(descriptor.digest, candidate);
  }
  const candidates = [...byDigest.values()];
  // Without a full name, the ref names (often bare tags) are all the names there are.
  for (const candidate of candidates) {
    const names = candidate.names.length > 0 ? candidate.names : candidate.refNames;
    candidate.value.names.push(...names);
  }
  return candidates;
}

/**
 * A single-manifest image, or undefined for docker 25.0.0's OCI manifest that lists no layers
 * although its config has some (that release's `manifest.json` is the usable part).
 */
async function loadSingle(
  view: EntryView,
  descriptor: Descriptor,
  names: string[],
  omitted: OmittedLayers,
): Promise<ImageSelection | undefined> {
  const loaded = mustLoad(await loadImage(view, descriptor, names, "index.json", omitted));
  if (loaded.image.layers.length === 0 && loaded.declaredDiffIds > 0 && view.has("manifest.json")) {
    return undefined;
  }
  return { family: "oci", images: [loaded.image], skippedPlatforms: [], warnings: [] };
}

/** `RepoTags` of docker's `manifest.json`, by config path, when the archive has one. */
async function dockerRepoTags(view: EntryView): Promise<Map<string, string[]>> {
  const tags = new Map<string, string[]>();
  if (!view.has("manifest.json")) return tags;
  for (const [i, item] of parseManifestList(await view.read("manifest.json")).entries()) {
    const where = `manifest.json entry ${i + 1}`;
    const object = asObject(item, where);
    const config = documentPath(requiredString(object, "Config", where), `${where} Config`);
    tags.set(config, stringArrayField(object, "RepoTags", where, true));
  }
  return tags;
}

/** The images `index.json` lists; undefined when `manifest.json` is the usable part. */
async function ociCandidates(view: EntryView): Promise<Candidate<TopLevelImage>[] | undefined> {
  const json = parseJsonObject(await view.read("index.json"), "index.json");
  const descriptors = arrayField(json, "manifests", "index.json", true).map((value, i) =>
    parseDescriptor(value, `index.json entry ${i + 1}`)
  );
  if (descriptors.length === 0) {
    if (view.has("manifest.json")) return undefined;
    throw new PusherError("input", "index.json lists no images");
  }
  return groupByDigest(descriptors);
}

/**
 * Resolves one image `index.json` lists, named by docker's `RepoTags` when the archive has them;
 * undefined when `manifest.json` is the usable part.
 */
async function loadTopLevel(
  view: EntryView,
  chosen: TopLevelImage,
  omitted: OmittedLayers,
): Promise<ImageSelection | undefined> {
  const selection = INDEX_TYPES.has(chosen.descriptor.mediaType)
    ? await loadIndex(view, chosen.descriptor, chosen.names, omitted)
    : await loadSingle(view, chosen.descriptor, chosen.names, omitted);
  if (selection === undefined) return undefined;
  const repoTags = await dockerRepoTags(view);
  for (const image of selection.images) {
    const tags = repoTags.get(blobPath(image.config.digest));
    if (tags !== undefined && tags.length > 0) image.names = tags;
  }
  return selection;
}

/**
 * Resolves an OCI layout archive. Returns undefined when the archive's `manifest.json` is the
 * usable part: docker 25+ `docker save <image-id>` writes an `index.json` whose `manifests` is
 * null, and docker 25.0.0's OCI manifest lists no layers although its config has some.
 */
export async function resolveOciLayout(
  view: EntryView,
  options: LayoutOptions,
): Promise<ImageSelection | undefined> {
  const candidates = await ociCandidates(view);
  if (candidates === undefined) return undefined;
  return await loadTopLevel(
    view,
    selectCandidate(candidates, options.image, options.lsArguments),
    await readOmittedLayers(view),
  );
}

/**
 * Every image an OCI layout archive lists, each resolved as a push choosing it would. Returns
 * undefined when the archive's `manifest.json` is the usable part (see {@link resolveOciLayout}).
 */
export async function listOciLayout(view: EntryView): Promise<LayoutImage[] | undefined> {
  const candidates = await ociCandidates(view);
  if (candidates === undefined) return undefined;
  const omitted = await readOmittedLayers(view);
  const listed: LayoutImage[] = [];
  for (const candidate of candidates) {
    const resolved = await settle(loadTopLevel(view, candidate.value, omitted));
    if (resolved === undefined) return undefined;
    listed.push({ names: candidate.value.names, descriptor: candidate.value.descriptor, resolved });
  }
  return listed;
}
