/**
 * What an archive or a containerd namespace holds, image by image, as `ls` shows it: names,
 * platforms present and absent, the digest push would push as-is, and the bytes it would send.
 * Every image is resolved as a push choosing it would resolve it, so an image push would refuse
 * is listed with the reason.
 *
 * ```ts
 * for (const image of await listArchiveImages("images.tar")) {
 *   console.log(image.names.join(", "), image.platforms.join(", "), image.digest ?? "-");
 * }
 * ```
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { isTarLayerType } from "../oci/media_types.ts";
import { type Platform, platformName } from "../oci/platform.ts";
import { listLayout } from "./layout.ts";
import type { LayoutImage } from "./layout_choice.ts";
import { openArchive } from "./open_archive.ts";
import { scanArchiveStream } from "./stream_scan.ts";
import type { ArchiveImage, EntryView, ImageSelection } from "./types.ts";

/** One image of an archive or of a containerd namespace. */
export interface ImageSummary {
  /** Every name it goes by (`repo:tag` as stored; what `--image` takes); empty when untagged. */
  names: string[];
  /**
   * Digest of the document push pushes as the image: the index of a multi-platform image, or the
   * one manifest (also when it is the only platform of an index that is present). Push keeps it
   * when it pushes the documents as they are stored (layers kept as stored, no `--format`
   * conversion). Absent for docker `manifest.json` images, whose manifest push writes.
   */
  digest?: string;
  /** Media type of that document. */
  mediaType?: string;
  /** Digest of the config of a single image (the image ID docker shows). */
  configDigest?: string;
  /**
   * Platforms present (`os/architecture[/variant]`; BuildKit attestation manifests as
   * `unknown/unknown`, as `ctr images ls` shows them).
   */
  platforms: string[];
  /** Platforms the image's index names whose blobs are absent (push leaves them out). */
  skippedPlatforms: string[];
  /** Bytes of the configs and layers push would send, as stored, each blob counted once. */
  size: number;
  /**
   * Tar layers stored uncompressed (each once): push compresses them by default, which gives the
   * pushed manifest another digest than {@link digest}; `--compression none` keeps it.
   */
  uncompressedLayers: number;
  /**
   * Layers a delta bundle leaves out (digests, each once), when it leaves any out: push needs them
   * in the registry already. Not counted in {@link size}.
   */
  omittedLayers?: string[];
  /** Why push would refuse the image, when it would. */
  problem?: string;
}

/** `os/architecture[/variant]` of an image: its index entry's platform, or its config's. */
function platformOf(image: ArchiveImage): string {
  if (image.platform !== undefined) return platformName(image.platform);
  try {
    const config: unknown = JSON.parse(new TextDecoder().decode(image.config.bytes));
    const fields = config as Partial<Record<keyof Platform, unknown>>;
    if (
      typeof fields.os === "string" && fields.os !== "" &&
      typeof fields.architecture === "string" && fields.architecture !== ""
    ) {
      const platform: Platform = { os: fields.os, architecture: fields.architecture };
      if (typeof fields.variant === "string") platform.variant = fields.variant;
      return platformName(platform);
    }
  } catch {
    // A config that is not JSON names no platform.
  }
  return "unknown";
}

/**
 * Bytes of a selection's configs and layers as stored, each config and layer entry once; layers a
 * delta leaves out are not stored.
 */
function storedSize(selection: ImageSelection): number {
  const blobs = new Map<string, number>();
  for (const image of selection.images) {
    blobs.set(`config ${image.config.digest}`, image.config.bytes.length);
    for (const layer of image.layers) {
      if (layer.omitted === undefined) blobs.set(`layer ${layer.entry}`, layer.size);
    }
  }
  let total = 0;
  for (const size of blobs.values()) total += size;
  return total;
}

/** Tar layers a selection stores uncompressed, each layer entry once. */
function uncompressedTarLayers(selection: ImageSelection): number {
  const entries = new Set<string>();
  for (const image of selection.images) {
    for (const layer of image.layers) {
      const tar = layer.mediaType === undefined || isTarLayerType(layer.mediaType);
      if (tar && layer.compression === "none") entries.add(layer.entry);
    }
  }
  return entries.size;
}

/** Digests of the layers a delta leaves out of a selection, each once, in image order. */
function omittedLayers(selection: ImageSelection): string[] {
  const digests = selection.images.flatMap((image) =>
    image.layers.flatMap((layer) => layer.omitted === undefined ? [] : [layer.omitted.digest])
  );
  return [...new Set(digests)];
}

/** Describes one listed image: what push would push, or why it would not. */
function summarize(listed: LayoutImage): ImageSummary {
  const summary: ImageSummary = {
    names: listed.names,
    platforms: [],
    skippedPlatforms: [],
    size: 0,
    uncompressedLayers: 0,
  };
  const { resolved, descriptor } = listed;
  if (resolved instanceof PusherError) {
    if (descriptor !== undefined) {
      summary.digest = descriptor.digest;
      summary.mediaType = descriptor.mediaType;
    }
    summary.problem = resolved.message;
    return summary;
  }
  const single = resolved.images.length === 1 ? resolved.images[0] : undefined;
  const pushed = resolved.index ?? single?.sourceManifest;
  if (pushed !== undefined) {
    summary.digest = pushed.digest;
    summary.mediaType = pushed.mediaType;
  }
  if (single !== undefined) summary.configDigest = single.config.digest;
  summary.platforms = resolved.images.map(platformOf);
  summary.skippedPlatforms = resolved.skippedPlatforms;
  summary.size = storedSize(resolved);
  summary.uncompressedLayers = uncompressedTarLayers(resolved);
  const omitted = omittedLayers(resolved);
  if (omitted.length > 0) summary.omittedLayers = omitted;
  return summary;
}

/**
 * Lists the images of an archive's entries (or a containerd namespace seen as an OCI layout).
 * Throws input errors when the metadata as a whole is unusable (no image archive, malformed
 * `index.json` or `manifest.json`).
 */
export async function summarizeImages(view: EntryView): Promise<ImageSummary[]> {
  return (await listLayout(view)).map(summarize);
}

/**
 * Lists the images of the archive at `pathOrDash` (`-` reads standard input): every layout push
 * reads, plain or gzip/zstd-compressed. A plain tar is read by offset; a compressed one is read
 * in one pass that skips the layer bytes. Throws one-line input errors for a missing or
 * unreadable file, or one that is no image archive.
 */
export async function listArchiveImages(pathOrDash: string): Promise<ImageSummary[]> {
  return await summarizeImages(await readArchiveEntries(pathOrDash));
}

/**
 * The entries of the archive at `pathOrDash` (`-` reads standard input), enough to resolve its
 * layout: a plain tar indexed by offset, or a compressed one read in one pass whose small
 * documents are kept and whose layers are read past.
 */
export async function readArchiveEntries(pathOrDash: string): Promise<EntryView> {
  const source = await openArchive(pathOrDash);
  if (source.mode === "random") return source.archive;
  const scan = await scanArchiveStream(source.stream, () => Promise.resolve(undefined), {
    name: source.name,
  });
  return scan.view;
}
