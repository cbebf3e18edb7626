/**
 * The `ls` command: what an image archive or a containerd namespace holds, as a table or as one
 * JSON document. The library lists; this module only says where from and formats.
 *
 * @module
 */

import { type ImageSummary, listArchiveImages } from "../image/archive_listing.ts";
import { listContainerdImages, openContainerdStore } from "../image/containerd_store.ts";
import { formatImageTable } from "./image_table.ts";

/** Where `ls` looks: an archive file (`-` for stdin), or one namespace of a containerd store. */
export type ListSource =
  | { kind: "archive"; file: string }
  | { kind: "containerd"; root: string; namespace: string };

/** The options of `ls`. */
export interface ListOptions {
  /** What to list. */
  source: ListSource;
  /** Print one JSON document instead of a table. */
  json: boolean;
}

async function summaries(source: ListSource): Promise<ImageSummary[]> {
  if (source.kind === "archive") return await listArchiveImages(source.file);
  const store = await openContainerdStore(source.root, { namespace: source.namespace });
  return await listContainerdImages(store);
}

/** An image as the JSON document shows it: every field present, `null` when it has no value. */
function jsonImage(image: ImageSummary): Record<string, unknown> {
  return {
    names: image.names,
    platforms: image.platforms,
    skippedPlatforms: image.skippedPlatforms,
    digest: image.digest ?? null,
    mediaType: image.mediaType ?? null,
    configDigest: image.configDigest ?? null,
    size: image.size,
    uncompressedLayers: image.uncompressedLayers,
    omittedLayers: image.omittedLayers ?? [],
    problem: image.problem ?? null,
  };
}

/** Lists the images; returns the text for stdout (the table, or the JSON document). */
export async function runList(options: ListOptions): Promise<string> {
  const { source } = options;
  const images = await summaries(source);
  if (!options.json) return formatImageTable(images);
  const where = source.kind === "archive"
    ? { archive: source.file }
    : { containerdRoot: source.root, namespace: source.namespace };
  return `${JSON.stringify({ ...where, images: images.map(jsonImage) }, null, 2)}\n`;
}
