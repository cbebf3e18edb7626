/**
 * The command line: the subcommands `push` (also the flat form `docker-image-pusher -r … -f …`;
 * `push --all` pushes every image of an archive under a prefix), `pull`, `copy`, `sync` and `ls`,
 * their flags from the one table in {@link ./flags.ts} with their
 * environment-variable defaults, validation, help and version. Parsing never exits the process;
 * it returns what to do or throws a usage error.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import type { BundlePushOptions } from "../bundle/options.ts";
import type { CopyOptions } from "../copy/options.ts";
import { PusherError } from "../errors.ts";
import type { PushOptions } from "../options.ts";
import type { PullOptions } from "../pull/options.ts";
import type { SyncOptions } from "../sync/options.ts";
import {
  bundlePushOptions,
  copyOptions,
  listOptions,
  pullOptions,
  pushOptions,
  syncOptions,
} from "./command_options.ts";
import { envNameFor } from "./env.ts";
import { FlagReader } from "./flag_reader.ts";
import { type CommandName, flagsOf, longName } from "./flags.ts";
import { helpFooter } from "./help.ts";
import type { ListOptions } from "./list_command.ts";

/** How the user wants to see the run. */
export interface OutputSettings {
  /** Errors only. */
  quiet: boolean;
  /** Newline-delimited JSON events on stdout. */
  json: boolean;
  /** Every HTTP request, retry decision and registry error body. */
  verbose: boolean;
}

/** What every command line that runs something carries besides its options. */
interface RunCommon {
  output: OutputSettings;
  /** Read the password from standard input. */
  passwordStdin: boolean;
  /** The user name from `-u` or `DOCKER_PUSHER_USERNAME`, for `--password-stdin`. */
  username: string | undefined;
  /** A password was given on the command line (worth a warning). */
  passwordOnCommandLine: boolean;
}

/** What the command line asks for. */
export type CommandLine =
  | { action: "help"; text: string }
  | { action: "version"; text: string }
  | ({ action: "push"; options: PushOptions } & RunCommon)
  | ({ action: "push-all"; options: BundlePushOptions } & RunCommon)
  | ({ action: "pull"; options: PullOptions } & RunCommon)
  | ({ action: "copy"; options: CopyOptions } & RunCommon)
  | ({ action: "sync"; options: SyncOptions } & RunCommon)
  | { action: "ls"; options: ListOptions };

const DESCRIPTIONS: Readonly<Record<CommandName, string>> = {
  push: "push a docker/OCI image archive to a registry (the default command)",
  pull: "pull images from registries into one archive (docker load, podman load, skopeo, push)",
  copy: "copy an image from one registry to another",
  sync: "mirror every image of a LIST (registry references and archives) under a target prefix; " +
    "images already there are left alone",
  ls: "list the images an archive or a containerd namespace holds: names, platforms, digest, size",
};

/** The commands as parsed: which one ran, and the help text captured when help was asked. */
interface Parsed {
  invoked?: { name: CommandName; command: Command };
  help?: { name: CommandName | "main"; text: string };
}

function configure(
  command: Command,
  name: CommandName | "main",
  flagsFor: CommandName,
  parsed: Parsed,
): Command {
  command
    .helpOption("-h, --help", "show this help")
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => {
        parsed.help = { name, text: (parsed.help?.text ?? "") + text };
      },
      writeErr: () => {},
    })
    .action(() => {
      parsed.invoked = { name: flagsFor, command };
    });
  for (const spec of flagsOf(flagsFor)) {
    const option = new Option(spec.flags, spec.description);
    option.description = `${spec.description}${
      spec.defaultText ? ` (default ${spec.defaultText})` : ""
    } [env ${envNameFor(`--${longName(spec)}`)}]`;
    if (spec.kind === "list") {
      option.argParser((value: string, previous: string[] | undefined) => [
        ...(previous ?? []),
        value,
      ]);
    }
    command.addOption(option);
  }
  return command;
}

function buildProgram(version: string, parsed: Parsed): Command {
  const program = configure(
    new Command("docker-image-pusher")
      .description(
        "Push a docker/OCI image archive to a container registry, no Docker daemon needed; " +
          "pull images into an archive; copy images between registries; mirror a list of " +
          "images under a prefix; list what an archive or a containerd store holds.",
      )
      .usage(
        "[options] | push [options] | push --all -f FILE -r PREFIX | pull SOURCE... -o FILE | " +
          "copy SOURCE TARGET | sync --from LIST --to PREFIX | ls FILE",
      )
      .version(version, "--version", "print the version")
      .enablePositionalOptions()
      .helpCommand(false),
    "main",
    "push",
    parsed,
  );
  program.addCommand(
    configure(new Command("push"), "push", "push", parsed).description(
      DESCRIPTIONS.push,
    ),
  );
  program.addCommand(
    configure(new Command("pull"), "pull", "pull", parsed)
      .description(DESCRIPTIONS.pull)
      .argument(
        "[source...]",
        "images as docker names them: nginx, host:port/path/name:tag, " +
          "name@sha256:… (or a LIST with --from)",
      ),
  );
  program.addCommand(
    configure(new Command("copy"), "copy", "copy", parsed)
      .description(DESCRIPTIONS.copy)
      .argument("<source>", "the image to copy, as docker names it")
      .argument("<target>", "where it goes: host[:port]/path/name:tag"),
  );
  program.addCommand(
    configure(new Command("sync"), "sync", "sync", parsed).description(DESCRIPTIONS.sync),
  );
  program.addCommand(
    configure(new Command("ls"), "ls", "ls", parsed)
      .description(DESCRIPTIONS.ls)
      .argument("[file]", "the archive to list (- reads stdin); leave out with --containerd-root"),
  );
  return program;
}

function commanderToUsage(error: CommanderError): PusherError {
  const message = error.message.replace(/^error:\s*/i, "");
  return new PusherError("usage", message, { hint: "run with --help to see the flags" });
}

function runCommon(flags: FlagReader, passwordFlags: readonly string[]): RunCommon {
  return {
    output: {
      quiet: flags.flag("quiet"),
      json: flags.flag("json"),
      verbose: flags.flag("verbose"),
    },
    passwordStdin: flags.flag("password-stdin"),
    username: flags.text("username"),
    passwordOnCommandLine: passwordFlags.some((name) => flags.fromCommandLine(name)),
  };
}

/**
 * Parses the command line and the `DOCKER_PUSHER_*` environment into what to do.
 * Throws a usage {@link PusherError} naming the bad flag or variable.
 */
export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  version: string,
): CommandLine {
  const parsed: Parsed = {};
  const program = buildProgram(version, parsed);
  try {
    program.parse([...argv], { from: "user" });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === "commander.helpDisplayed" || error.code === "commander.help") {
      const name = parsed.help?.name ?? "main";
      const text = parsed.help?.text ?? program.helpInformation();
      return { action: "help", text: text + helpFooter(name) };
    }
    if (error.code === "commander.version") return { action: "version", text: version };
    throw commanderToUsage(error);
  }
  const invoked = parsed.invoked;
  if (invoked === undefined) throw new PusherError("internal", "no command was run");
  const flags = new FlagReader(flagsOf(invoked.name), invoked.command, env);
  const args = invoked.command.processedArgs as unknown[];
  switch (invoked.name) {
    case "push":
      if (flags.flag("all")) {
        return {
          action: "push-all",
          options: bundlePushOptions(flags),
          ...runCommon(flags, ["password"]),
        };
      }
      return { action: "push", options: pushOptions(flags), ...runCommon(flags, ["password"]) };
    case "pull":
      return {
        action: "pull",
        options: pullOptions(flags, (args[0] as string[] | undefined) ?? []),
        ...runCommon(flags, ["password"]),
      };
    case "copy":
      return {
        action: "copy",
        options: copyOptions(flags, args[0] as string, args[1] as string),
        ...runCommon(flags, ["password", "src-password"]),
      };
    case "sync":
      return { action: "sync", options: syncOptions(flags), ...runCommon(flags, ["password"]) };
    case "ls":
      return { action: "ls", options: listOptions(flags, args[0] as string | undefined) };
  }
}
