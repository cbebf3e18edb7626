/**
 * The command-line program: parse, set up output, run the command (push, push --all, pull, copy,
 * sync or ls), print the result or one error line (a sync: its table, and a line per failed LIST
 * line; a push --all: a line per failed image), and return the exit code. `main.ts` only calls
 * {@link runCli}.
 *
 * @module
 */

import { EXIT_CODES, PusherError, toPusherError } from "../errors.ts";
import type { Display } from "../logging/display.ts";
import { moduleLogger, setupLogging, teardownLogging } from "../logging/logger.ts";
import { Redactor } from "../logging/redact.ts";
import type { PushEvent } from "../logging/events.ts";
import type { RunHooks } from "../transfer/run.ts";
import { VERSION } from "../version.ts";
import { type CommandLine, parseCommandLine } from "./args.ts";
import { createDisplay, writeStderr, writeStdout } from "./display_factory.ts";

async function readPasswordFromStdin(): Promise<string> {
  const text = await new Response(Deno.stdin.readable).text();
  const password = text.replace(/\r?\n$/, "");
  if (password === "") {
    throw new PusherError("usage", "--password-stdin was given but stdin was empty");
  }
  return password;
}

function describeError(error: PusherError, redactor: Redactor): string {
  const hint = error.hint ? ` (${error.hint})` : "";
  return redactor.redact(`error: ${error.message}${hint}`);
}

function causeChain(error: unknown, redactor: Redactor): string {
  const lines: string[] = [];
  let current: unknown = error;
  while (current instanceof Error) {
    lines.push(current.stack ?? current.message);
    current = current.cause;
  }
  return redactor.redact(lines.join("\ncaused by: "));
}

/** A command that runs something, as parsed. */
type RunCommand = Extract<
  CommandLine,
  { action: "push" | "push-all" | "pull" | "copy" | "sync" }
>;

/** What a command leaves for the end of the run. */
interface CommandOutput {
  /** Lines for stdout: `registry/repository@sha256:…` per image written, or a sync's table. */
  lines: string[];
  /** Error lines for stderr: the images of a `push --all` or the LIST lines that failed. */
  failures: string[];
  /** The exit code (non-zero when an image of a `push --all` or a LIST line failed). */
  exitCode: number;
}

/** The output of a command that wrote `lines` and failed nowhere. */
function succeeded(lines: string[]): CommandOutput {
  return { lines, failures: [], exitCode: 0 };
}

/**
 * Runs the command; a pull that writes its archive to stdout prints no lines. Each command's
 * modules are loaded when it runs, so a command (or `--help`) never waits for the others' to load.
 */
async function runCommand(
  command: RunCommand,
  runtime: RunHooks,
): Promise<CommandOutput> {
  switch (command.action) {
    case "push": {
      const { push } = await import("../push/push.ts");
      return succeeded((await push(command.options, runtime)).digestReferences);
    }
    case "push-all": {
      const { bundleExitCode, pushAll } = await import("../bundle/push_all.ts");
      const result = await pushAll(command.options, runtime);
      return {
        lines: result.images.flatMap((image) => image.digestReferences),
        failures: result.images.flatMap((image) =>
          image.error === undefined ? [] : [
            `error: ${image.image} → ${image.targets.join(", ") || "-"}: ${image.error.message}${
              image.error.hint !== undefined ? ` (${image.error.hint})` : ""
            }`,
          ]
        ),
        exitCode: bundleExitCode(result),
      };
    }
    case "pull": {
      const [{ pull }, { parseReference }] = await Promise.all([
        import("../pull/pull.ts"),
        import("../registry/reference.ts"),
      ]);
      const result = await pull(command.options, runtime);
      if (command.options.output === "-") return succeeded([]);
      return succeeded(result.images.map((image) => {
        const { registry, repository } = parseReference(image.source);
        return `${registry}/${repository}@${image.digest}`;
      }));
    }
    case "copy": {
      const { copy } = await import("../copy/copy.ts");
      return succeeded([(await copy(command.options, runtime)).digestReference]);
    }
    case "sync": {
      const [{ sync, syncExitCode }, { failureLines, formatSyncTable }] = await Promise.all([
        import("../sync/sync.ts"),
        import("./sync_report.ts"),
      ]);
      const result = await sync(command.options, runtime);
      return {
        lines: formatSyncTable(result).replace(/\n$/, "").split("\n"),
        failures: failureLines(result, command.options.from),
        exitCode: syncExitCode(result),
      };
    }
  }
}

/** Runs the tool with the given arguments and environment; returns the process exit code. */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string>> = Deno.env.toObject(),
): Promise<number> {
  const redactor = new Redactor();
  let display: Display | undefined;
  let verbose = false;
  let json = false;
  const controller = new AbortController();
  const onInterrupt = (): void => {
    // A second Ctrl-C does not wait for the state to be saved.
    if (controller.signal.aborted) Deno.exit(EXIT_CODES.interrupted);
    controller.abort(
      new PusherError("interrupted", "interrupted by Ctrl-C; progress was saved", {
        hint: "run the same command again to resume",
      }),
    );
  };
  try {
    const command = parseCommandLine(argv, env, VERSION);
    if (command.action === "help") {
      writeStdout(command.text);
      return 0;
    }
    if (command.action === "version") {
      writeStdout(`docker-image-pusher ${command.text}\n`);
      return 0;
    }
    if (command.action === "ls") {
      json = command.options.json;
      const { runList } = await import("./list_command.ts");
      writeStdout(await runList(command.options));
      return 0;
    }
    verbose = command.output.verbose;
    json = command.output.json;
    const activeDisplay = createDisplay(command.output, command.action === "sync");
    display = activeDisplay;
    await setupLogging(command.output, (line) => activeDisplay.log(line), redactor);
    const options = command.options;
    if (command.passwordStdin) {
      const username = command.username;
      if (!username) throw new PusherError("usage", "--password-stdin needs --username");
      options.credentials = { username, password: await readPasswordFromStdin() };
    }
    if (options.credentials) redactor.addCredentials(options.credentials);
    if (command.action === "copy" && command.options.sourceCredentials) {
      redactor.addCredentials(command.options.sourceCredentials);
    }
    if (command.passwordOnCommandLine) {
      moduleLogger("cli").warn(
        "a password on the command line can be seen by other users of this machine; " +
          "prefer --password-stdin or DOCKER_PUSHER_PASSWORD",
      );
    }
    Deno.addSignalListener("SIGINT", onInterrupt);
    const runtime = {
      events: (event: PushEvent) => activeDisplay.onEvent(event),
      signal: controller.signal,
      redactor,
    };
    const output = await runCommand(command, runtime);
    activeDisplay.close();
    if (!json) {
      for (const line of output.lines) writeStdout(`${line}\n`);
    }
    for (const failure of output.failures) writeStderr(`${redactor.redact(failure)}\n`);
    return output.exitCode;
  } catch (thrown) {
    const error = toPusherError(controller.signal.aborted ? controller.signal.reason : thrown);
    display?.close();
    if (verbose) writeStderr(`${causeChain(thrown, redactor)}\n`);
    if (json) {
      writeStdout(
        `${
          JSON.stringify({
            time: new Date().toISOString(),
            type: "error",
            kind: error.kind,
            exitCode: error.exitCode,
            message: redactor.redact(error.message),
            ...(error.hint ? { hint: redactor.redact(error.hint) } : {}),
          })
        }\n`,
      );
    }
    writeStderr(`${describeError(error, redactor)}\n`);
    return error.exitCode;
  } finally {
    try {
      Deno.removeSignalListener("SIGINT", onInterrupt);
    } catch {
      // never added
    }
    await teardownLogging();
  }
}
