/**
 * `--json`: newline-delimited JSON events on stdout, progress at most once a second per blob (per
 * blob and LIST line in a sync, whose events carry their `line`).
 *
 * @module
 */

import type { Display } from "./display.ts";
import type { PushEvent } from "./events.ts";

/** Writes each event as one JSON line; log lines go to stderr as plain text. */
export class JsonDisplay implements Display {
  private readonly lastProgress = new Map<string, number>();
  private readonly writeOut: (line: string) => void;
  private readonly writeErr: (line: string) => void;
  private readonly clock: () => number;

  /** Creates the display; writers and clock are injectable for tests. */
  constructor(
    writeOut: (line: string) => void,
    writeErr: (line: string) => void,
    clock: () => number = Date.now,
  ) {
    this.writeOut = writeOut;
    this.writeErr = writeErr;
    this.clock = clock;
  }

  /** Emits the event unless it is a progress event inside its one-second window. */
  onEvent(event: PushEvent): void {
    if (event.type === "progress") {
      const now = this.clock();
      // A sync moves several images at once, and a blob may be in more than one of them.
      const key = `${event.line ?? ""} ${event.id}`;
      const last = this.lastProgress.get(key);
      if (last !== undefined && now - last < 1000 && event.bytes < event.total) return;
      this.lastProgress.set(key, now);
    }
    this.writeOut(JSON.stringify({ time: new Date(this.clock()).toISOString(), ...event }));
  }

  /** Log lines go to stderr, keeping stdout pure JSON. */
  log(line: string): void {
    this.writeErr(line);
  }

  /** Nothing to clean up. */
  close(): void {}
}
