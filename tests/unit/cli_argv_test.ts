/**
 * The word splitter of the command line and the help layout: the flag forms a user types, values
 * that look like flags, `--`, help winning over a mistake, and descriptions wrapped under their
 * column.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseWords } from "../../lib/cli/argv.ts";
import { flagsOf } from "../../lib/cli/flags.ts";
import { formatHelp, wrapText } from "../../lib/cli/help_layout.ts";
import { PusherError } from "../../lib/errors.ts";

const PUSH = flagsOf("push");

function usageMessage(words: string[]): string {
  try {
    parseWords(words, PUSH);
  } catch (error) {
    assert.ok(error instanceof PusherError);
    assert.equal(error.kind, "usage");
    return error.message;
  }
  throw new Error(`expected a usage error for ${words.join(" ")}`);
}

Deno.test("values come as --name value, --name=value, -x value and -xvalue", () => {
  const parsed = parseWords(
    ["--file", "a.tar", "--repository-url=h/a:1", "-r", "h/a:2", "-rh/a:3", "-uci"],
    PUSH,
  );
  assert.equal(parsed.values.get("file"), "a.tar");
  assert.deepEqual(parsed.values.get("repository-url"), ["h/a:1", "h/a:2", "h/a:3"]);
  assert.equal(parsed.values.get("username"), "ci");
  assert.deepEqual(parsed.operands, []);
});

Deno.test("a flag that takes a value takes the next word, even one starting with a dash", () => {
  const parsed = parseWords(["-p", "-secret", "--timeout", "--5"], PUSH);
  assert.equal(parsed.values.get("password"), "-secret");
  assert.equal(parsed.values.get("timeout"), "--5");
});

Deno.test("booleans take no value; the last of a repeated text flag wins", () => {
  const parsed = parseWords(["--no-cache", "--json", "-f", "a", "-f", "b"], PUSH);
  assert.equal(parsed.values.get("no-cache"), true);
  assert.equal(parsed.values.get("json"), true);
  assert.equal(parsed.values.get("file"), "b");
  assert.match(usageMessage(["--json=yes"]), /^unknown option '--json=yes'$/);
});

Deno.test("unknown flags and missing values are usage errors naming them", () => {
  assert.match(usageMessage(["--bogus"]), /^unknown option '--bogus'$/);
  assert.match(usageMessage(["-x"]), /^unknown option '-x'$/);
  assert.match(usageMessage(["-f"]), /^option '-f, --file <path>' argument missing$/);
});

Deno.test("after -- every word is an operand; stopAtOperand leaves the rest unread", () => {
  const plain = parseWords(["a", "--", "-b", "--json"], PUSH);
  assert.deepEqual(plain.operands, ["a", "-b", "--json"]);
  assert.equal(plain.values.size, 0);
  const stopped = parseWords(["--json", "sync", "--bogus"], PUSH, { stopAtOperand: true });
  assert.deepEqual(stopped.rest, ["sync", "--bogus"]);
  assert.equal(stopped.values.get("json"), true);
  assert.equal(parseWords(["-"], PUSH).operands[0], "-");
});

Deno.test("help wins over a mistake; --version is read only where allowed", () => {
  assert.equal(parseWords(["--bogus", "-h"], PUSH).help, true);
  assert.equal(parseWords(["--version"], PUSH, { version: true }).version, true);
  assert.match(usageMessage(["--version"]), /unknown option '--version'/);
  assert.throws(() => parseWords(["--bogus", "--", "-h"], PUSH), PusherError);
});

Deno.test("help rows wrap under their description column within 80 columns", () => {
  assert.deepEqual(wrapText("aa bb cc", 5), ["aa bb", "cc"]);
  const text = formatHelp({
    usage: "tool x [options]",
    description: "does x",
    arguments: [{ term: "file", description: "the file" }],
    options: [{ term: "-f, --flag <v>", description: "word ".repeat(30).trim() }],
    commands: [],
  });
  const lines = text.split("\n");
  assert.equal(lines[0], "Usage: tool x [options]");
  assert.ok(lines.includes("  file            the file"));
  const rows = lines.slice(lines.indexOf("Options:") + 1).filter((line) => line !== "");
  assert.ok(rows.length > 1);
  assert.ok(rows[0]?.startsWith("  -f, --flag <v>  word word"));
  for (const row of rows) assert.ok(row.length <= 80, row);
  for (const row of rows.slice(1)) assert.match(row, /^ {18}word/);
});
