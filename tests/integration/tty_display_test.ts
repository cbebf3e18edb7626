/**
 * The live terminal display, driven in a real terminal (tmux) and read back with capture-pane:
 * one line per blob with a bar and its state, an overall line, log lines above the display, the
 * closing summary, and the digest line for scripts — and no frame drawn twice.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/cli.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

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

/** Runs a command in a detached 120×30 tmux session and returns the screen once it exited. */
export async function runInTerminal(
  command: string[],
  env: Record<string, string>,
): Promise<string> {
  await using socketDir = await tempDir("pusher-tmux-");
  const socket = join(socketDir.path, "socket");
  const exports = Object.entries(env).map(([key, value]) => `export ${key}=${shellQuote(value)};`)
    .join(" ");
  const script = `${exports} cd ${shellQuote(REPO_ROOT)}; ${command.map(shellQuote).join(" ")}; ` +
    `echo EXIT=$?; sleep 60`;
  await tmux(socket, ["new-session", "-d", "-x", "120", "-y", "30", "-s", "t", "sh", "-c", script]);
  try {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const screen = await tmux(socket, ["capture-pane", "-p", "-t", "t"]);
      if (/EXIT=\d+/.test(screen)) return screen;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error("the command did not finish in the terminal within 60 s");
  } finally {
    await tmux(socket, ["kill-server"]).catch(() => {});
  }
}

Deno.test("the terminal display shows blobs, bars, the total and the result", async () => {
  const fixture = (await sharedFixtures())["docker-archive"];
  const registry = await startRegistry();
  try {
    await using cache = await tempDir();
    const screen = await runInTerminal(
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
    const lines = screen.split("\n");
    const layerLines = lines.filter((line) => /^layer\s+[0-9a-f]{12}\s/.test(line));
    assert.equal(layerLines.length, fixture.diffIds.length, `one line per layer:\n${screen}`);
    for (const line of layerLines) assert.match(line, /\[#{20}\] .*uploaded$/);
    assert.equal(lines.filter((line) => line.startsWith("config ")).length, 1, screen);
    assert.equal(lines.filter((line) => line.startsWith("total ")).length, 1, screen);
    assert.match(screen, /^total .*\[#{20}\]/m);
    assert.match(screen, /^Pushing .* → http:\/\/.*\/tty\/app:1$/m);
    assert.match(screen, /^tagged .*\/tty\/app:1$/m);
    assert.match(screen, /^pushed .*\/tty\/app:1 in .*: 4 uploaded/m);
    assert.match(screen, new RegExp(`^${registry.host}/tty/app@sha256:[0-9a-f]{64}$`, "m"));
    assert.ok(!screen.includes("\x1b"), "no raw escape codes left on screen");
  } finally {
    await registry.stop();
  }
});
