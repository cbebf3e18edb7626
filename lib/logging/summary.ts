/**
 * The closing line of a push, pull or dry run, shared by the terminal and plain displays.
 *
 * @module
 */

import type { PushEvent } from "./events.ts";
import { formatBytes, formatDuration } from "./format.ts";

/** `pushed a:1 in 2.1s: 3 uploaded (12 MiB sent), 1 already there, 0 mounted`, or the dry-run plan. */
export function resultLine(event: Extract<PushEvent, { type: "result" }>): string {
  const { blobs } = event;
  const references = event.references.join(", ");
  if (event.dryRun) {
    return `dry run for ${references} (nothing written): would upload ${blobs.planned} blobs ` +
      `(${formatBytes(blobs.plannedBytes)}), ${blobs.exists} already there`;
  }
  return `pushed ${references} in ${
    formatDuration(event.durationMs)
  }: ${blobs.uploaded} uploaded ` +
    `(${
      formatBytes(event.bytesSent)
    } sent), ${blobs.exists} already there, ${blobs.mounted} mounted`;
}

/** `pulled a:1, b:2 into out.tar (80 MiB) in 3.2s: 5 downloaded (79 MiB), 1 already there`. */
export function pulledLine(event: Extract<PushEvent, { type: "pulled" }>): string {
  const sources = event.images.map((image) => image.source).join(", ");
  const { blobs } = event;
  const omitted = event.omitted === undefined
    ? ""
    : `; ${event.omitted.layers} layer(s) (${
      formatBytes(event.omitted.bytes)
    }) left out: the far side holds them`;
  if (event.dryRun) {
    return `dry run for ${sources} (nothing written): would download ${blobs.planned} blobs ` +
      `(${formatBytes(blobs.plannedBytes)}) into ${event.output} (${
        formatBytes(event.size)
      })${omitted}`;
  }
  return `pulled ${sources} into ${event.output} (${formatBytes(event.size)}) in ${
    formatDuration(event.durationMs)
  }: ${blobs.downloaded} downloaded (${formatBytes(event.bytesDownloaded)}), ${blobs.present} ` +
    `already in the partial archive${omitted}`;
}
