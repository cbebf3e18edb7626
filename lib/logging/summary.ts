/**
 * The closing line of a push, pull, sync or dry run, shared by the terminal and plain displays.
 *
 * @module
 */

import type { PushEvent, SyncLineStatus } from "./events.ts";
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

/**
 * `synced 5 lines in 3.2s: 2 transferred (12 MiB sent), 2 unchanged, 1 failed`, or the dry run's
 * `dry run of 5 lines (nothing written): 2 would transfer, 2 unchanged, 1 would fail`.
 */
export function syncedLine(event: Extract<PushEvent, { type: "synced" }>): string {
  const { lines } = event;
  const total = lines.transferred + lines.unchanged + lines.failed + lines.planned;
  if (event.dryRun) {
    return `dry run of ${total} lines (nothing written): ${lines.planned} would transfer, ` +
      `${lines.unchanged} unchanged, ${lines.failed} would fail`;
  }
  return `synced ${total} lines in ${formatDuration(event.durationMs)}: ${lines.transferred} ` +
    `transferred (${formatBytes(event.bytesSent)} sent), ${lines.unchanged} unchanged, ` +
    `${lines.failed} failed`;
}

/**
 * How displays and the final table call the way a sync line ended: `done`, `unchanged`,
 * `failed`; in a dry run `would transfer`, `unchanged`, `would fail`.
 */
export function syncStatusWord(status: SyncLineStatus, dryRun: boolean): string {
  switch (status) {
    case "transferred":
      return "done";
    case "unchanged":
      return "unchanged";
    case "planned":
      return "would transfer";
    case "failed":
      return dryRun ? "would fail" : "failed";
  }
}

/** The prefix of a log line that belongs to a sync's LIST line: `line 7: `. */
export function linePrefix(line: number | undefined): string {
  return line === undefined ? "" : `line ${line}: `;
}
