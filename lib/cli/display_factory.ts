/**
 * Chooses the display for a run: JSON events, quiet, a live terminal display, or plain lines.
 *
 * @module
 */

import type { Display } from "../logging/display.ts";
import type { PushEvent } from "../logging/events.ts";
import { JsonDisplay } from "../logging/json_display.ts";
import { PlainDisplay } from "../logging/plain_display.ts";
import { SyncPlainDisplay } from "../logging/sync_plain_display.ts";
import { SyncTtyDisplay } from "../logging/sync_tty_display.ts";
import type { TerminalSize } from "../logging/live_area.ts";
import { TtyDisplay } from "../logging/tty_display.ts";
import type { OutputSettings } from "./args.ts";

const encoder = new TextEncoder();

/** Writes text to stderr, whole. */
export function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}

/** Writes text to stdout, whole. */
export function writeStdout(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/** Shows nothing but log lines (errors, with `--quiet`). */
class QuietDisplay implements Display {
  onEvent(_event: PushEvent): void {}
  log(line: string): void {
    writeStderr(`${line}\n`);
  }
  close(): void {}
}

/** The terminal's size, 80×24 when it can't be read. */
function terminalSize(): TerminalSize {
  try {
    return Deno.consoleSize();
  } catch {
    return { columns: 80, rows: 24 };
  }
}

/**
 * The display the output settings and the terminal call for; `sync` picks the sync's terminal and
 * plain displays (one row, or one prefix, per LIST line).
 */
export function createDisplay(output: OutputSettings, sync = false): Display {
  if (output.json) {
    return new JsonDisplay((line) => writeStdout(`${line}\n`), (line) => writeStderr(`${line}\n`));
  }
  if (output.quiet) return new QuietDisplay();
  if (Deno.stderr.isTerminal() && Deno.env.get("TERM") !== "dumb") {
    return sync
      ? new SyncTtyDisplay(writeStderr, terminalSize)
      : new TtyDisplay(writeStderr, terminalSize);
  }
  const writeLine = (line: string): void => writeStderr(`${line}\n`);
  return sync ? new SyncPlainDisplay(writeLine) : new PlainDisplay(writeLine);
}
