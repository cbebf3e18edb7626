/**
 * `deno task test`: installs the tools the tests need (when it can), runs the whole suite
 * against real parts, and ends with one line `N passed, N failed`.
 *
 * @module
 */

import { ensureRequirements } from "./test_requirements.ts";

/** Counts from `deno test`'s closing summary (`ok | 12 passed | 0 failed`). */
export function parseDenoSummary(output: string): { passed: number; failed: number } | undefined {
  const pattern = /(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/g;
  let last: RegExpExecArray | undefined;
  for (const match of output.matchAll(pattern)) last = match;
  if (!last?.[1] || !last[2]) return undefined;
  return { passed: Number(last[1]), failed: Number(last[2]) };
}

async function main(): Promise<number> {
  const problem = await ensureRequirements((line) => console.error(line));
  if (problem) {
    console.error(`error: ${problem}`);
    console.log("0 passed, 1 failed");
    return 1;
  }
  const filter = Deno.args;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-prompt", ...(filter.length > 0 ? filter : ["tests/"])],
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  const decoder = new TextDecoder();
  let tail = "";
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-20_000);
  }
  const status = await child.status;
  const summary = parseDenoSummary(tail);
  if (!summary) {
    console.log("0 passed, 1 failed");
    console.error("error: deno test printed no summary");
    return 1;
  }
  console.log(`${summary.passed} passed, ${summary.failed} failed`);
  return status.success && summary.failed === 0 && summary.passed > 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
