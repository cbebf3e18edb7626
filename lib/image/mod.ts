/**
 * Image archive reading: open an archive (random access for plain tar files, one streaming pass
 * for compressed files and standard input), then resolve its layout to the image(s) to push, or
 * list every image it holds.
 * Image archive writing: plan a Docker-25-style archive from pulled manifests, then stream it as
 * tar bytes, with blobs streamed in directly or from a staging directory. Containerd content
 * stores: one namespace read-only, seen as an OCI layout whose blobs are the store's files.
 *
 * ```ts
 * const source = await openArchive("image.tar");
 * if (source.mode === "random") {
 *   const selection = await resolveLayout(source.archive, { image: "app:v1" });
 *   const layer = selection.images[0]!.layers[0]!;
 *   const bytes = source.archive.openEntry(layer.entry);
 * }
 * ```
 *
 * @module
 */

export type * from "./types.ts";
export { type ArchiveSource, openArchive } from "./open_archive.ts";
export { openRandomAccessArchive, type RandomAccessArchive } from "./random_access.ts";
export {
  DEFAULT_MEMORY_LIMIT,
  type LargeEntryHandler,
  scanArchiveStream,
  type StreamScanOptions,
  type StreamScanResult,
} from "./stream_scan.ts";
export { type LayoutImage, type LayoutOptions, listLayout, resolveLayout } from "./layout.ts";
export { type ImageSummary, listArchiveImages, summarizeImages } from "./archive_listing.ts";
export {
  type ContainerdStore,
  type ContainerdStoreOptions,
  listContainerdImages,
  openContainerdStore,
  resolveContainerdImage,
} from "./containerd_store.ts";
export type { ContainerdImageRecord } from "./containerd_metadata.ts";
export { canonicalReference } from "./image_select.ts";
export { platformName } from "../oci/platform.ts";
export { archiveCompression, decompressStream } from "./compression.ts";
export { indexTarFile, type TarIndex, type TarIndexEntry } from "./tar_index.ts";
export { parseTarStream, type TarStreamEntry } from "./tar_stream.ts";
export type { TarEntryHeader, TarEntryType } from "./tar_header.ts";
export {
  type ArchivePlan,
  type BlobDescriptor,
  type ImageToWrite,
  planArchive,
  type PlannedBlob,
  type PlannedFile,
} from "./archive_plan.ts";
export { type BlobOpener, writeArchive } from "./archive_writer.ts";
