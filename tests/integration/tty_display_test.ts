/**
 * The live terminal display, driven in a real terminal (tmux). Three views of one run: the screen
 * as rendered (`capture-pane`), the screen with its colour attributes (`capture-pane -e`), and the
 * raw bytes the program wrote to the terminal (`pipe-pane`). The rendered screen must show one line
 * per blob with a full bar, one overall line, log lines above the display, the closing summary and
 * the digest line; the raw bytes must show the frames being redrawn in place (cursor up, erase),
 * which is why the screen ends up with each line once although many frames were drawn. A sync
 * shows one row per LIST line instead, each with its final status once, then its summary and table.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/cli.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const ESC = "\x1b";

async function tmux(socket: string, args: string[]): Promise<string> {
  const output = await new Deno.Command("tmux", { args: ["-S", socket, ...args], stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`tmux ${args[0]} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** One run in the terminal, seen three ways. */
interface TerminalRun {
  /** The screen as rendered, without attributes (`capture-pane -p`). */
  screen: string;
  /** The screen with colour and text attributes as escape codes (`capture-pane -p -e`). */
  attributedScreen: string;
  /** Every byte the command wrote to the terminal, escape codes included (`pipe-pane`). */
  written: string;
}

/**
 * Runs a command in a detached 120×30 tmux session. The command waits until `pipe-pane` records
 * the pane's output, so the recording holds every byte it writes; the screens are captured once
 * it has exited.
 */
async function runInTerminal(command: string[], env: Record<string, string>): Promise<TerminalRun> {
  await using dir = await tempDir("pusher-tmux-");
  const socket = join(dir.path, "socket");
  const recording = join(dir.path, "written");
  const exports = Object.entries(env).map(([key, value]) => `export ${key}=${shellQuote(value)};`)
    .join(" ");
  const script = `tmux -S ${shellQuote(socket)} wait-for recording; ${exports} ` +
    `cd ${shellQuote(REPO_ROOT)}; ${command.map(shellQuote).join(" ")}; echo EXIT=$?; sleep 60`;
  await tmux(socket, ["new-session", "-d", "-x", "120", "-y", "30", "-s", "t", "sh", "-c", script]);
  try {
    await tmux(socket, ["pipe-pane", "-O", "-t", "t", `cat > ${shellQuote(recording)}`]);
    await tmux(socket, ["wait-for", "-S", "recording"]);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const screen = await tmux(socket, ["capture-pane", "-p", "-t", "t"]);
      if (/EXIT=\d+/.test(screen)) {
        const attributedScreen = await tmux(socket, ["capture-pane", "-p", "-e", "-t", "t"]);
        await tmux(socket, ["pipe-pane", "-t", "t"]);
        const written = new TextDecoder().decode(await Deno.readFile(recording));
        return { screen, attributedScreen, written };
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error("the command did not finish in the terminal within 60 s");
  } finally {
    await tmux(socket, ["kill-server"]).catch(() => {});
  }
}

/** How often `pattern` (a global regular expression) matches `text`. */
function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}

Deno.test("the terminal display redraws in place: each blob, bar, total and result once on screen, no colour with NO_COLOR", async () => {
  const fixture = (await sharedFixtures())["docker-archive"];
  const registry = await startRegistry();
  try {
    await using cache = await tempDir();
    const { screen, attributedScreen, written } = await runInTerminal(
      [
        Deno.execPath(),
        "run",
        "-A",
        "main.ts",
        "-f",
        fixture.path,
        "-r",
        `http://${registry.host}/tty/app:1`,
      ],
      { DOCKER_PUSHER_CACHE_DIR: cache.path, TERM: "xterm-256color", NO_COLOR: "1" },
    );
    assert.match(screen, /EXIT=0/, screen);

    // What the screen shows once the run is over.
    const lines = screen.split("\n");
    const layerLines = lines.filter((line) => /^layer\s+[0-9a-f]{12}\s/.test(line));
    assert.equal(layerLines.length, fixture.diffIds.length, `one line per layer:\n${screen}`);
    for (const line of layerLines) assert.match(line, /\[#{20}\] .*uploaded$/);
    assert.equal(lines.filter((line) => line.startsWith("config ")).length, 1, screen);
    assert.equal(lines.filter((line) => line.startsWith("total ")).length, 1, screen);
    assert.match(screen, /^total .*\[#{20}\]/m);
    assert.equal(lines.filter((line) => line.startsWith("Pushing ")).length, 1, screen);
    assert.match(screen, /^Pushing .* → http:\/\/.*\/tty\/app:1$/m);
    assert.match(screen, /^tagged .*\/tty\/app:1$/m);
    assert.match(screen, /^pushed .*\/tty\/app:1 in .*: 4 uploaded/m);
    assert.match(screen, new RegExp(`^${registry.host}/tty/app@sha256:[0-9a-f]{64}$`, "m"));

    // How it got there: several frames, each one erasing the last (cursor up, clear to the end
    // of the screen) and clearing the rest of every line it draws.
    const frames = count(written, /total \S+/g);
    assert.ok(
      frames >= 2,
      `more than one frame was drawn (${frames}):\n${JSON.stringify(written)}`,
    );
    const erasures = count(written, new RegExp(`${ESC}\\[\\d+A\r${ESC}\\[0J`, "g"));
    assert.ok(erasures >= frames - 1, `each frame after the first erases the one before it`);
    assert.ok(written.includes(`${ESC}[K`), "drawn lines clear the rest of the line");

    // NO_COLOR: the attributed capture shows no colour or text attributes.
    assert.ok(attributedScreen.includes("tagged "), "the attributed capture shows the screen");
    assert.ok(
      !attributedScreen.includes(ESC),
      `no attributes:\n${JSON.stringify(attributedScreen)}`,
    );
  } finally {
    await registry.stop();
  }
});

Deno.test("sync in a terminal: one row per LIST line redrawn in place, its final status on screen once, then the summary and the table", async () => {
  const fixtures = await sharedFixtures();
  const registry = await startRegistry();
  try {
    await using work = await tempDir();
    await using cache = await tempDir();
    await Deno.copyFile(fixtures["docker-archive"].path, join(work.path, "app.tar"));
    await Deno.copyFile(fixtures["oci-archive"].path, join(work.path, "oci.tar"));
    const list = join(work.path, "images.txt");
    await Deno.writeTextFile(
      list,
      [
        "# two archives and a source that is not there",
        "./app.tar",
        `./oci.tar => ${registry.host}/tty/oci:1`,
        `${registry.host}/nowhere/gone:1`,
      ].join("\n"),
    );
    const { screen, written } = await runInTerminal(
      [
        Deno.execPath(),
        ...["run", "-A", "main.ts", "sync", "--from", list, "--to", `${registry.host}/tty`],
      ],
      { DOCKER_PUSHER_CACHE_DIR: cache.path, TERM: "xterm-256color", NO_COLOR: "1" },
    );
    assert.match(screen, /EXIT=6/, screen);
    const lines = screen.split("\n");
    const once = (pattern: RegExp): void =>
      assert.equal(lines.filter((line) => pattern.test(line)).length, 1, `${pattern}:\n${screen}`);
    once(new RegExp(`^Syncing ${list} → ${registry.host}/tty$`));
    once(/^2 done {14}.*app\.tar → .*\/tty\/library\/app:v1$/);
    once(/^3 done {14}.*oci\.tar → .*\/tty\/oci:1$/);
    // Cut at the terminal's width.
    once(/^4 failed {12}.*nowhere\/gone:1 → .*\/tty\/nowhere\/gone:1: the source /);
    once(/^3 of 3 lines finished: 2 done, 0 unchanged, 1 failed/);
    once(/^synced 3 lines in .*: 2 transferred \(.* sent\), 0 unchanged, 1 failed$/);
    once(/^LINE\s+SOURCE\s+TARGET\s+STATUS\s+DIGEST OR ERROR$/);
    once(new RegExp(`^error: ${list}:4: ${registry.host}/nowhere/gone:1: `));
    assert.equal(lines.filter((line) => /^layer /.test(line)).length, 0, "no blob lines");

    // Frames were redrawn in place: each after the first erases the one before it.
    const frames = count(written, /lines finished: /g);
    assert.ok(frames >= 2, `more than one frame (${frames}):\n${JSON.stringify(written)}`);
    const erasures = count(written, new RegExp(`${ESC}\\[\\d+A\r${ESC}\\[0J`, "g"));
    assert.ok(erasures >= frames - 1, "each frame after the first erases the one before it");
  } finally {
    await registry.stop();
  }
});
