/**
 * The code standard, enforced: formatting, lint, type checks of every file and of the JSDoc
 * examples, complete JSDoc on the library API (`deno task ok` runs the same checks by hand), and
 * failures thrown as the project's `PusherError`, never a bare `Error`.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { REPO_ROOT } from "../helpers/cli.ts";

async function deno(args: string[]): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

Deno.test("deno fmt --check finds nothing to change", async () => {
  const { code, output } = await deno(["fmt", "--check"]);
  assert.equal(code, 0, output);
});

Deno.test("deno lint is clean", async () => {
  const { code, output } = await deno(["lint"]);
  assert.equal(code, 0, output);
});

Deno.test("every file type-checks under the strict options", async () => {
  const { code, output } = await deno(["check", "main.ts", "lib/", "scripts/", "tests/"]);
  assert.equal(code, 0, output);
});

Deno.test("deno doc --lint: the library API is fully documented", async () => {
  const { code, output } = await deno(["doc", "--lint", "lib/mod.ts"]);
  assert.equal(code, 0, output);
});

Deno.test("the JSDoc examples in lib/ type-check", async () => {
  const { code, output } = await deno(["check", "--doc-only", "lib/"]);
  assert.equal(code, 0, output);
});

/**
 * Files that throw a bare `Error` only to catch it a line later and turn it into a message (a
 * credentials file that is not a JSON object; a cache file of another version or registry).
 */
const CAUGHT_AT_ONCE: ReadonlySet<string> = new Set([
  "lib/credentials/docker_config.ts",
  "lib/state/cache_dir.ts",
]);

/** The `.ts` files under `dir`, as paths relative to the repository root. */
async function sourceFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...await sourceFiles(path));
    else if (entry.name.endsWith(".ts")) files.push(relative(REPO_ROOT, path));
  }
  return files;
}

Deno.test("lib/ throws PusherError, not a bare Error (but where it is caught at once)", async () => {
  const offenders: string[] = [];
  for (const file of await sourceFiles(join(REPO_ROOT, "lib"))) {
    if (CAUGHT_AT_ONCE.has(file)) continue;
    const lines = (await Deno.readTextFile(join(REPO_ROOT, file))).split("\n");
    lines.forEach((line, index) => {
      if (line.includes("throw new Error(")) offenders.push(`${file}:${index + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, [], 'throw new PusherError("internal", …) for an invariant');
  for (const file of CAUGHT_AT_ONCE) {
    const text = await Deno.readTextFile(join(REPO_ROOT, file));
    assert.ok(text.includes("throw new Error("), `${file} is still on the allow-list for a reason`);
  }
});
