/**
 * The code standard, enforced: formatting, lint, type checks of every file, and complete JSDoc
 * on the library API (`deno task ok` runs the same checks by hand).
 */

import assert from "node:assert/strict";
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
