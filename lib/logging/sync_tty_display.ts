/**
 * The live terminal display of a sync: several images move at once, so instead of one line per
 * blob it keeps one row per LIST line — `checking`, `transferring 42%`, then `done`, `unchanged`
 * or `failed` — and a count of finished lines, redrawn in place at most ten times a second.
 * Warnings and retries print above it, prefixed with their line; the closing summary stays.
 *
 * @module
 */

import { ProgressBook } from "./display.ts";
import type { PushEvent, SyncLinePlan, SyncLineStatus } from "./events.ts";
import { formatDuration } from "./format.ts";
import { linePrefix, syncedLine, syncStatusWord } from "./summary.ts";
import { bar, LiveDisplay, type TerminalSize } from "./live_area.ts";

const STATUS_WIDTH = 17;

/** What the display knows about one LIST line. */
interface LineRow {
  plan: SyncLinePlan;
  /** Progress of the line's copy or push, once it started moving bytes. */
  book?: ProgressBook;
  /** How the line ended, once it did. */
  status?: SyncLineStatus;
  /** Why it failed. */
  message?: string;
}

/** Live display of a sync for a terminal on stderr. */
export class SyncTtyDisplay extends LiveDisplay {
  private readonly rows = new Map<number, LineRow>();
  private heading = "";
  private startedAt: number;
  private dryRun = false;

  /** Starts the display; writer, terminal size and clock are injectable for tests. */
  constructor(
    write: (text: string) => void,
    size: () => TerminalSize,
    clock: () => number = Date.now,
  ) {
    super(write, size, clock);
    this.startedAt = clock();
  }

  /** Records the event; the next tick redraws. Warnings, retries and the summary print at once. */
  override onEvent(event: PushEvent): void {
    const row = event.line === undefined ? undefined : this.rows.get(event.line);
    switch (event.type) {
      case "syncing":
        this.dryRun = event.dryRun;
        this.startedAt = this.clock();
        this.heading = `${event.dryRun ? "Checking" : "Syncing"} ${event.from} → ${event.to}`;
        for (const plan of event.lines) this.rows.set(plan.line, { plan });
        this.dirty = true;
        break;
      case "start":
        // A dry run's copy or push only plans: the line is still being checked.
        if (row !== undefined && !event.dryRun) {
          row.book = new ProgressBook(this.clock);
          row.book.apply(event);
          this.dirty = true;
        }
        break;
      case "blob":
      case "progress":
        if (row?.book !== undefined) {
          row.book.apply(event);
          this.dirty = true;
        }
        break;
      case "sync":
        if (row !== undefined) {
          row.status = event.status;
          if (event.status === "failed" && event.message !== undefined) {
            row.message = event.message;
          }
          this.dirty = true;
        }
        break;
      case "warning":
        this.log(`${linePrefix(event.line)}warning: ${event.message}`);
        break;
      case "retry":
        this.log(
          `${linePrefix(event.line)}retrying ${event.what} (attempt ${event.attempt}): ` +
            event.reason,
        );
        break;
      case "synced":
        this.redraw();
        this.area.keep();
        this.write(`${syncedLine(event)}\n`);
        break;
      default:
        // Manifests, tags and each image's own result are in the row's state and the final table.
        break;
    }
  }

  /** The status column of a row. */
  private statusText(row: LineRow): string {
    if (row.status !== undefined) return syncStatusWord(row.status, this.dryRun);
    if (row.book === undefined) return "checking";
    const total = row.book.expectedBytes();
    const percent = total > 0 ? Math.floor((row.book.doneBytes() / total) * 100) : 0;
    return `transferring ${String(Math.min(percent, 100)).padStart(3)}%`;
  }

  private rowText(row: LineRow, numberWidth: number, columns: number): string {
    const moving = row.book !== undefined && row.status === undefined;
    const total = row.book?.expectedBytes() ?? 0;
    const fraction = total > 0 ? (row.book?.doneBytes() ?? 0) / total : 0;
    const text = `${String(row.plan.line).padStart(numberWidth)} ` +
      `${this.statusText(row).padEnd(STATUS_WIDTH)} ${moving ? `${bar(fraction)} ` : ""}` +
      `${row.plan.source} → ${row.plan.target}${
        row.message === undefined ? "" : `: ${row.message}`
      }`;
    return text.slice(0, Math.max(10, columns - 1));
  }

  protected override lines(): string[] {
    const { columns, rows } = this.size();
    const all = [...this.rows.values()];
    const numberWidth = String(Math.max(0, ...all.map((row) => row.plan.line))).length;
    const room = Math.max(1, rows - 3);
    let shown = all;
    if (all.length > room) {
      // Too many to show: the lines still running, the ones moving bytes first.
      const running = all.filter((row) => row.status === undefined);
      running.sort((a, b) => Number(b.book !== undefined) - Number(a.book !== undefined));
      shown = running.slice(0, room - 1).sort((a, b) => a.plan.line - b.plan.line);
    }
    const lines = shown.map((row) => this.rowText(row, numberWidth, columns));
    if (shown.length < all.length) lines.push(`… ${all.length - shown.length} more lines`);
    const finished = all.filter((row) => row.status !== undefined);
    const count = (status: SyncLineStatus): number =>
      finished.filter((row) => row.status === status).length;
    const overall = `${finished.length} of ${all.length} lines finished: ` +
      (this.dryRun
        ? `${count("planned")} would transfer, ${count("unchanged")} unchanged, ` +
          `${count("failed")} would fail`
        : `${count("transferred")} done, ${count("unchanged")} unchanged, ` +
          `${count("failed")} failed`) +
      ` (${formatDuration(this.clock() - this.startedAt)})`;
    lines.push(overall.slice(0, Math.max(10, columns - 1)));
    if (this.heading) lines.unshift(this.heading.slice(0, Math.max(10, columns - 1)));
    return lines;
  }
}
