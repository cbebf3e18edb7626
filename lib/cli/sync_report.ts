/**
 * What `sync` prints when it is over: the table of every LIST line's outcome on stdout (line,
 * source, target, status, and the digest or why), and one `error:` line on stderr per failed
 * line naming its place in the LIST and its source.
 *
 * @module
 */

import { syncStatusWord } from "../logging/summary.ts";
import type { LineOutcome, SyncResult } from "../sync/sync.ts";
import { alignedRow, columnWidths } from "./text_table.ts";

const HEADINGS = ["LINE", "SOURCE", "TARGET", "STATUS", "DIGEST OR ERROR"] as const;

/** The last column: the digest, what a dry run would do, or why the line failed. */
function detail(outcome: LineOutcome): string {
  if (outcome.error !== undefined) return outcome.error.message;
  if (outcome.status === "planned") {
    const digest = outcome.digest === undefined ? "" : `${outcome.digest} `;
    return outcome.message === undefined ? digest.trimEnd() : `${digest}(${outcome.message})`;
  }
  return outcome.digest ?? "-";
}

/** The outcome table, a heading line first; every line ends in `\n`. */
export function formatSyncTable(result: SyncResult): string {
  const rows = result.lines.map((outcome) => [
    String(outcome.line),
    outcome.source,
    outcome.target,
    syncStatusWord(outcome.status, result.dryRun),
    detail(outcome),
  ]);
  const widths = columnWidths(HEADINGS, rows);
  return [HEADINGS, ...rows].map((row) => alignedRow(row, widths)).join("");
}

/**
 * One line per failed LIST line, in LIST order:
 * `error: images.txt:7: docker.io/library/app:1: the source … does not exist (hint)`.
 * `list` is the LIST as the command line named it. The messages are already redacted.
 */
export function failureLines(result: SyncResult, list: string): string[] {
  return result.lines.flatMap((outcome) => {
    if (outcome.error === undefined) return [];
    const hint = outcome.error.hint === undefined ? "" : ` (${outcome.error.hint})`;
    const verb = result.dryRun ? "would fail: " : "";
    return [
      `error: ${list}:${outcome.line}: ${outcome.source}: ${verb}${outcome.error.message}${hint}`,
    ];
  });
}
