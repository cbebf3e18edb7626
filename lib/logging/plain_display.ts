/**
 * Progress for logs and pipes: one line per state change and a summary line every few seconds
 * while bytes are moving. No control codes.
 *
 * @module
 */

import { type Display, isFinished, isMoving, ProgressBook } from "./display.ts";
import type { PushEvent } from "./events.ts";
import { formatBytes, formatDuration, shortDigest } from "./format.ts";
import { pulledLine, resultLine } from "./summary.ts";

/** Line-per-change display for non-terminal stderr. */
export class PlainDisplay implements Display {
  private readonly book: ProgressBook;
  private readonly write: (line: string) => void;
  private readonly timer: ReturnType<typeof setInterval>;

  /** Starts the display; a summary line is written every `summaryEveryMs` while uploading. */
  constructor(
    write: (line: string) => void,
    summaryEveryMs = 5000,
    clock: () => number = Date.now,
  ) {
    this.write = write;
    this.book = new ProgressBook(clock);
    this.timer = setInterval(() => this.summary(), summaryEveryMs);
    Deno.unrefTimer(Number(this.timer));
  }

  /** Prints a line for each state change. */
  onEvent(event: PushEvent): void {
    const blob = this.book.apply(event);
    switch (event.type) {
      case "start":
        this.write(
          (event.action === "pull"
            ? `${event.dryRun ? "checking" : "pulling"} ${
              event.targets.join(", ")
            } → ${event.file}: `
            : `${event.dryRun ? "checking" : "pushing"} ${event.file} → ${
              event.targets.join(", ")
            }: `) +
            `${event.blobs.length} blobs, ${formatBytes(event.totalBytes)}`,
        );
        break;
      case "blob": {
        if (event.state === "waiting") break;
        const size = formatBytes(blob?.total ?? event.blob.size);
        const reason = event.reason ? ` (${event.reason})` : "";
        this.write(
          `${event.blob.role} ${
            shortDigest(event.blob.digest ?? event.blob.id)
          } ${size}: ${event.state}${reason}`,
        );
        break;
      }
      case "retry":
        this.write(
          `retrying ${event.what} in ${
            formatDuration(event.delayMs)
          } (attempt ${event.attempt}): ${event.reason}`,
        );
        break;
      case "manifest":
        this.write(
          `manifest ${shortDigest(event.digest)} ${formatBytes(event.size)} → ${event.reference}`,
        );
        break;
      case "tag":
        this.write(`tagged ${event.reference}`);
        break;
      case "warning":
        this.write(`warning: ${event.message}`);
        break;
      case "result":
        this.write(resultLine(event));
        break;
      case "pulled":
        this.write(pulledLine(event));
        break;
      case "progress":
        break;
    }
  }

  private summary(): void {
    const active = [...this.book.blobs.values()].filter((blob) =>
      isMoving(blob.state) && !isFinished(blob.state)
    );
    if (active.length === 0) return;
    this.write(
      `progress: ${formatBytes(this.book.doneBytes())} / ${
        formatBytes(this.book.expectedBytes())
      }, ` +
        `${formatBytes(this.book.speed())}/s, ETA ${formatDuration(this.book.etaMs())}`,
    );
  }

  /** Writes a log line as it is. */
  log(line: string): void {
    this.write(line);
  }

  /** Stops the summary timer. */
  close(): void {
    clearInterval(this.timer);
  }
}
