/**
 * Every command-line flag in one table, with the commands that take it: credentials, TLS,
 * timeouts, retries, concurrency and output are shared by push, pull, copy and sync; each command
 * adds its own, and `ls` takes only what says what to list and how. Each flag has a
 * `DOCKER_PUSHER_*` environment variable (see {@link ./env.ts}).
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { DEFAULT_NAMESPACE } from "../image/containerd_namespace.ts";
import { DEFAULT_PUSH_SETTINGS } from "../options.ts";
import { DEFAULT_SYNC_SETTINGS } from "../sync/options.ts";
import { OUTAGE_BUDGET_MS } from "../transfer/retry.ts";

/** The subcommands. The flat form `docker-image-pusher -r … -f …` is a push. */
export type CommandName = "push" | "pull" | "copy" | "sync" | "ls";

/** One flag. */
export interface FlagSpec {
  /** The flag as help shows it, e.g. `-t, --timeout <seconds>`: short form, long form, value. */
  flags: string;
  /** What the flag does, as `--help` shows it. */
  description: string;
  /** How its value (and its environment variable) is read. */
  kind: "string" | "list" | "number" | "boolean";
  /** The commands that take it. */
  commands: readonly CommandName[];
  /** Smallest value of a number. */
  min?: number;
  /** The default, as `--help` shows it. */
  defaultText?: string;
}

const ALL: readonly CommandName[] = ["push", "pull", "copy", "sync"];
const PUSH: readonly CommandName[] = ["push"];
/** Commands that read image archives: push, and sync for its archive lines. */
const ARCHIVE_READERS: readonly CommandName[] = ["push", "sync"];
const SYNC: readonly CommandName[] = ["sync"];
const CONTAINERD: readonly CommandName[] = ["push", "ls"];

/** The flags of every command. */
export const FLAGS: readonly FlagSpec[] = [
  {
    flags: "-f, --file <path>",
    description: "image archive to push (- reads stdin)",
    kind: "string",
    commands: PUSH,
  },
  {
    flags: "--containerd-root <dir>",
    description: "read images from this containerd root (e.g. /var/lib/containerd) instead of " +
      "an archive; read-only, containerd may keep running",
    kind: "string",
    commands: CONTAINERD,
  },
  {
    flags: "--namespace <name>",
    description: "containerd namespace to read (k3s and Kubernetes keep their images in k8s.io)",
    kind: "string",
    commands: CONTAINERD,
    defaultText: DEFAULT_NAMESPACE,
  },
  {
    flags: "-r, --repository-url <url>",
    description: "target: https://host[:port]/path/name:tag, http://… for plain HTTP, or a " +
      "docker reference host/path/name:tag (repeat to push several tags)",
    kind: "list",
    commands: PUSH,
  },
  {
    flags: "-o, --output <path>",
    description: "archive to write; - writes to stdout (a pull to stdout cannot resume)",
    kind: "string",
    commands: ["pull"],
  },
  {
    flags: "--from <list>",
    description: "the LIST file: one image per line, [--platform=P[,P…]] SOURCE [=> TARGET]; " +
      "SOURCE is a registry reference or an archive path (./app.tar); pull takes its registry " +
      "lines (a line's --platform= applies to it)",
    kind: "string",
    commands: ["pull", "sync"],
  },
  {
    flags: "--to <prefix>",
    description: "target prefix registry[:port][/namespace]: a line without => TARGET lands at " +
      "PREFIX/<repository path>:<tag>",
    kind: "string",
    commands: SYNC,
  },
  {
    flags: "--flatten",
    description: "keep only the last path segment under the prefix (PREFIX/<name>:<tag>), for " +
      "registries that allow two levels (sync, push --all; pull: the mirror --exclude-from names)",
    kind: "boolean",
    commands: ["push", "pull", "sync"],
  },
  {
    flags: "--parallel-images <n>",
    description: "images transferred at once",
    kind: "number",
    commands: SYNC,
    min: 1,
    defaultText: String(DEFAULT_SYNC_SETTINGS.parallelImages),
  },
  {
    flags: "--all",
    description: "push every image of a multi-image archive (a bundle) under the one -r PREFIX, " +
      "each at PREFIX/<repository path>:<tag>",
    kind: "boolean",
    commands: PUSH,
  },
  {
    flags: "--exclude-from <bundle|prefix>",
    description: "write a delta bundle: leave out the layers an earlier bundle holds, or that " +
      "a mirror under a registry prefix has (push --all checks the registry has them)",
    kind: "string",
    commands: ["pull"],
  },
  {
    flags: "--platform <os/arch[/variant]>",
    description: "keep only this platform of a multi-platform image (repeatable; the index is " +
      "rebuilt, so its digest changes)",
    kind: "list",
    commands: ["pull", "copy"],
  },
  {
    flags: "-u, --username <user>",
    description: "registry user name (copy: the target registry; sync: the prefix's registry)",
    kind: "string",
    commands: ALL,
  },
  {
    flags: "-p, --password <password>",
    description: "registry password or token (prefer --password-stdin)",
    kind: "string",
    commands: ALL,
  },
  {
    flags: "--password-stdin",
    description: "read the password from stdin",
    kind: "boolean",
    commands: ALL,
  },
  {
    flags: "--src-username <user>",
    description: "user name for the source registry",
    kind: "string",
    commands: ["copy"],
  },
  {
    flags: "--src-password <password>",
    description: "password or token for the source registry",
    kind: "string",
    commands: ["copy"],
  },
  {
    flags: "-t, --timeout <seconds>",
    description: "time limit for the whole run (sync: for each image)",
    kind: "number",
    commands: ALL,
    min: 1,
    defaultText: String(DEFAULT_PUSH_SETTINGS.timeoutSeconds),
  },
  {
    flags: "--stall-timeout <seconds>",
    description: "abort and retry a request when no bytes move for this long",
    kind: "number",
    commands: ALL,
    min: 1,
    defaultText: String(DEFAULT_PUSH_SETTINGS.stallTimeoutSeconds),
  },
  {
    flags: "--large-layer-threshold <bytes>",
    description: "layers larger than this go up in chunks",
    kind: "number",
    commands: ARCHIVE_READERS,
    min: 1,
    defaultText: String(DEFAULT_PUSH_SETTINGS.largeLayerThreshold),
  },
  {
    flags: "--max-concurrent <n>",
    description: "parallel blob transfers",
    kind: "number",
    commands: ALL,
    min: 1,
    defaultText: String(DEFAULT_PUSH_SETTINGS.maxConcurrent),
  },
  {
    flags: "--retry-attempts <n>",
    description: "retries of failures in a row (cut connections, stalls, HTTP 500; 0: none); " +
      `a registry that refuses connections or answers 429/502-504 is waited for up to ${
        OUTAGE_BUDGET_MS / 1000
      } s`,
    kind: "number",
    commands: ALL,
    min: 0,
    defaultText: String(DEFAULT_PUSH_SETTINGS.retryAttempts),
  },
  {
    flags: "--compression <kind>",
    description: "compression for uncompressed layers: none, gzip or zstd " +
      "(compressed layers go up as they are)",
    kind: "string",
    commands: ARCHIVE_READERS,
    defaultText: DEFAULT_PUSH_SETTINGS.compression,
  },
  {
    flags: "--format <kind>",
    description: "manifest media types: auto (the archive's own; Docker's when the registry " +
      "refuses OCI), oci or docker",
    kind: "string",
    commands: PUSH,
    defaultText: "auto",
  },
  {
    flags: "--attestations <policy>",
    description: "BuildKit attestation manifests: keep (left out only when the registry refuses " +
      "them) or drop",
    kind: "string",
    commands: PUSH,
    defaultText: "keep",
  },
  {
    flags: "--image <name:tag>",
    description: "image to push from a multi-image archive or a containerd namespace",
    kind: "string",
    commands: PUSH,
  },
  {
    flags: "--mount-from <repository>",
    description: "repository on the same registry to mount existing blobs from",
    kind: "string",
    commands: PUSH,
  },
  {
    flags: "--skip-tls",
    description: "do not verify TLS certificates",
    kind: "boolean",
    commands: ALL,
  },
  {
    flags: "--ca-cert <file>",
    description: "trust an extra PEM CA certificate",
    kind: "list",
    commands: ALL,
  },
  {
    flags: "--dry-run",
    description: "read, verify and plan; write nothing",
    kind: "boolean",
    commands: ALL,
  },
  {
    flags: "--skip-existing",
    description: "skip blobs the registry has (the default; kept for compatibility)",
    kind: "boolean",
    commands: PUSH,
  },
  {
    flags: "--force-upload",
    description: "upload blobs even when the registry has them",
    kind: "boolean",
    commands: PUSH,
  },
  {
    flags: "--no-cache",
    description: "ignore the local layer cache, resume state and learnt chunk size",
    kind: "boolean",
    commands: ARCHIVE_READERS,
  },
  {
    flags: "--json",
    description: "newline-delimited JSON events on stdout (ls: one JSON document)",
    kind: "boolean",
    commands: [...ALL, "ls"],
  },
  {
    flags: "--verbose",
    description: "show HTTP requests, retries and registry error bodies",
    kind: "boolean",
    commands: ALL,
  },
  { flags: "--quiet", description: "print errors only", kind: "boolean", commands: ALL },
];

/** The flags `command` takes, in table order. */
export function flagsOf(command: CommandName): FlagSpec[] {
  return FLAGS.filter((spec) => spec.commands.includes(command));
}

/** The long name of a flag, without dashes (`max-concurrent`). */
export function longName(spec: FlagSpec): string {
  const match = spec.flags.match(/--([a-z-]+)/);
  if (!match?.[1]) {
    throw new PusherError("internal", `flag without a long name: ${spec.flags}`);
  }
  return match[1];
}
