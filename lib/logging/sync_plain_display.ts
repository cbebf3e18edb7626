/**
 * Progress of a sync for logs and pipes: the lines of the images moving at once would mix, so each
 * one starts with its LIST line (`line 7: layer 3f2a… 12 MiB: uploaded`). Each running line has the
 * plain display of one image (its own progress summary every few seconds while bytes move); a
 * line's end is one line of its own (`line 7: done …`, `line 9: failed … : why`), and the run ends
 * with the sync's summary. No control codes.
 *
 * @module
 */

import type { Display } from "./display.ts";
import type { PushEvent } from "./events.ts";
import { PlainDisplay } from "./plain_display.ts";
import { linePrefix, syncedLine, syncStatusWord } from "./summary.ts";

/** Line-numbered display of a sync for non-terminal stderr. */
export class SyncPlainDisplay implements Display {
  private readonly write: (line: string) => void;
  private readonly summaryEveryMs: number;
  private readonly clock: () => number;
  /** The plain display of each line whose image is moving. */
  private readonly running = new Map<number, PlainDisplay>();
  private dryRun = false;

  /** Starts the display; each running line writes a progress summary every `summaryEveryMs`. */
  constructor(
    write: (line: string) => void,
    summaryEveryMs = 5000,
    clock: () => number = Date.now,
  ) {
    this.write = write;
    this.summaryEveryMs = summaryEveryMs;
    this.clock = clock;
  }

  /** Prints the run's start and end, each line's end, and each line's own events prefixed. */
  onEvent(event: PushEvent): void {
    switch (event.type) {
      case "syncing":
        this.dryRun = event.dryRun;
        this.write(
          `${event.dryRun ? "checking" : "syncing"} ${event.lines.length} images from ` +
            `${event.from} → ${event.to}${event.dryRun ? " (dry run: nothing is written)" : ""}`,
        );
        break;
      case "sync": {
        const word = syncStatusWord(event.status, this.dryRun);
        const why = event.status === "failed" || event.status === "planned"
          ? event.message
          : event.digest;
        this.write(
          `${linePrefix(event.line)}${word} ${event.source} → ${event.target}` +
            (why === undefined ? "" : `: ${why}`),
        );
        if (event.line !== undefined) this.finish(event.line);
        break;
      }
      case "synced":
        this.write(syncedLine(event));
        break;
      default:
        this.lineDisplay(event.line).onEvent(event);
    }
  }

  /** Writes a log line as it is. */
  log(line: string): void {
    this.write(line);
  }

  /** Stops every running line's summary timer. */
  close(): void {
    for (const line of [...this.running.keys()]) this.finish(line);
  }

  /** The display of a line's image, made on its first event. */
  private lineDisplay(line: number | undefined): PlainDisplay {
    const key = line ?? 0;
    let display = this.running.get(key);
    if (display === undefined) {
      const prefix = linePrefix(line);
      display = new PlainDisplay(
        (text) => this.write(`${prefix}${text}`),
        this.summaryEveryMs,
        this.clock,
      );
      this.running.set(key, display);
    }
    return display;
  }

  private finish(line: number): void {
    this.running.get(line)?.close();
    this.running.delete(line);
  }
}
