/**
 * Every `DOCKER_PUSHER_*` variable the help names, one table row each: the variable sets its
 * flag's value, the flag on the command line wins over it, and a value the flag would refuse is
 * refused under the variable's own name (never under the flag's).
 */

import assert from "node:assert/strict";
import { type CommandLine, parseCommandLine } from "../../lib/cli/args.ts";
import { EXIT_CODES, PusherError } from "../../lib/errors.ts";

type PushCommand = Extract<CommandLine, { action: "push" }>;

const VERSION = "0.0.0-test";
const FILE_ARGS = ["-f", "image.tar"];
const TARGET_ARGS = ["-r", "registry.test:5000/app:1"];

interface Row {
  /** The variable. */
  variable: string;
  /** A value the variable can hold. */
  envValue: string;
  /** The same setting on the command line, with a different value. */
  flagArgs: string[];
  /** What the setting became. */
  read: (command: PushCommand) => unknown;
  /** `read` when only the variable is set. */
  fromEnv: unknown;
  /** `read` when the flag is given too. */
  fromFlag: unknown;
  /** Other variables the row needs (e.g. a password needs a user name). */
  alongside?: Record<string, string>;
  /** A value the setting refuses, and the message that must follow the variable's name. */
  invalid?: { value: string; message: string };
}

function wholeNumberRow(
  variable: string,
  flag: string,
  read: (command: PushCommand) => number,
): Row {
  return {
    variable,
    envValue: "7",
    flagArgs: [flag, "9"],
    read,
    fromEnv: 7,
    fromFlag: 9,
    invalid: { value: "bogus", message: 'must be a whole number, got "bogus"' },
  };
}

function booleanRow(variable: string, flag: string, read: (command: PushCommand) => boolean): Row {
  // A boolean flag can only say "on": it wins over a variable that says "off".
  return {
    variable,
    envValue: "off",
    flagArgs: [flag],
    read,
    fromEnv: false,
    fromFlag: true,
    invalid: { value: "maybe", message: '="maybe" is not a boolean' },
  };
}

const ROWS: readonly Row[] = [
  {
    variable: "DOCKER_PUSHER_FILE",
    envValue: "from-env.tar",
    flagArgs: ["-f", "from-flag.tar"],
    read: (command) => command.options.file,
    fromEnv: "from-env.tar",
    fromFlag: "from-flag.tar",
  },
  {
    variable: "DOCKER_PUSHER_CONTAINERD_ROOT",
    envValue: "/env/containerd",
    flagArgs: ["--containerd-root", "/flag/containerd"],
    read: (command) => [command.options.containerdRoot, command.options.file],
    fromEnv: ["/env/containerd", "containerd:/env/containerd"],
    fromFlag: ["/flag/containerd", "containerd:/flag/containerd"],
  },
  {
    variable: "DOCKER_PUSHER_NAMESPACE",
    envValue: "k8s.io",
    flagArgs: ["--namespace", "moby"],
    read: (command) => command.options.namespace,
    fromEnv: "k8s.io",
    fromFlag: "moby",
    alongside: { DOCKER_PUSHER_CONTAINERD_ROOT: "/var/lib/containerd" },
  },
  {
    variable: "DOCKER_PUSHER_REPOSITORY_URL",
    envValue: "env.test/app:1,env.test/app:2",
    flagArgs: ["-r", "flag.test/app:1"],
    read: (command) => command.options.targets,
    fromEnv: ["env.test/app:1", "env.test/app:2"],
    fromFlag: ["flag.test/app:1"],
  },
  {
    variable: "DOCKER_PUSHER_USERNAME",
    envValue: "env-user",
    flagArgs: ["-u", "flag-user"],
    read: (command) => command.username,
    fromEnv: "env-user",
    fromFlag: "flag-user",
  },
  {
    variable: "DOCKER_PUSHER_PASSWORD",
    envValue: "env-pass",
    flagArgs: ["-p", "flag-pass"],
    read: (command) => {
      const credentials = command.options.credentials;
      return credentials && "password" in credentials ? credentials.password : undefined;
    },
    fromEnv: "env-pass",
    fromFlag: "flag-pass",
    alongside: { DOCKER_PUSHER_USERNAME: "user" },
  },
  booleanRow("DOCKER_PUSHER_PASSWORD_STDIN", "--password-stdin", (c) => c.passwordStdin),
  wholeNumberRow("DOCKER_PUSHER_TIMEOUT", "--timeout", (c) => c.options.timeoutSeconds),
  wholeNumberRow(
    "DOCKER_PUSHER_STALL_TIMEOUT",
    "--stall-timeout",
    (c) => c.options.stallTimeoutSeconds,
  ),
  wholeNumberRow(
    "DOCKER_PUSHER_LARGE_LAYER_THRESHOLD",
    "--large-layer-threshold",
    (c) => c.options.largeLayerThreshold,
  ),
  wholeNumberRow(
    "DOCKER_PUSHER_MAX_CONCURRENT",
    "--max-concurrent",
    (c) => c.options.maxConcurrent,
  ),
  wholeNumberRow(
    "DOCKER_PUSHER_RETRY_ATTEMPTS",
    "--retry-attempts",
    (c) => c.options.retryAttempts,
  ),
  {
    variable: "DOCKER_PUSHER_COMPRESSION",
    envValue: "zstd",
    flagArgs: ["--compression", "none"],
    read: (command) => command.options.compression,
    fromEnv: "zstd",
    fromFlag: "none",
    invalid: { value: "lz4", message: 'must be none, gzip or zstd, got "lz4"' },
  },
  {
    variable: "DOCKER_PUSHER_FORMAT",
    envValue: "docker",
    flagArgs: ["--format", "oci"],
    read: (command) => command.options.format,
    fromEnv: "docker",
    fromFlag: "oci",
    invalid: { value: "v2s2", message: 'must be auto, oci or docker, got "v2s2"' },
  },
  {
    variable: "DOCKER_PUSHER_ATTESTATIONS",
    envValue: "drop",
    flagArgs: ["--attestations", "keep"],
    read: (command) => command.options.attestations,
    fromEnv: "drop",
    fromFlag: "keep",
    invalid: { value: "none", message: 'must be keep or drop, got "none"' },
  },
  {
    variable: "DOCKER_PUSHER_IMAGE",
    envValue: "env/app:1",
    flagArgs: ["--image", "flag/app:1"],
    read: (command) => command.options.image,
    fromEnv: "env/app:1",
    fromFlag: "flag/app:1",
  },
  {
    variable: "DOCKER_PUSHER_MOUNT_FROM",
    envValue: "env/base",
    flagArgs: ["--mount-from", "flag/base"],
    read: (command) => command.options.mountFrom,
    fromEnv: "env/base",
    fromFlag: "flag/base",
  },
  booleanRow("DOCKER_PUSHER_SKIP_TLS", "--skip-tls", (c) => c.options.skipTls),
  {
    variable: "DOCKER_PUSHER_CA_CERT",
    envValue: "env-a.pem, env-b.pem",
    flagArgs: ["--ca-cert", "flag.pem"],
    read: (command) => command.options.caCertFiles,
    fromEnv: ["env-a.pem", "env-b.pem"],
    fromFlag: ["flag.pem"],
  },
  booleanRow("DOCKER_PUSHER_DRY_RUN", "--dry-run", (c) => c.options.dryRun),
  {
    // The default behaviour, kept for compatibility: on or off, blobs the registry has are skipped.
    ...booleanRow("DOCKER_PUSHER_SKIP_EXISTING", "--skip-existing", (c) => c.options.forceUpload),
    envValue: "on",
    fromFlag: false,
  },
  booleanRow("DOCKER_PUSHER_FORCE_UPLOAD", "--force-upload", (c) => c.options.forceUpload),
  booleanRow("DOCKER_PUSHER_NO_CACHE", "--no-cache", (c) => c.options.noCache),
  booleanRow("DOCKER_PUSHER_JSON", "--json", (c) => c.output.json),
  booleanRow("DOCKER_PUSHER_VERBOSE", "--verbose", (c) => c.output.verbose),
  booleanRow("DOCKER_PUSHER_QUIET", "--quiet", (c) => c.output.quiet),
];

/** Variables of `push --all`, whose command is not a plain push: see `cli_bundle_test.ts`. */
const BUNDLE_VARIABLES = ["DOCKER_PUSHER_ALL", "DOCKER_PUSHER_FLATTEN"];

/** Rows whose push reads something other than `-f` (so `-f` is left out). */
const SOURCE_VARIABLES = [
  "DOCKER_PUSHER_FILE",
  "DOCKER_PUSHER_CONTAINERD_ROOT",
  "DOCKER_PUSHER_NAMESPACE",
];

/** The base arguments a row adds its own to: `-f` and `-r`, unless the row is about them. */
function baseArgs(row: Row): string[] {
  return [
    ...(SOURCE_VARIABLES.includes(row.variable) ? [] : FILE_ARGS),
    ...(row.variable === "DOCKER_PUSHER_REPOSITORY_URL" ? [] : TARGET_ARGS),
  ];
}

function parsePush(argv: string[], env: Record<string, string>): PushCommand {
  const command = parseCommandLine(argv, env, VERSION);
  if (command.action !== "push") throw new Error(`expected a push, got ${command.action}`);
  return command;
}

function usageMessage(argv: string[], env: Record<string, string>): string {
  try {
    parseCommandLine(argv, env, VERSION);
  } catch (error) {
    assert.ok(error instanceof PusherError, `expected a PusherError, got ${error}`);
    assert.equal(error.kind, "usage");
    assert.equal(error.exitCode, EXIT_CODES.usage);
    return error.message;
  }
  throw new Error(`expected a usage error for ${JSON.stringify(env)}`);
}

Deno.test("the table has a row for every DOCKER_PUSHER_* variable the help names", () => {
  const help = parseCommandLine(["--help"], {}, VERSION);
  assert.equal(help.action, "help");
  if (help.action !== "help") return;
  const named = new Set(help.text.match(/DOCKER_PUSHER_[A-Z_]+(?=\])/g));
  assert.ok(named.size >= 20, `help names ${named.size} variables`);
  assert.deepEqual(
    [...named].sort(),
    [...ROWS.map((row) => row.variable), ...BUNDLE_VARIABLES].sort(),
  );
});

for (const row of ROWS) {
  Deno.test(`${row.variable}: sets the value; the flag wins over it`, () => {
    const env = { ...row.alongside, [row.variable]: row.envValue };
    assert.deepEqual(row.read(parsePush(baseArgs(row), env)), row.fromEnv, "from the variable");
    const withFlag = parsePush([...baseArgs(row), ...row.flagArgs], env);
    assert.deepEqual(row.read(withFlag), row.fromFlag, "the flag wins");
  });

  const invalid = row.invalid;
  if (invalid === undefined) continue;
  Deno.test(`${row.variable}: an invalid value is refused under the variable's name`, () => {
    const env = { ...row.alongside, [row.variable]: invalid.value };
    const message = usageMessage(baseArgs(row), env);
    assert.ok(message.startsWith(`${row.variable}`), message);
    assert.ok(message.includes(invalid.message), message);
    assert.ok(!message.includes("--"), `the flag is not named: ${message}`);
    // The flag wins: its valid value means the variable is not read at all.
    assert.deepEqual(row.read(parsePush([...baseArgs(row), ...row.flagArgs], env)), row.fromFlag);
  });
}

Deno.test("a bad flag value is named as the flag even when the variable is set", () => {
  const message = usageMessage([...FILE_ARGS, ...TARGET_ARGS, "--max-concurrent", "x"], {
    DOCKER_PUSHER_MAX_CONCURRENT: "3",
  });
  assert.equal(message, '--max-concurrent must be a whole number, got "x"');
  assert.equal(
    usageMessage([...FILE_ARGS, ...TARGET_ARGS], { DOCKER_PUSHER_RETRY_ATTEMPTS: "-1" }),
    'DOCKER_PUSHER_RETRY_ATTEMPTS must be a whole number, got "-1"',
  );
  assert.equal(
    usageMessage([...FILE_ARGS, ...TARGET_ARGS], { DOCKER_PUSHER_MAX_CONCURRENT: "0" }),
    "DOCKER_PUSHER_MAX_CONCURRENT must be at least 1, got 0",
  );
});

Deno.test("conflicts name each side the way the user set it", () => {
  const base = [...FILE_ARGS, ...TARGET_ARGS];
  assert.equal(
    usageMessage([...base, "--verbose"], { DOCKER_PUSHER_QUIET: "1" }),
    "DOCKER_PUSHER_QUIET and --verbose cannot be used together",
  );
  assert.equal(
    usageMessage(base, { DOCKER_PUSHER_FORCE_UPLOAD: "yes", DOCKER_PUSHER_DRY_RUN: "true" }),
    "DOCKER_PUSHER_FORCE_UPLOAD and DOCKER_PUSHER_DRY_RUN cannot be used together",
  );
  assert.equal(
    usageMessage([...base, "--password-stdin", "-u", "user"], { DOCKER_PUSHER_PASSWORD: "pw" }),
    "DOCKER_PUSHER_PASSWORD and --password-stdin cannot be used together",
  );
  assert.equal(
    usageMessage(base, { DOCKER_PUSHER_PASSWORD: "pw" }),
    "DOCKER_PUSHER_PASSWORD needs --username",
  );
});
