import assert from "node:assert/strict";
import { parseCommandLine } from "../../lib/cli/args.ts";
import { longName } from "../../lib/cli/flags.ts";
import { EXIT_CODES, PusherError } from "../../lib/errors.ts";

const VERSION = "9.9.9";

function parsePush(argv: string[], env: Record<string, string> = {}) {
  const command = parseCommandLine(argv, env, VERSION);
  if (command.action !== "push") throw new Error(`expected a push, got ${command.action}`);
  return command;
}

function usageError(argv: string[], env: Record<string, string> = {}): PusherError {
  try {
    parseCommandLine(argv, env, VERSION);
  } catch (error) {
    assert.ok(error instanceof PusherError);
    assert.equal(error.kind, "usage");
    assert.equal(error.exitCode, EXIT_CODES.usage);
    return error;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

Deno.test("the seed's flat form parses with its defaults", () => {
  const command = parsePush([
    "-r",
    "https://registry.example.com/project/app:v1.0",
    "-f",
    "image.tar",
    "-u",
    "USER",
    "-p",
    "PASS",
  ]);
  assert.deepEqual(command.options.targets, ["https://registry.example.com/project/app:v1.0"]);
  assert.equal(command.options.file, "image.tar");
  assert.deepEqual(command.options.credentials, { username: "USER", password: "PASS" });
  assert.equal(command.options.timeoutSeconds, 7200);
  assert.equal(command.options.largeLayerThreshold, 1073741824);
  assert.equal(command.options.retryAttempts, 3);
  assert.equal(command.options.compression, "gzip");
  assert.equal(command.passwordOnCommandLine, true);
});

Deno.test("environment variables are defaults and flags win", () => {
  const env = {
    DOCKER_PUSHER_MAX_CONCURRENT: "7",
    DOCKER_PUSHER_SKIP_TLS: "yes",
    DOCKER_PUSHER_VERBOSE: "0",
    DOCKER_PUSHER_FILE: "from-env.tar",
    DOCKER_PUSHER_REPOSITORY_URL: "localhost:5000/a:1",
    DOCKER_PUSHER_USERNAME: "envuser",
    DOCKER_PUSHER_PASSWORD: "envpass",
  };
  const fromEnv = parsePush([], env);
  assert.equal(fromEnv.options.maxConcurrent, 7);
  assert.equal(fromEnv.options.skipTls, true);
  assert.equal(fromEnv.output.verbose, false);
  assert.equal(fromEnv.options.file, "from-env.tar");
  assert.deepEqual(fromEnv.options.credentials, { username: "envuser", password: "envpass" });
  assert.equal(fromEnv.passwordOnCommandLine, false);
  const flagWins = parsePush(["--max-concurrent", "2", "-f", "cli.tar"], env);
  assert.equal(flagWins.options.maxConcurrent, 2);
  assert.equal(flagWins.options.file, "cli.tar");
});

Deno.test("-r may be repeated", () => {
  const command = parsePush(["-f", "a.tar", "-r", "h:5000/a:1", "-r", "h:5000/a:2"]);
  assert.deepEqual(command.options.targets, ["h:5000/a:1", "h:5000/a:2"]);
});

Deno.test("bad values are usage errors that name the flag or variable", () => {
  assert.match(
    usageError(["-f", "a", "-r", "b", "--max-concurrent", "x"]).message,
    /--max-concurrent/,
  );
  assert.match(usageError(["-f", "a", "-r", "b", "--max-concurrent", "0"]).message, /at least 1/);
  assert.match(usageError(["-f", "a", "-r", "b", "--compression", "lz4"]).message, /--compression/);
  assert.match(
    usageError(["-f", "a", "-r", "b"], { DOCKER_PUSHER_SKIP_TLS: "maybe" }).message,
    /DOCKER_PUSHER_SKIP_TLS/,
  );
  assert.match(
    usageError(["-f", "a", "-r", "b"], { DOCKER_PUSHER_TIMEOUT: "ten" }).message,
    /^DOCKER_PUSHER_TIMEOUT must be a whole number/,
  );
  assert.match(usageError(["-f", "a", "-r", "b", "--bogus"]).message, /--bogus/);
  assert.match(usageError(["-r", "b"]).message, /--file/);
  assert.match(usageError(["-f", "a"]).message, /--repository-url/);
  assert.match(usageError(["-f", "a", "-r", "b", "--quiet", "--verbose"]).message, /together/);
});

Deno.test("help lists every flag, env variables and exit codes; version is deno.json's", () => {
  const help = parseCommandLine(["--help"], {}, VERSION);
  assert.equal(help.action, "help");
  if (help.action !== "help") return;
  for (
    const flag of [
      "--file",
      "--repository-url",
      "--username",
      "--password",
      "--password-stdin",
      "--timeout",
      "--large-layer-threshold",
      "--max-concurrent",
      "--retry-attempts",
      "--skip-tls",
      "--ca-cert",
      "--verbose",
      "--quiet",
      "--json",
      "--dry-run",
      "--skip-existing",
      "--force-upload",
      "--compression",
      "--image",
      "--mount-from",
      "--version",
    ]
  ) assert.ok(help.text.includes(flag), `help mentions ${flag}`);
  assert.match(help.text, /DOCKER_PUSHER_MAX_CONCURRENT/);
  for (const code of Object.values(EXIT_CODES)) {
    assert.match(help.text, new RegExp(`^\\s+${code}\\s`, "m"));
  }
  const version = parseCommandLine(["--version"], {}, VERSION);
  assert.deepEqual(version, { action: "version", text: VERSION });
});

Deno.test("--format and --attestations default to auto and keep; docker takes gzip only", () => {
  const base = ["-f", "a.tar", "-r", "h:5000/a:1"];
  const defaults = parsePush(base);
  assert.equal(defaults.options.format, "auto");
  assert.equal(defaults.options.attestations, "keep");
  const conflict = usageError([...base, "--format", "docker", "--compression", "zstd"]);
  assert.match(conflict.message, /--format docker and --compression zstd cannot be used together/);
  assert.match(conflict.hint ?? "", /gzip layers only/);
  const envConflict = usageError(base, {
    DOCKER_PUSHER_FORMAT: "docker",
    DOCKER_PUSHER_COMPRESSION: "none",
  });
  assert.match(envConflict.message, /^DOCKER_PUSHER_FORMAT docker and DOCKER_PUSHER_COMPRESSION/);
  const gzip = parsePush([...base, "--format", "docker", "--compression", "gzip"]);
  assert.equal(gzip.options.format, "docker");
});

Deno.test("a flag table row without a long name is an internal error, not a usage error", () => {
  assert.equal(
    longName({ flags: "-t, --timeout <seconds>", description: "", kind: "number", commands: [] }),
    "timeout",
  );
  assert.throws(
    () => longName({ flags: "-x <value>", description: "", kind: "string", commands: [] }),
    (error: unknown) =>
      error instanceof PusherError && error.kind === "internal" &&
      error.message === "flag without a long name: -x <value>",
  );
});
