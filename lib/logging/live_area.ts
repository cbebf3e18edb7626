/**
 * The block of lines a terminal display redraws in place at the bottom of the screen: each frame
 * moves the cursor up over the last one and erases it, so the screen holds every line once however
 * many frames were drawn. Text written between frames goes above the block.
 *
 * @module
 */

const ESC = "\x1b[";

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
