/**
 * The command line of bundles: `push --all -f FILE -r PREFIX [--flatten]` (also in the flat
 * form and from `DOCKER_PUSHER_ALL` / `DOCKER_PUSHER_FLATTEN`), what it refuses (several `-r`,
 * `--image`, stdin, a containerd store, `--flatten` alone), and `pull --from LIST
 * [--exclude-from BUNDLE|PREFIX [--flatten]]` with their variables.
 */

import assert from "node:assert/strict";
import { type CommandLine, parseCommandLine } from "../../lib/cli/args.ts";
import { PusherError } from "../../lib/errors.ts";

function parse(argv: string[], env: Record<string, string> = {}): CommandLine {
  return parseCommandLine(argv, env, "0.0.0-test");
}

function usageError(argv: string[], pattern: RegExp, env: Record<string, string> = {}): void {
  assert.throws(
    () => parse(argv, env),
    (error: unknown) =>
      error instanceof PusherError && error.kind === "usage" && pattern.test(error.message),
    argv.join(" "),
  );
}

Deno.test("push --all: the one -r is the prefix; --flatten; the flat form and the variables", () => {
  for (
    const [argv, env] of [
      [["push", "--all", "-f", "b.tar", "-r", "reg.test/mirror", "--flatten"], {}],
      [["--all", "-f", "b.tar", "-r", "reg.test/mirror", "--flatten"], {}],
      [["-f", "b.tar", "-r", "reg.test/mirror"], {
        DOCKER_PUSHER_ALL: "1",
        DOCKER_PUSHER_FLATTEN: "true",
      }],
    ] as const
  ) {
    const command = parse([...argv], env);
    assert.equal(command.action, "push-all", argv.join(" "));
    if (command.action !== "push-all") return;
    assert.equal(command.options.prefix, "reg.test/mirror");
    assert.equal(command.options.file, "b.tar");
    assert.equal(command.options.flatten, true);
    assert.equal("targets" in command.options, false);
  }
  const plain = parse(["push", "--all", "-f", "b.tar", "-r", "reg.test/mirror", "--dry-run"]);
  assert.equal(plain.action === "push-all" && plain.options.flatten, false);
  assert.equal(plain.action === "push-all" && plain.options.dryRun, true);
});

Deno.test("push --all refuses what cannot name one prefix or read the archive per image", () => {
  const base = ["push", "--all", "-f", "b.tar"];
  usageError([...base, "-r", "a.test/m", "-r", "b.test/m"], /--all takes one --repository-url/);
  usageError([...base, "-r", "a.test/m", "--image", "app:1"], /--all and --image/);
  usageError(["push", "--all", "-f", "-", "-r", "a.test/m"], /once per image, not from stdin/);
  usageError(
    ["push", "--all", "--containerd-root", "/c", "-r", "a.test/m"],
    /--all and --containerd-root/,
  );
  usageError(["push", "-f", "b.tar", "-r", "a.test/m:1", "--flatten"], /--flatten needs --all/);
  usageError(["-f", "b.tar", "-r", "a.test/m:1"], /DOCKER_PUSHER_FLATTEN needs --all/, {
    DOCKER_PUSHER_FLATTEN: "1",
  });
});

Deno.test("pull --from and --exclude-from, from flags and variables", () => {
  const command = parse([
    ...["pull", "--from", "images.txt", "-o", "delta.tar"],
    ...["--exclude-from", "reg.test/mirror", "--flatten"],
  ]);
  assert.equal(command.action, "pull");
  if (command.action !== "pull") return;
  assert.deepEqual(command.options.sources, []);
  assert.equal(command.options.from, "images.txt");
  assert.equal(command.options.excludeFrom, "reg.test/mirror");
  assert.equal(command.options.flatten, true);
  const fromEnv = parse(["pull", "-o", "b.tar"], {
    DOCKER_PUSHER_FROM: "env.txt",
    DOCKER_PUSHER_EXCLUDE_FROM: "previous.tar",
  });
  assert.equal(fromEnv.action === "pull" && fromEnv.options.from, "env.txt");
  assert.equal(fromEnv.action === "pull" && fromEnv.options.excludeFrom, "previous.tar");
  usageError(["pull", "-o", "b.tar"], /missing SOURCE/);
  usageError(["pull", "--from", "l.txt", "-o", "b.tar", "--flatten"], /pass both, or neither/);
  const help = parse(["pull", "--help"]);
  assert.ok(help.action === "help" && /--exclude-from <bundle\|prefix>/.test(help.text));
  assert.ok(help.action === "help" && /DOCKER_PUSHER_FROM/.test(help.text));
});
