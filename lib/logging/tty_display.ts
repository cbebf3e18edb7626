/**
 * The live terminal display: one line per blob (short digest, size, bar, speed, state) and an
 * overall line (bytes, speed, ETA), redrawn at most ten times a second. Log lines print above it.
 *
 * @module
 */

import { type BlobProgress, isFinished, isMoving, ProgressBook } from "./display.ts";
import type { PushEvent } from "./events.ts";
import { formatBytes, formatDuration, shortDigest } from "./format.ts";
import { bar, LiveDisplay, type TerminalSize } from "./live_area.ts";
import { pulledLine, resultLine } from "./summary.ts";

/** Per-blob speed from the bytes seen between redraws. */
class SpeedMeter {
  private readonly samples = new Map<string, { bytes: number; at: number; speed: number }>();

  /** Updates and returns a blob's smoothed speed in bytes per second. */
  measure(id: string, bytes: number, now: number): number {
    const previous = this.samples.get(id);
    if (!previous) {
      this.samples.set(id, { bytes, at: now, speed: 0 });
      return 0;
    }
    const seconds = (now - previous.at) / 1000;
    if (seconds < 0.25) return previous.speed;
    const instant = Math.max(0, bytes - previous.bytes) / seconds;
    const speed = previous.speed === 0 ? instant : previous.speed * 0.7 + instant * 0.3;
    this.samples.set(id, { bytes, at: now, speed });
    return speed;
  }
}

/** Live multi-line display for a terminal on stderr. */
export class TtyDisplay extends LiveDisplay {
  private readonly book: ProgressBook;
  private readonly speeds = new SpeedMeter();
  private heading = "";

  /** Starts the display; writer, terminal size and clock are injectable for tests. */
  constructor(
    write: (text: string) => void,
    size: () => TerminalSize,
    clock: () => number = Date.now,
  ) {
    super(write, size, clock);
    this.book = new ProgressBook(clock);
  }

  /** Records the event; the next tick redraws. Final lines print at once. */
  override onEvent(event: PushEvent): void {
    this.book.apply(event);
    switch (event.type) {
      case "start":
        this.heading = event.action === "pull"
          ? `${event.dryRun ? "Checking" : "Pulling"} ${event.targets.join(", ")} → ${event.file}`
          : `${event.dryRun ? "Checking" : "Pushing"} ${event.file} → ${event.targets.join(", ")}`;
        this.dirty = true;
        break;
      case "manifest":
        this.log(`manifest ${shortDigest(event.digest)} → ${event.reference}`);
        break;
      case "tag":
        this.log(`tagged ${event.reference}`);
        break;
      case "warning":
        this.log(`warning: ${event.message}`);
        break;
      case "retry":
        this.log(`retrying ${event.what} (attempt ${event.attempt}): ${event.reason}`);
        break;
      case "result":
        this.redraw();
        this.area.keep();
        this.write(`${resultLine(event)}\n`);
        break;
      case "pulled":
        this.redraw();
        this.area.keep();
        this.write(`${pulledLine(event)}\n`);
        break;
      default:
        this.dirty = true;
    }
  }

  private blobLine(blob: BlobProgress, columns: number): string {
    const now = this.clock();
    const fraction = blob.total > 0 ? blob.bytes / blob.total : 1;
    const speed = isMoving(blob.state) ? this.speeds.measure(blob.info.id, blob.bytes, now) : 0;
    const state = blob.state === "retrying" && blob.reason
      ? `retrying: ${blob.reason}`
      : blob.state;
    const parts = [
      blob.info.role === "config" ? "config" : "layer ",
      shortDigest(blob.info.digest ?? blob.info.id).padEnd(12),
      formatBytes(blob.total).padStart(9),
      bar(isFinished(blob.state) ? 1 : fraction),
      speed > 0 ? `${formatBytes(speed)}/s`.padStart(11) : "".padStart(11),
      state,
    ];
    return parts.join(" ").slice(0, Math.max(10, columns - 1));
  }

  protected override lines(): string[] {
    const { columns, rows } = this.size();
    const blobs = [...this.book.blobs.values()];
    const room = Math.max(1, rows - 3);
    let shown = blobs;
    let hidden = 0;
    if (blobs.length > room) {
      const active = blobs.filter((blob) => !isFinished(blob.state) && blob.state !== "waiting");
      shown = active.slice(0, room - 1);
      hidden = blobs.length - shown.length;
    }
    const lines = shown.map((blob) => this.blobLine(blob, columns));
    if (hidden > 0) lines.push(`… ${hidden} more blobs`);
    const done = this.book.doneBytes();
    const total = this.book.expectedBytes();
    const overall = `total ${formatBytes(done)} / ${formatBytes(total)} ${
      bar(total > 0 ? done / total : 1)
    } ${formatBytes(this.book.speed())}/s ETA ${formatDuration(this.book.etaMs())}`;
    lines.push(overall.slice(0, Math.max(10, columns - 1)));
    if (this.heading) lines.unshift(this.heading.slice(0, Math.max(10, columns - 1)));
    return lines;
  }
}
