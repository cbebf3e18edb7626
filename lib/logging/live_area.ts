/**
 * The block of lines a terminal display redraws in place at the bottom of the screen: each frame
 * moves the cursor up over the last one and erases it, so the screen holds every line once however
 * many frames were drawn. Text written between frames goes above the block. {@link LiveDisplay} is
 * what every terminal display shares: the area, the redraw tick, log lines above it, closing.
 *
 * @module
 */

import type { Display } from "./display.ts";
import type { PushEvent } from "./events.ts";

const ESC = "\x1b[";
const BAR_WIDTH = 20;
const REDRAW_MS = 100;

/** Terminal width and height. */
export interface TerminalSize {
  /** Columns. */
  columns: number;
  /** Rows. */
  rows: number;
}

/** A 20-character progress bar, `[#####---------------]`. */
export function bar(fraction: number): string {
  const filled = Math.max(0, Math.min(BAR_WIDTH, Math.round(fraction * BAR_WIDTH)));
  return `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`;
}

/** Lines redrawn in place on a terminal. */
export class LiveArea {
  readonly #write: (text: string) => void;
  #drawnLines = 0;

  /** An empty area; `write` sends text to the terminal as it is. */
  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  /** Replaces the lines drawn last with `lines`, each clearing the rest of its row. */
  draw(lines: readonly string[]): void {
    this.clear();
    this.#write(lines.map((line) => `${line}${ESC}K`).join("\n") + "\n");
    this.#drawnLines = lines.length;
  }

  /** Erases the lines drawn last; the next text goes where they were. */
  clear(): void {
    if (this.#drawnLines > 0) this.#write(`${ESC}${this.#drawnLines}A\r${ESC}0J`);
    this.#drawnLines = 0;
  }

  /** Leaves the lines drawn last on the screen for good; the next frame starts below them. */
  keep(): void {
    this.#drawnLines = 0;
  }
}

/**
 * A terminal display redrawn in place at most ten times a second: subclasses keep their state
 * from the events, set {@link dirty} when it changed, and say which {@link lines} to draw.
 */
export abstract class LiveDisplay implements Display {
  /** Sends text to the terminal. */
  protected readonly write: (text: string) => void;
  /** The terminal's size now. */
  protected readonly size: () => TerminalSize;
  /** Milliseconds now. */
  protected readonly clock: () => number;
  /** The lines redrawn in place. */
  protected readonly area: LiveArea;
  /** The state changed since the last frame. */
  protected dirty = false;
  readonly #timer: ReturnType<typeof setInterval>;

  /** Starts the redraw tick; writer, terminal size and clock are injectable for tests. */
  constructor(
    write: (text: string) => void,
    size: () => TerminalSize,
    clock: () => number = Date.now,
  ) {
    this.write = write;
    this.size = size;
    this.clock = clock;
    this.area = new LiveArea(write);
    this.#timer = setInterval(() => {
      if (this.dirty) this.redraw();
    }, REDRAW_MS);
    Deno.unrefTimer(Number(this.#timer));
  }

  /** Records an event. */
  abstract onEvent(event: PushEvent): void;

  /** The lines of the next frame. */
  protected abstract lines(): string[];

  /** Prints a line above the display, then redraws it. */
  log(line: string): void {
    this.area.clear();
    this.write(`${line}\n`);
    this.redraw();
  }

  /** Draws the final state and stops redrawing. */
  close(): void {
    clearInterval(this.#timer);
    if (this.dirty) this.redraw();
  }

  /** Draws the current state now. */
  protected redraw(): void {
    this.area.draw(this.lines());
    this.dirty = false;
  }
}
