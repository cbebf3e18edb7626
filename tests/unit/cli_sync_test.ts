/**
 * `sync` on the command line: `--from`/`--to` and its own flags with their `DOCKER_PUSHER_*`
 * variables, the shared credential/TLS/timeout/retry flags, what it refuses, its help; and what it
 * prints when over: the outcome table and one `error:` line per failed LIST line.
 */

import assert from "node:assert/strict";
import { type CommandLine, parseCommandLine } from "../../lib/cli/args.ts";
import { failureLines, formatSyncTable } from "../../lib/cli/sync_report.ts";
import { PusherError } from "../../lib/errors.ts";
import type { SyncResult } from "../../lib/sync/sync.ts";
import { DEFAULT_SYNC_SETTINGS } from "../../lib/sync/options.ts";
import { VERSION } from "../../lib/version.ts";

type SyncCommand = Extract<CommandLine, { action: "sync" }>;

function parseSync(argv: string[], env: Record<string, string> = {}): SyncCommand {
  const command = parseCommandLine(argv, env, VERSION);
  if (command.action !== "sync") throw new Error(`expected a sync, got ${command.action}`);
  return command;
}

function usageError(argv: string[], pattern: RegExp, env: Record<string, string> = {}): void {
  assert.throws(() => parseCommandLine(argv, env, VERSION), (error) => {
    assert.ok(error instanceof PusherError, String(error));
    assert.equal(error.kind, "usage");
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("sync: --from, --to, --flatten, --parallel-images and the shared flags", () => {
  const command = parseSync([
    "sync",
    "--from",
    "images.txt",
    "--to",
    "registry.test/mirror",
    "--flatten",
    "--parallel-images",
    "5",
    "-u",
    "ci",
    "-p",
    "pw",
    "--max-concurrent",
    "2",
    "--retry-attempts",
    "0",
    "--ca-cert",
    "ca.pem",
    "--compression",
    "zstd",
    "--dry-run",
    "--json",
  ]);
  assert.deepEqual(command.options, {
    ...DEFAULT_SYNC_SETTINGS,
    from: "images.txt",
    to: "registry.test/mirror",
    flatten: true,
    parallelImages: 5,
    credentials: { username: "ci", password: "pw" },
    maxConcurrent: 2,
    retryAttempts: 0,
    skipTls: false,
    caCertFiles: ["ca.pem"],
    compression: "zstd",
    dryRun: true,
    noCache: false,
  });
  assert.equal(command.output.json, true);
  assert.equal(command.passwordOnCommandLine, true);
});

Deno.test("sync reads DOCKER_PUSHER_FROM, _TO, _FLATTEN and _PARALLEL_IMAGES; the flag wins", () => {
  const env = {
    DOCKER_PUSHER_FROM: "env.txt",
    DOCKER_PUSHER_TO: "env.test/mirror",
    DOCKER_PUSHER_FLATTEN: "yes",
    DOCKER_PUSHER_PARALLEL_IMAGES: "7",
  };
  const fromEnv = parseSync(["sync"], env).options;
  assert.equal(fromEnv.from, "env.txt");
  assert.equal(fromEnv.to, "env.test/mirror");
  assert.equal(fromEnv.flatten, true);
  assert.equal(fromEnv.parallelImages, 7);
  const flags = parseSync(
    ["sync", "--from", "a.txt", "--to", "flag.test/m", "--parallel-images", "1"],
    env,
  ).options;
  assert.equal(flags.from, "a.txt");
  assert.equal(flags.to, "flag.test/m");
  assert.equal(flags.parallelImages, 1);
  const defaults = parseSync(["sync", "--from", "a.txt", "--to", "b.test/m"]).options;
  assert.equal(defaults.flatten, false);
  assert.equal(defaults.parallelImages, DEFAULT_SYNC_SETTINGS.parallelImages);
  usageError(
    ["sync", "--from", "a", "--to", "b.test"],
    /^DOCKER_PUSHER_PARALLEL_IMAGES must be at least 1, got 0$/,
    {
      DOCKER_PUSHER_PARALLEL_IMAGES: "0",
    },
  );
  usageError(
    ["sync", "--from", "a", "--to", "b.test"],
    /^DOCKER_PUSHER_FLATTEN="maybe" is not a boolean$/,
    {
      DOCKER_PUSHER_FLATTEN: "maybe",
    },
  );
});

Deno.test("sync refuses a missing --from or --to, arguments, and other commands' flags", () => {
  usageError(["sync", "--to", "r.test/m"], /^missing --from/);
  usageError(["sync", "--from", "a.txt"], /^missing --to/);
  usageError(["sync", "--from", "a.txt", "--to", "r.test/m", "extra"], /too many arguments/);
  usageError(
    ["sync", "--from", "a", "--to", "r.test/m", "--platform", "linux/amd64"],
    /unknown option/,
  );
  usageError(["sync", "--from", "a", "--to", "r.test/m", "-r", "r.test/a:1"], /unknown option/);
  usageError(
    ["sync", "--from", "a", "--to", "r.test/m", "--compression", "lz4"],
    /--compression must be/,
  );
  usageError(["pull", "x", "-o", "x.tar", "--parallel-images", "2"], /unknown option/);
});

Deno.test("sync --help: its flags with their variables, the LIST examples, no push-only flags", () => {
  const help = parseCommandLine(["sync", "--help"], {}, VERSION);
  assert.equal(help.action, "help");
  if (help.action !== "help") return;
  for (
    const variable of [
      "DOCKER_PUSHER_FROM",
      "DOCKER_PUSHER_TO",
      "DOCKER_PUSHER_FLATTEN",
      "DOCKER_PUSHER_PARALLEL_IMAGES",
      "DOCKER_PUSHER_PASSWORD_STDIN",
      "DOCKER_PUSHER_CA_CERT",
      "DOCKER_PUSHER_RETRY_ATTEMPTS",
    ]
  ) {
    assert.ok(help.text.replace(/\s+/g, " ").includes(`[env ${variable}]`), variable);
  }
  assert.match(help.text, /^ {2}# {3}--platform=linux\/amd64,linux\/arm64 \S+$/m);
  assert.match(help.text, /^ {2}# {3}\S+ => \S+$/m);
  assert.match(help.text, /^ {2}# {3}\.\/app\.tar$/m);
  assert.match(help.text, /^ {2}docker-image-pusher sync --from images\.txt --to \S+ --dry-run$/m);
  assert.doesNotMatch(help.text, /--repository-url|--platform <|--src-username|--force-upload/);
  const main = parseCommandLine(["--help"], {}, VERSION);
  assert.ok(main.action === "help" && main.text.includes("sync [options]"));
});

const RESULT: SyncResult = {
  lines: [
    {
      line: 2,
      source: "docker.io/library/nginx:1.27",
      target: "r.test/mirror/library/nginx:1.27",
      status: "transferred",
      digest: "sha256:" + "a".repeat(64),
      bytesSent: 1024,
    },
    {
      line: 3,
      source: "/srv/app.tar",
      target: "r.test/mirror/app:1",
      status: "unchanged",
      digest: "sha256:" + "b".repeat(64),
      bytesSent: 0,
      message: "the target tag already names the source's digest",
    },
    {
      line: 5,
      source: "ghcr.io/acme/gone:1",
      target: "r.test/mirror/acme/gone:1",
      status: "failed",
      bytesSent: 0,
      error: {
        kind: "registry",
        message: "the source ghcr.io/acme/gone:1 does not exist",
        hint: "check the name",
      },
    },
  ],
  bytesSent: 1024,
  durationMs: 1200,
  dryRun: false,
};

Deno.test("the sync table: one aligned row per LIST line with its digest or error", () => {
  assert.equal(
    formatSyncTable(RESULT),
    [
      "LINE   SOURCE                         TARGET                             STATUS      DIGEST OR ERROR",
      `2      docker.io/library/nginx:1.27   r.test/mirror/library/nginx:1.27   done        sha256:${
        "a".repeat(64)
      }`,
      `3      /srv/app.tar                   r.test/mirror/app:1                unchanged   sha256:${
        "b".repeat(64)
      }`,
      "5      ghcr.io/acme/gone:1            r.test/mirror/acme/gone:1          failed      the source ghcr.io/acme/gone:1 does not exist",
      "",
    ].join("\n"),
  );
  assert.deepEqual(failureLines(RESULT, "images.txt"), [
    "error: images.txt:5: ghcr.io/acme/gone:1: the source ghcr.io/acme/gone:1 does not exist " +
    "(check the name)",
  ]);
});

Deno.test("the dry run's table: would transfer (with what and why), unchanged, would fail", () => {
  const dry: SyncResult = {
    ...RESULT,
    dryRun: true,
    lines: RESULT.lines.map((line) =>
      line.status === "transferred"
        ? { ...line, status: "planned", message: "would copy: the target tag does not exist" }
        : line
    ),
  };
  const rows = formatSyncTable(dry).trimEnd().split("\n").map((row) => row.split(/ {3,}/));
  assert.deepEqual(rows.map((row) => row[3]), [
    "STATUS",
    "would transfer",
    "unchanged",
    "would fail",
  ]);
  assert.equal(
    rows[1]?.[4],
    `sha256:${"a".repeat(64)} (would copy: the target tag does not exist)`,
  );
  assert.match(
    failureLines(dry, "l.txt")[0] ?? "",
    /^error: l\.txt:5: ghcr\.io\/acme\/gone:1: would fail: /,
  );
  assert.deepEqual(failureLines({ ...RESULT, lines: RESULT.lines.slice(0, 2) }, "l.txt"), []);
});
