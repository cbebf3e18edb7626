/**
 * The command line: the subcommands `push` (also the flat form `docker-image-pusher -r … -f …`;
 * `push --all` pushes every image of an archive under a prefix), `pull`, `copy`, `sync` and `ls`,
 * their flags from the one table in {@link ./flags.ts} with their
 * environment-variable defaults, validation, help and version. Parsing never exits the process;
 * it returns what to do or throws a usage error.
 *
 * @module
 */

import type { BundlePushOptions } from "../bundle/options.ts";
import type { CopyOptions } from "../copy/options.ts";
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
import { type ParsedWords, parseWords, usageError } from "./argv.ts";
import { envNameFor } from "./env.ts";
import { FlagReader } from "./flag_reader.ts";
import { type CommandName, flagsOf, type FlagSpec, longName } from "./flags.ts";
import { helpFooter } from "./help.ts";
import { formatHelp, type HelpRow } from "./help_layout.ts";
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

const PROGRAM = "docker-image-pusher";

const PROGRAM_DESCRIPTION =
  "Push a docker/OCI image archive to a container registry, no Docker daemon needed; " +
  "pull images into an archive; copy images between registries; mirror a list of " +
  "images under a prefix; list what an archive or a containerd store holds.";

const PROGRAM_USAGE = `${PROGRAM} [options] | push [options] | push --all -f FILE -r PREFIX | ` +
  "pull SOURCE... -o FILE | copy SOURCE TARGET | sync --from LIST --to PREFIX | ls FILE";

/** An operand a command takes. */
interface Operand {
  /** Its name in help and messages. */
  name: string;
  /** What it is. */
  description: string;
  /** Must be given. */
  required: boolean;
  /** Takes every remaining operand. */
  variadic: boolean;
}

const OPERANDS: Readonly<Record<CommandName, readonly Operand[]>> = {
  push: [],
  pull: [{
    name: "source",
    description: "images as docker names them: nginx, host:port/path/name:tag, " +
      "name@sha256:… (or a LIST with --from)",
    required: false,
    variadic: true,
  }],
  copy: [
    {
      name: "source",
      description: "the image to copy, as docker names it",
      required: true,
      variadic: false,
    },
    {
      name: "target",
      description: "where it goes: host[:port]/path/name:tag",
      required: true,
      variadic: false,
    },
  ],
  sync: [],
  ls: [{
    name: "file",
    description: "the archive to list (- reads stdin); leave out with --containerd-root",
    required: false,
    variadic: false,
  }],
};

const COMMAND_NAMES = Object.keys(DESCRIPTIONS) as CommandName[];

/** `<source>`, `[file]`, `[source...]`. */
function operandTerm(operand: Operand): string {
  const name = operand.variadic ? `${operand.name}...` : operand.name;
  return operand.required ? `<${name}>` : `[${name}]`;
}

/** `copy [options] <source> <target>`. */
function commandTerm(name: CommandName): string {
  return [name, "[options]", ...OPERANDS[name].map(operandTerm)].join(" ");
}

/** The option rows of a help text: each flag with its default and variable, then `--help`. */
function optionRows(specs: readonly FlagSpec[]): HelpRow[] {
  return [
    ...specs.map((spec) => ({
      term: spec.flags,
      description:
        `${spec.description}${spec.defaultText ? ` (default ${spec.defaultText})` : ""} ` +
        `[env ${envNameFor(`--${longName(spec)}`)}]`,
    })),
    { term: "-h, --help", description: "show this help" },
  ];
}

/** The main help, or a subcommand's, with its examples and exit codes. */
function helpText(name: CommandName | "main"): string {
  const page = name === "main"
    ? {
      usage: PROGRAM_USAGE,
      description: PROGRAM_DESCRIPTION,
      arguments: [],
      options: [
        { term: "--version", description: "print the version" },
        ...optionRows(flagsOf("push")),
      ],
      commands: COMMAND_NAMES.map((command) => ({
        term: commandTerm(command),
        description: DESCRIPTIONS[command],
      })),
    }
    : {
      usage: `${PROGRAM} ${commandTerm(name)}`,
      description: DESCRIPTIONS[name],
      arguments: OPERANDS[name].map((operand) => ({
        term: operand.name,
        description: operand.description,
      })),
      options: optionRows(flagsOf(name)),
      commands: [],
    };
  return formatHelp(page) + helpFooter(name);
}

/** A command's operands, checked against what it takes. */
function checkedOperands(name: CommandName | "main", given: readonly string[]): string[] {
  const expected = name === "main" ? [] : OPERANDS[name];
  for (const [index, operand] of expected.entries()) {
    if (operand.required && given[index] === undefined) {
      throw usageError(`missing required argument '${operand.name}'`);
    }
  }
  if (expected.at(-1)?.variadic !== true && given.length > expected.length) {
    const whose = name === "main" ? "" : ` for '${name}'`;
    throw usageError(
      `too many arguments${whose}. Expected ${expected.length} argument${
        expected.length === 1 ? "" : "s"
      } but got ${given.length}.`,
    );
  }
  return [...given];
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
  const main = parseWords(argv, flagsOf("push"), { stopAtOperand: true, version: true });
  if (main.help) return { action: "help", text: helpText("main") };
  if (main.version) return { action: "version", text: version };
  const [first, ...rest] = main.rest;
  let name: CommandName = "push";
  let words: ParsedWords = main;
  if (first !== undefined && (COMMAND_NAMES as readonly string[]).includes(first)) {
    name = first as CommandName;
    words = parseWords(rest, flagsOf(name));
    if (words.help) return { action: "help", text: helpText(name) };
  } else if (first !== undefined) {
    checkedOperands("main", main.rest);
  }
  const args = checkedOperands(name, words.operands);
  const flags = new FlagReader(flagsOf(name), words.values, env);
  switch (name) {
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
        options: pullOptions(flags, args),
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
      return { action: "ls", options: listOptions(flags, args[0]) };
  }
}
