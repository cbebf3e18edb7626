/**
 * Docker `manifest.json` archives: docker save before v25 (`<id>/layer.tar`), skopeo/podman
 * `docker-archive:` (`<diffid>.tar`, with `<id>/layer.tar` symlinks to them), and the
 * `manifest.json` half of docker save v25+.
 *
 * @module
 */

import { sha256Digest } from "../bytes/sha256.ts";
import { PusherError } from "../errors.ts";
import { type Compression, DOCKER_CONFIG } from "../oci/media_types.ts";
import {
  asObject,
  configDiffIds,
  documentPath,
  parseJsonObject,
  parseManifestList,
  readNamedEntry,
  requiredString,
  stringArrayField,
} from "./json_document.ts";
import { type Candidate, selectCandidate } from "./image_select.ts";
import { type LayoutImage, type LayoutOptions, settle } from "./layout_choice.ts";
import type { ArchiveImage, ArchiveLayer, EntryView, ImageSelection } from "./types.ts";

/** One `manifest.json` entry. */
interface ManifestItem {
  config: string;
  repoTags: string[];
  layers: string[];
  where: string;
}

/**
 * The compression an archive entry's name declares (`.gz`, `.tgz`, `.zst`); `"none"` otherwise.
 * Docker's `manifest.json` gives no media types, so names are all there is before the bytes.
 */
function nameCompression(path: string): Compression {
  if (/\.(t?gz|gzip)$/i.test(path)) return "gzip";
  if (/\.(zst|zstd)$/i.test(path)) return "zstd";
  return "none";
}

/**
 * The digest an entry's name states: `<hex>`, `<hex>.json`, `<hex>.tar` at the top, or
 * `blobs/sha256/<hex>`.
 */
function digestFromName(path: string): string | undefined {
  const match = /^(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json|\.tar)?$/.exec(path);
  return match?.[1] === undefined ? undefined : `sha256:${match[1]}`;
}

function parseItem(value: unknown, index: number): ManifestItem {
  const where = `manifest.json entry ${index + 1}`;
  const object = asObject(value, where);
  return {
    config: documentPath(requiredString(object, "Config", where), `${where} Config`),
    repoTags: stringArrayField(object, "RepoTags", where, true),
    layers: stringArrayField(object, "Layers", where).map((path) =>
      documentPath(path, `${where} Layers`)
    ),
    where,
  };
}

/** An image read from `manifest.json`, with what was accepted although it deviates. */
interface LoadedImage {
  image: ArchiveImage;
  warnings: string[];
}

async function loadImage(view: EntryView, item: ManifestItem): Promise<LoadedImage> {
  const bytes = await readNamedEntry(view, item.config, `${item.where} Config`);
  const digest = sha256Digest(bytes);
  const stated = digestFromName(view.resolve(item.config));
  const warnings: string[] = [];
  // Like docker load, skopeo and crane: the config is pushed under its content's digest; the
  // layers are still checked against its diff_ids.
  if (stated !== undefined && stated !== digest) {
    warnings.push(
      `config ${item.config} hashes to ${digest}, not the ${stated} its name states ` +
        "(edited after it was saved?); pushing it under its content's digest",
    );
  }
  const diffIds = configDiffIds(
    parseJsonObject(bytes, `config ${item.config}`),
    `config ${item.config}`,
  );
  if (diffIds !== undefined && diffIds.length !== item.layers.length) {
    throw new PusherError(
      "input",
      `config ${item.config} lists ${diffIds.length} diff_ids but ${item.where} has ${item.layers.length} layers`,
    );
  }
  const layers = item.layers.map((path, i): ArchiveLayer => {
    if (!view.has(path)) {
      throw new PusherError(
        "input",
        `${item.where} names layer "${path}", which is not in the archive`,
        { hint: "the archive is incomplete; re-create it" },
      );
    }
    const entry = view.resolve(path);
    const layer: ArchiveLayer = {
      entry,
      size: view.size(entry),
      compression: nameCompression(entry),
    };
    const storedDigest = entry.endsWith(".json") ? undefined : digestFromName(entry);
    if (storedDigest !== undefined) layer.storedDigest = storedDigest;
    const diffId = diffIds?.[i];
    if (diffId !== undefined) layer.diffId = diffId;
    return layer;
  });
  const image: ArchiveImage = {
    names: item.repoTags,
    config: { bytes, digest, mediaType: DOCKER_CONFIG },
    layers,
  };
  return { image, warnings };
}

/** The images `manifest.json` lists, as candidates to choose from. */
async function dockerCandidates(view: EntryView): Promise<Candidate<ManifestItem>[]> {
  const items = parseManifestList(await view.read("manifest.json")).map(parseItem);
  return items.map((item): Candidate<ManifestItem> => {
    const digest = digestFromName(item.config);
    return {
      names: item.repoTags,
      refNames: [],
      digests: digest === undefined ? [] : [digest],
      fallbackLabel: `untagged image ${digest ?? item.config}`,
      value: item,
    };
  });
}

async function loadSelection(view: EntryView, item: ManifestItem): Promise<ImageSelection> {
  const { image, warnings } = await loadImage(view, item);
  return { family: "docker", images: [image], skippedPlatforms: [], warnings };
}

/** Resolves the image to push from docker's `manifest.json`. */
export async function resolveDockerLayout(
  view: EntryView,
  options: LayoutOptions,
): Promise<ImageSelection> {
  const candidates = await dockerCandidates(view);
  return await loadSelection(
    view,
    selectCandidate(candidates, options.image, options.lsArguments),
  );
}

/** Every image docker's `manifest.json` lists, each resolved as a push choosing it would. */
export async function listDockerLayout(view: EntryView): Promise<LayoutImage[]> {
  const listed: LayoutImage[] = [];
  for (const candidate of await dockerCandidates(view)) {
    listed.push({
      names: candidate.names,
      resolved: await settle(loadSelection(view, candidate.value)),
    });
  }
  return listed;
}
