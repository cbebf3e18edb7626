/**
 * The table `ls` prints: one row per image (name, platforms, digest, size), further names on the
 * lines below the first, then what push would leave out or change, or why it would refuse the
 * image.
 *
 * @module
 */

import type { ImageSummary } from "../image/archive_listing.ts";
import { familiarName } from "../image/image_select.ts";
import { formatBytes } from "../logging/format.ts";
import { alignedRow, columnWidths } from "./text_table.ts";

const HEADINGS = ["NAME", "PLATFORMS", "DIGEST", "SIZE"] as const;

/** The cells of an image's first line. */
function cells(image: ImageSummary): string[] {
  return [
    image.names[0] === undefined ? "<none>" : familiarName(image.names[0]),
    image.platforms.length === 0 ? "-" : image.platforms.join(","),
    image.digest ?? "-",
    image.problem === undefined ? formatBytes(image.size) : "-",
  ];
}

/** `sha256:` and the first 12 hex digits, as docker shows image IDs. */
function shortDigest(digest: string): string {
  return digest.slice(0, "sha256:".length + 12);
}

/**
 * The lines under an image's row: its other names, absent platforms, uncompressed layers that
 * change the pushed digest, the layers a delta bundle leaves out, and its problem.
 */
function details(image: ImageSummary): string[] {
  const lines = image.names.slice(1).map(familiarName);
  if (image.skippedPlatforms.length > 0) {
    lines.push(`  absent, left out by push: ${image.skippedPlatforms.join(",")}`);
  }
  if (image.digest !== undefined && image.uncompressedLayers > 0) {
    lines.push(
      `  ${image.uncompressedLayers} layer(s) stored uncompressed: push compresses them, which ` +
        "changes the digest (--compression none keeps it)",
    );
  }
  const omitted = image.omittedLayers ?? [];
  if (omitted.length > 0) {
    lines.push(
      `  delta: ${omitted.length} layer(s) left out, the registry must hold them: ${
        omitted.map(shortDigest).join(", ")
      }`,
    );
  }
  if (image.problem !== undefined) lines.push(`  cannot be pushed: ${image.problem}`);
  return lines;
}

/** Formats the images as an aligned table, a heading line first; every line ends in `\n`. */
export function formatImageTable(images: readonly ImageSummary[]): string {
  const rows = images.map(cells);
  const widths = columnWidths(HEADINGS, rows);
  let text = alignedRow(HEADINGS, widths);
  images.forEach((image, index) => {
    text += alignedRow(rows[index] ?? [], widths);
    for (const detail of details(image)) text += `${detail}\n`;
  });
  return text;
}
