/**
 * What a selection of images asks to push: its distinct layers, and the start event that tells
 * the displays about them.
 *
 * @module
 */

import type { ArchiveLayer, ImageSelection } from "../image/types.ts";
import type { BlobInfo } from "../logging/events.ts";
import { blobInfo, type RunContext } from "./context.ts";

/** The distinct layers of every selected image (shared layers once), in image order. */
export function uniqueLayers(selection: ImageSelection): ArchiveLayer[] {
  const byEntry = new Map<string, ArchiveLayer>();
  for (const image of selection.images) {
    for (const layer of image.layers) {
      if (!byEntry.has(layer.entry)) byEntry.set(layer.entry, layer);
    }
  }
  return [...byEntry.values()];
}

/** Warns about platforms the archive names but does not hold, and what the reader accepted. */
export function reportWarnings(ctx: RunContext, selection: ImageSelection): void {
  for (const platform of selection.skippedPlatforms) {
    ctx.emit({
      type: "warning",
      message: `platform ${platform} is named in the archive but its blobs are absent: left out`,
    });
  }
  for (const message of selection.warnings) ctx.emit({ type: "warning", message });
}

/** Emits the start event listing every blob of the selection. */
export function announce(ctx: RunContext, selection: ImageSelection): void {
  const blobs: BlobInfo[] = uniqueLayers(selection).map(blobInfo);
  for (const image of selection.images) {
    const { digest, bytes } = image.config;
    blobs.push({ id: digest, digest, size: bytes.length, role: "config" });
  }
  ctx.emit({
    type: "start",
    file: ctx.options.file,
    targets: ctx.options.targets,
    blobs,
    totalBytes: blobs.reduce((sum, blob) => sum + blob.size, 0),
    dryRun: ctx.options.dryRun,
  });
  reportWarnings(ctx, selection);
}
