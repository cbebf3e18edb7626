/**
 * The command line: flags, their environment-variable defaults, validation, help and version.
 * Parsing never exits the process; it returns what to do or throws a usage error.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { PusherError } from "../errors.ts";
import type { Compression } from "../image/types.ts";
import {
  type AttestationPolicy,
  DEFAULT_PUSH_SETTINGS,
  type ManifestFormat,
  type PushOptions,
} from "../options.ts";
import { envNameFor, parseEnvBoolean, parseWholeNumber } from "./env.ts";
import { helpFooter } from "./help.ts";

/** How the user wants to see the push. */
export interface OutputSettings {
  /** Errors only. */
  quiet: boolean;
  /** Newline-delimited JSON events on stdout. */
  json: boolean;
  /** Every HTTP request, retry decision and registry error body. */
  verbose: boolean;
}

/** What the command line asks for. */
export type CommandLine =
  | { action: "help"; text: string }
  | { action: "version"; text: string }
  | {
    action: "push";
    options: PushOptions;
    output: OutputSettings;
    /** Read the password from standard input. */
    passwordStdin: boolean;
    /** The user name from `-u` or `DOCKER_PUSHER_USERNAME`, for `--password-stdin`. */
    username: string | undefined;
    /** A password was given with `-p` on the command line (worth a warning). */
    passwordOnCommandLine: boolean;
  };

const COMPRESSIONS: readonly Compression[] = ["none", "gzip", "zstd"];
const FORMATS: readonly ManifestFormat[] = ["auto", "oci", "docker"];
const ATTESTATION_POLICIES: readonly AttestationPolicy[] = ["keep", "drop"];

interface FlagSpec {
  flags: string;
  description: string;
  kind: "string" | "list" | "number" | "boolean";
  min?: number;
  defaultText?: string;
}

const FLAGS: readonly FlagSpec[] = [
  {
    flags: "-f, --file <path>",
    description: "image archive to push (- reads stdin)",
    kind: "string",
  },
  {
    flags: "-r, --repository-url <url>",
    description: "target: https://host[:port]/path/name:tag, http://… for plain HTTP, or a " +
      "docker reference host/path/name:tag (repeat to push several tags)",
    kind: "list",
  },
  { flags: "-u, --username <user>", description: "registry user name", kind: "string" },
  {
    flags: "-p, --password <password>",
    description: "registry password or token (prefer --password-stdin)",
    kind: "string",
  },
  { flags: "--password-stdin", description: "read the password from stdin", kind: "boolean" },
  {
    flags: "-t, --timeout <seconds>",
    description: "time limit for the whole push",
    kind: "number",
    min: 1,
    defaultText: String(DEFAULT_PUSH_SETTINGS.timeoutSeconds),
  },
  {
    flags: "--stall-timeout <seconds>",
    description: "abort and retry a request when no bytes move for this long",
    kind: "number",
    min: 1,
    defaultText: String(DEFAULT_PUSH_SETTINGS.stallTimeoutSeconds),
  },
  {
    flags: "--large-layer-threshold <bytes>",
    description: "layers larger than this go up in chunks",
    kind: "number",
    min: 1,
    defaultText: String(DEFAULT_PUSH_SETTINGS.largeLayerThreshold),
  },
  {
    flags: "--max-concurrent <n>",
    description: "parallel blob uploads",
    kind: "number",
    min: 1,
    defaultText: String(DEFAULT_PUSH_SETTINGS.maxConcurrent),
  },
  {
    flags: "--retry-attempts <n>",
    description: "retries per request after the first try",
    kind: "number",
    min: 0,
    defaultText: String(DEFAULT_PUSH_SETTINGS.retryAttempts),
  },
  {
    flags: "--compression <kind>",
    description: "compression for uncompressed layers: none, gzip or zstd " +
      "(compressed layers go up as they are)",
    kind: "string",
    defaultText: DEFAULT_PUSH_SETTINGS.compression,
  },
  {
    flags: "--format <kind>",
    description: "manifest media types: auto (the archive's own; Docker's when the registry " +
      "refuses OCI), oci or docker",
    kind: "string",
    defaultText: "auto",
  },
  {
    flags: "--attestations <policy>",
    description: "BuildKit attestation manifests: keep (left out only when the registry refuses " +
      "them) or drop",
    kind: "string",
    defaultText: "keep",
  },
  {
    flags: "--image <name:tag>",
    description: "image to push from a multi-image archive",
    kind: "string",
  },
  {
    flags: "--mount-from <repository>",
    description: "repository on the same registry to mount existing blobs from",
    kind: "string",
  },
  { flags: "--skip-tls", description: "do not verify TLS certificates", kind: "boolean" },
  { flags: "--ca-cert <file>", description: "trust an extra PEM CA certificate", kind: "list" },
  { flags: "--dry-run", description: "read, verify and plan; write nothing", kind: "boolean" },
  {
    flags: "--skip-existing",
    description: "skip blobs the registry has (the default; kept for compatibility)",
    kind: "boolean",
  },
  {
    flags: "--force-upload",
    description: "upload blobs even when the registry has them",
    kind: "boolean",
  },
  {
    flags: "--no-cache",
    description: "ignore the local layer cache, resume state and learnt chunk size",
    kind: "boolean",
  },
  { flags: "--json", description: "newline-delimited JSON events on stdout", kind: "boolean" },
  {
    flags: "--verbose",
    description: "show HTTP requests, retries and registry error bodies",
    kind: "boolean",
  },
  { flags: "--quiet", description: "print errors only", kind: "boolean" },
];

function longName(spec: FlagSpec): string {
  const match = spec.flags.match(/--([a-z-]+)/);
  if (!match?.[1]) throw new Error(`flag without a long name: ${spec.flags}`);
  return match[1];
}

function attributeName(long: string): string {
  return long.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function buildProgram(version: string): Command {
  const program = new Command("docker-image-pusher")
    .description(
      "Push a docker/OCI image archive to a container registry, no Docker daemon needed.",
    )
    .version(version, "--version", "print the version")
    .helpOption("-h, --help", "show this help")
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} });
  for (const spec of FLAGS) {
    const option = new Option(spec.flags, spec.description);
    const envName = envNameFor(`--${longName(spec)}`);
    option.description = `${spec.description}${
      spec.defaultText ? ` (default ${spec.defaultText})` : ""
    } [env ${envName}]`;
    if (spec.kind === "list") {
      option.argParser((value: string, previous: string[] | undefined) => [
        ...(previous ?? []),
        value,
      ]);
    }
    program.addOption(option);
  }
  return program;
}

type RawValue = string | string[] | boolean | undefined;
type RawValues = Record<string, RawValue>;

/** One flag's effective value and where it came from. */
interface Setting {
  /** The value, from the command line or the environment; undefined when neither gives one. */
  value: RawValue;
  /** How messages name it: `--max-concurrent`, or `DOCKER_PUSHER_MAX_CONCURRENT` from the env. */
  label: string;
}

/** Reads one flag's value: the command line first, then its environment variable. */
function effectiveSetting(
  spec: FlagSpec,
  values: RawValues,
  program: Command,
  env: Readonly<Record<string, string>>,
): Setting {
  const long = longName(spec);
  const attribute = attributeName(long);
  const flagLabel = `--${long}`;
  if (program.getOptionValueSource(attribute) === "cli") {
    return { value: values[attribute], label: flagLabel };
  }
  if (long === "no-cache" && values["cache"] === false) return { value: true, label: flagLabel };
  const envName = envNameFor(flagLabel);
  const fromEnv = env[envName];
  if (fromEnv === undefined) return { value: undefined, label: flagLabel };
  if (spec.kind === "boolean") return { value: parseEnvBoolean(envName, fromEnv), label: envName };
  if (spec.kind === "list") {
    return { value: fromEnv.split(",").map((item) => item.trim()).filter(Boolean), label: envName };
  }
  return { value: fromEnv, label: envName };
}

function numberSetting(spec: FlagSpec, setting: Setting, fallback: number): number {
  if (typeof setting.value !== "string") return fallback;
  return parseWholeNumber(setting.label, setting.value, spec.min ?? 0);
}

function commanderToUsage(error: CommanderError): PusherError {
  const message = error.message.replace(/^error:\s*/i, "");
  return new PusherError("usage", message, { hint: "run with --help to see the flags" });
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
  const program = buildProgram(version);
  try {
    program.parse([...argv], { from: "user" });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === "commander.helpDisplayed" || error.code === "commander.help") {
      return { action: "help", text: program.helpInformation() + helpFooter() };
    }
    if (error.code === "commander.version") return { action: "version", text: version };
    throw commanderToUsage(error);
  }
  const values = program.opts<RawValues>();
  const settings = new Map<string, Setting>();
  for (const spec of FLAGS) {
    settings.set(longName(spec), effectiveSetting(spec, values, program, env));
  }
  const setting = (name: string): Setting => {
    const found = settings.get(name);
    if (!found) throw new PusherError("internal", `unknown flag --${name}`);
    return found;
  };
  const text = (name: string): string | undefined => {
    const value = setting(name).value;
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const flag = (name: string): boolean => setting(name).value === true;
  const list = (name: string): string[] => {
    const value = setting(name).value;
    return Array.isArray(value) ? value : [];
  };
  const label = (name: string): string => setting(name).label;
  const number = (name: string, fallback: number): number => {
    const found = FLAGS.find((candidate) => longName(candidate) === name);
    if (!found) throw new PusherError("internal", `unknown flag --${name}`);
    return numberSetting(found, setting(name), fallback);
  };

  const file = text("file");
  if (file === undefined) {
    throw new PusherError("usage", "missing --file: which archive should be pushed?", {
      hint: "pass -f image.tar (or -f - to read stdin)",
    });
  }
  const targets = list("repository-url");
  if (targets.length === 0) {
    throw new PusherError("usage", "missing --repository-url: where should the image go?", {
      hint: "pass -r https://registry.example.com/project/app:tag",
    });
  }
  const compression = text("compression") ?? DEFAULT_PUSH_SETTINGS.compression;
  if (!COMPRESSIONS.includes(compression as Compression)) {
    throw new PusherError(
      "usage",
      `${label("compression")} must be none, gzip or zstd, got ${JSON.stringify(compression)}`,
    );
  }
  const format = text("format") ?? "auto";
  if (!FORMATS.includes(format as ManifestFormat)) {
    throw new PusherError(
      "usage",
      `${label("format")} must be auto, oci or docker, got ${JSON.stringify(format)}`,
    );
  }
  const attestations = text("attestations") ?? "keep";
  if (!ATTESTATION_POLICIES.includes(attestations as AttestationPolicy)) {
    throw new PusherError(
      "usage",
      `${label("attestations")} must be keep or drop, got ${JSON.stringify(attestations)}`,
    );
  }
  if (format === "docker" && compression !== "gzip" && text("compression") !== undefined) {
    throw new PusherError(
      "usage",
      `${label("format")} docker and ${
        label("compression")
      } ${compression} cannot be used together`,
      { hint: "Docker media types have gzip layers only: leave --compression out" },
    );
  }
  const together = (first: string, second: string): PusherError =>
    new PusherError("usage", `${label(first)} and ${label(second)} cannot be used together`);
  if (flag("quiet") && flag("verbose")) throw together("quiet", "verbose");
  if (flag("force-upload") && flag("dry-run")) throw together("force-upload", "dry-run");
  const username = text("username");
  const password = text("password");
  const passwordStdin = flag("password-stdin");
  if (passwordStdin && password !== undefined) throw together("password", "password-stdin");
  if (passwordStdin && file === "-") {
    throw new PusherError(
      "usage",
      `${label("password-stdin")} cannot be used with ${label("file")} - (both read stdin)`,
    );
  }
  if (password !== undefined && username === undefined) {
    throw new PusherError("usage", `${label("password")} needs --username`);
  }

  const options: PushOptions = {
    file,
    targets,
    timeoutSeconds: number("timeout", DEFAULT_PUSH_SETTINGS.timeoutSeconds),
    stallTimeoutSeconds: number("stall-timeout", DEFAULT_PUSH_SETTINGS.stallTimeoutSeconds),
    largeLayerThreshold: number(
      "large-layer-threshold",
      DEFAULT_PUSH_SETTINGS.largeLayerThreshold,
    ),
    maxConcurrent: number("max-concurrent", DEFAULT_PUSH_SETTINGS.maxConcurrent),
    retryAttempts: number("retry-attempts", DEFAULT_PUSH_SETTINGS.retryAttempts),
    skipTls: flag("skip-tls"),
    caCertFiles: list("ca-cert"),
    dryRun: flag("dry-run"),
    forceUpload: flag("force-upload"),
    compression: compression as Compression,
    noCache: flag("no-cache"),
    format: format as ManifestFormat,
    attestations: attestations as AttestationPolicy,
  };
  const image = text("image");
  if (image !== undefined) options.image = image;
  const mountFrom = text("mount-from");
  if (mountFrom !== undefined) options.mountFrom = mountFrom;
  if (username !== undefined && password !== undefined) {
    options.credentials = { username, password };
  }
  return {
    action: "push",
    options,
    output: { quiet: flag("quiet"), json: flag("json"), verbose: flag("verbose") },
    passwordStdin,
    username,
    passwordOnCommandLine: program.getOptionValueSource("password") === "cli",
  };
}
