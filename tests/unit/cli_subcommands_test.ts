/**
 * The subcommands: the flat form and `push` parse to the same push; `pull` and `copy` take the
 * shared flags from the one table (with their env variables) plus their own; `--help` lists the
 * subcommands, and each subcommand's help shows its flags only.
 */

import assert from "node:assert/strict";
import { type CommandLine, parseCommandLine } from "../../lib/cli/args.ts";
import { PusherError } from "../../lib/errors.ts";
import { VERSION } from "../../lib/version.ts";

function parse(argv: string[], env: Record<string, string> = {}): CommandLine {
  return parseCommandLine(argv, env, VERSION);
}

function usageError(argv: string[], pattern: RegExp): void {
  assert.throws(() => parse(argv), (error) => {
    assert.ok(error instanceof PusherError, String(error));
    assert.equal(error.kind, "usage");
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("the flat form and `push` give the same push", () => {
  const flags = ["-r", "localhost:5000/app:1", "-f", "app.tar", "--max-concurrent", "2", "--json"];
  const flat = parse(flags);
  const sub = parse(["push", ...flags]);
  assert.equal(flat.action, "push");
  assert.deepEqual(sub, flat);
});

Deno.test("pull: several sources, -o, repeated --platform and the shared flags", () => {
  const command = parse([
    "pull",
    "nginx",
    "localhost:5000/team/app@sha256:" + "a".repeat(64),
    "-o",
    "images.tar",
    "--platform",
    "linux/amd64",
    "--platform",
    "linux/arm64/v8",
    "-u",
    "me",
    "-p",
    "secret",
    "--max-concurrent",
    "8",
    "--retry-attempts",
    "0",
    "--skip-tls",
    "--dry-run",
  ]);
  assert.equal(command.action, "pull");
  if (command.action !== "pull") return;
  assert.deepEqual(command.options, {
    sources: ["nginx", "localhost:5000/team/app@sha256:" + "a".repeat(64)],
    output: "images.tar",
    platforms: ["linux/amd64", "linux/arm64/v8"],
    credentials: { username: "me", password: "secret" },
    timeoutSeconds: 7200,
    stallTimeoutSeconds: 60,
    maxConcurrent: 8,
    retryAttempts: 0,
    skipTls: true,
    caCertFiles: [],
    dryRun: true,
  });
  assert.equal(command.passwordOnCommandLine, true);
});

Deno.test("pull reads its flags from DOCKER_PUSHER_* too; the flag wins", () => {
  const command = parse(["pull", "app", "--max-concurrent", "3"], {
    DOCKER_PUSHER_OUTPUT: "from-env.tar",
    DOCKER_PUSHER_PLATFORM: "linux/amd64,linux/arm64",
    DOCKER_PUSHER_MAX_CONCURRENT: "9",
    DOCKER_PUSHER_QUIET: "yes",
  });
  assert.equal(command.action, "pull");
  if (command.action !== "pull") return;
  assert.equal(command.options.output, "from-env.tar");
  assert.deepEqual(command.options.platforms, ["linux/amd64", "linux/arm64"]);
  assert.equal(command.options.maxConcurrent, 3);
  assert.equal(command.output.quiet, true);
});

Deno.test("pull refuses a missing source, a missing -o, -o - with --json, and push-only flags", () => {
  usageError(["pull", "-o", "x.tar"], /missing SOURCE/);
  usageError(["pull", "app"], /missing --output/);
  usageError(["pull", "app", "-o", "-", "--json"], /--output - and --json/);
  usageError(["pull", "app", "-o", "x.tar", "--compression", "zstd"], /unknown option/);
  usageError(["pull", "app", "-o", "x.tar", "-r", "host/app:1"], /unknown option/);
});

Deno.test("copy: source, target, and separate source credentials", () => {
  const command = parse([
    "copy",
    "src.test/app:1",
    "dst.test/app:1",
    "--src-username",
    "reader",
    "--src-password",
    "s3cret",
    "-u",
    "writer",
    "-p",
    "other",
    "--platform",
    "linux/amd64",
  ]);
  assert.equal(command.action, "copy");
  if (command.action !== "copy") return;
  assert.equal(command.options.source, "src.test/app:1");
  assert.equal(command.options.target, "dst.test/app:1");
  assert.deepEqual(command.options.sourceCredentials, { username: "reader", password: "s3cret" });
  assert.deepEqual(command.options.credentials, { username: "writer", password: "other" });
  assert.deepEqual(command.options.platforms, ["linux/amd64"]);
  usageError(["copy", "a/b:1"], /missing required argument/);
  usageError(["copy", "a/b:1", "c/d:1", "--src-password", "x"], /--src-password needs/);
});

Deno.test("--help lists the subcommands; each subcommand's help shows its own flags", () => {
  const main = parse(["--help"]);
  assert.equal(main.action, "help");
  if (main.action !== "help") return;
  for (const name of ["push [options]", "pull [options] [source...]", "copy [options]"]) {
    assert.ok(main.text.includes(name), `main help lists ${name}`);
  }
  const pull = parse(["pull", "--help"]);
  assert.equal(pull.action, "help");
  if (pull.action !== "help") return;
  assert.match(pull.text, /-o, --output <path>/);
  assert.match(pull.text, /cannot resume/);
  assert.match(pull.text, /--platform/);
  assert.match(pull.text, /--max-concurrent/);
  assert.match(pull.text, /DOCKER_PUSHER_OUTPUT/);
  assert.doesNotMatch(pull.text, /--compression|--repository-url|--src-username/);
  const copy = parse(["copy", "--help"]);
  assert.equal(copy.action, "help");
  if (copy.action !== "help") return;
  assert.match(copy.text, /--src-username/);
  assert.doesNotMatch(copy.text, /--output|--file/);
});
