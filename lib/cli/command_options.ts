/**
 * Turns a command's effective flag values into the options of `push()`, `pull()`, `copy()`,
 * `sync()` or `ls`, checking what the flags alone cannot (missing values, flags that exclude each other).
 *
 * @module
 */

import type { BundlePushOptions } from "../bundle/options.ts";
import type { CopyOptions } from "../copy/options.ts";
import { PusherError } from "../errors.ts";
import type { Credentials } from "../credentials/credentials.ts";
import type { Compression } from "../oci/media_types.ts";
import {
  type AttestationPolicy,
  DEFAULT_PUSH_SETTINGS,
  type ManifestFormat,
  type PushOptions,
} from "../options.ts";
import type { PullOptions } from "../pull/options.ts";
import { DEFAULT_SYNC_SETTINGS, type SyncOptions } from "../sync/options.ts";
import { DEFAULT_NAMESPACE } from "../image/containerd_namespace.ts";
import type { FlagReader } from "./flag_reader.ts";
import type { ListOptions } from "./list_command.ts";

const COMPRESSIONS: readonly Compression[] = ["none", "gzip", "zstd"];
const FORMATS: readonly ManifestFormat[] = ["auto", "oci", "docker"];
const ATTESTATION_POLICIES: readonly AttestationPolicy[] = ["keep", "drop"];

/** The settings push, pull and copy share. */
type SharedSettings = Pick<
  PushOptions,
  | "timeoutSeconds"
  | "stallTimeoutSeconds"
  | "maxConcurrent"
  | "retryAttempts"
  | "skipTls"
  | "caCertFiles"
  | "dryRun"
>;

function sharedSettings(flags: FlagReader): SharedSettings {
  if (flags.flag("quiet") && flags.flag("verbose")) throw flags.together("quiet", "verbose");
  return {
    timeoutSeconds: flags.number("timeout", DEFAULT_PUSH_SETTINGS.timeoutSeconds),
    stallTimeoutSeconds: flags.number("stall-timeout", DEFAULT_PUSH_SETTINGS.stallTimeoutSeconds),
    maxConcurrent: flags.number("max-concurrent", DEFAULT_PUSH_SETTINGS.maxConcurrent),
    retryAttempts: flags.number("retry-attempts", DEFAULT_PUSH_SETTINGS.retryAttempts),
    skipTls: flags.flag("skip-tls"),
    caCertFiles: flags.list("ca-cert"),
    dryRun: flags.flag("dry-run"),
  };
}

/**
 * `-u/-p` (or `--password-stdin`, read later): explicit credentials when both are given.
 * `stdinTaken` names the flag that already reads stdin, if any.
 */
function explicitCredentials(
  flags: FlagReader,
  stdinTaken: string | undefined,
): Credentials | undefined {
  const username = flags.text("username");
  const password = flags.text("password");
  if (flags.flag("password-stdin")) {
    if (password !== undefined) throw flags.together("password", "password-stdin");
    if (stdinTaken !== undefined) {
      throw new PusherError(
        "usage",
        `${flags.label("password-stdin")} cannot be used with ${stdinTaken} (both read stdin)`,
      );
    }
  }
  if (password !== undefined && username === undefined) {
    throw new PusherError("usage", `${flags.label("password")} needs --username`);
  }
  return username !== undefined && password !== undefined ? { username, password } : undefined;
}

/** A containerd store to read: its root and namespace. */
interface ContainerdSource {
  root: string;
  namespace: string;
}

/**
 * `--containerd-root` and `--namespace`: the store to read, or undefined when no root is given
 * (then a `--namespace` typed on the command line is a usage error; one from the environment is
 * ignored, so a shell that sets it for k3s can still push archives).
 */
function containerdSource(flags: FlagReader): ContainerdSource | undefined {
  const root = flags.text("containerd-root");
  if (root === undefined) {
    if (flags.fromCommandLine("namespace")) {
      throw new PusherError("usage", "--namespace needs --containerd-root", {
        hint:
          "pass --containerd-root /var/lib/containerd (k3s: /var/lib/rancher/k3s/agent/containerd)",
      });
    }
    return undefined;
  }
  return { root, namespace: flags.text("namespace") ?? DEFAULT_NAMESPACE };
}

/** The options of `ls [FILE]`: an archive, or the containerd store the flags name. */
export function listOptions(flags: FlagReader, file: string | undefined): ListOptions {
  const store = containerdSource(flags);
  const json = flags.flag("json");
  if (store !== undefined) {
    if (file !== undefined) {
      throw new PusherError(
        "usage",
        `ls lists an archive or ${flags.label("containerd-root")}, not both`,
      );
    }
    return { source: { kind: "containerd", ...store }, json };
  }
  if (file === undefined) {
    throw new PusherError("usage", "missing FILE: which archive should be listed?", {
      hint: "pass an archive (docker-image-pusher ls image.tar), or --containerd-root DIR",
    });
  }
  return { source: { kind: "archive", file }, json };
}

/**
 * What a push reads: the archive of `-f`, or the containerd store of `--containerd-root` (then
 * `file` is the label `containerd:DIR` that progress lines show).
 */
function pushSource(flags: FlagReader): { file: string; store?: ContainerdSource } {
  const store = containerdSource(flags);
  const archive = flags.text("file");
  if (store !== undefined) {
    if (archive !== undefined) throw flags.together("file", "containerd-root");
    return { file: `containerd:${store.root}`, store };
  }
  if (archive === undefined) {
    throw new PusherError("usage", "missing --file: which archive should be pushed?", {
      hint: "pass -f image.tar (or -f - to read stdin, or --containerd-root DIR --image NAME)",
    });
  }
  return { file: archive };
}

/** `--compression`: none, gzip or zstd. */
function compressionSetting(flags: FlagReader): Compression {
  const compression = flags.text("compression") ?? DEFAULT_PUSH_SETTINGS.compression;
  if (!COMPRESSIONS.includes(compression as Compression)) {
    throw new PusherError(
      "usage",
      `${flags.label("compression")} must be none, gzip or zstd, got ${
        JSON.stringify(compression)
      }`,
    );
  }
  return compression as Compression;
}

/** The options of a push (the flat form and `push`). */
export function pushOptions(flags: FlagReader): PushOptions {
  if (flags.flag("flatten") && !flags.flag("all")) {
    throw new PusherError("usage", `${flags.label("flatten")} needs --all`, {
      hint: "--flatten names the images of push --all under its prefix",
    });
  }
  const { file, store } = pushSource(flags);
  const targets = flags.list("repository-url");
  if (targets.length === 0) {
    throw new PusherError("usage", "missing --repository-url: where should the image go?", {
      hint: "pass -r https://registry.example.com/project/app:tag",
    });
  }
  const compression = compressionSetting(flags);
  const format = flags.text("format") ?? "auto";
  if (!FORMATS.includes(format as ManifestFormat)) {
    throw new PusherError(
      "usage",
      `${flags.label("format")} must be auto, oci or docker, got ${JSON.stringify(format)}`,
    );
  }
  const attestations = flags.text("attestations") ?? "keep";
  if (!ATTESTATION_POLICIES.includes(attestations as AttestationPolicy)) {
    throw new PusherError(
      "usage",
      `${flags.label("attestations")} must be keep or drop, got ${JSON.stringify(attestations)}`,
    );
  }
  if (format === "docker" && compression !== "gzip" && flags.text("compression") !== undefined) {
    throw new PusherError(
      "usage",
      `${flags.label("format")} docker and ${
        flags.label("compression")
      } ${compression} cannot be used together`,
      { hint: "Docker media types have gzip layers only: leave --compression out" },
    );
  }
  const shared = sharedSettings(flags);
  if (flags.flag("force-upload") && flags.flag("dry-run")) {
    throw flags.together("force-upload", "dry-run");
  }
  const credentials = explicitCredentials(
    flags,
    file === "-" ? `${flags.label("file")} -` : undefined,
  );
  const options: PushOptions = {
    file,
    targets,
    ...shared,
    largeLayerThreshold: flags.number(
      "large-layer-threshold",
      DEFAULT_PUSH_SETTINGS.largeLayerThreshold,
    ),
    forceUpload: flags.flag("force-upload"),
    compression,
    noCache: flags.flag("no-cache"),
    format: format as ManifestFormat,
    attestations: attestations as AttestationPolicy,
  };
  if (store !== undefined) {
    options.containerdRoot = store.root;
    options.namespace = store.namespace;
  }
  const image = flags.text("image");
  if (image !== undefined) options.image = image;
  const mountFrom = flags.text("mount-from");
  if (mountFrom !== undefined) options.mountFrom = mountFrom;
  if (credentials !== undefined) options.credentials = credentials;
  return options;
}

/**
 * The options of `push --all -f FILE -r PREFIX [--flatten]`: a push's, the one `-r` being the
 * prefix every image of the archive goes under.
 */
export function bundlePushOptions(flags: FlagReader): BundlePushOptions {
  const all = flags.label("all");
  if (flags.text("containerd-root") !== undefined) throw flags.together("all", "containerd-root");
  if (flags.text("image") !== undefined) throw flags.together("all", "image");
  const { targets, image: _image, containerdRoot: _root, namespace: _namespace, ...push } =
    pushOptions(flags);
  if (push.file === "-") {
    throw new PusherError("usage", `${all} reads the archive once per image, not from stdin`, {
      hint: "save the archive to a file and pass -f FILE",
    });
  }
  const prefix = targets[0];
  if (prefix === undefined || targets.length > 1) {
    throw new PusherError(
      "usage",
      `${all} takes one ${flags.label("repository-url")}: the prefix every image goes under`,
      { hint: "pass -r registry.example.com/mirror" },
    );
  }
  return { ...push, prefix, flatten: flags.flag("flatten") };
}

/** The options of `pull [SOURCE...] [--from LIST] -o FILE`. */
export function pullOptions(flags: FlagReader, sources: string[]): PullOptions {
  const output = flags.text("output");
  if (output === undefined) {
    throw new PusherError("usage", "missing --output: which archive should be written?", {
      hint: "pass -o images.tar (or -o - for stdout)",
    });
  }
  if (output === "-" && flags.flag("json")) {
    throw new PusherError(
      "usage",
      `${flags.label("output")} - and ${flags.label("json")} cannot be used together (both ` +
        "write to stdout)",
    );
  }
  const options: PullOptions = {
    sources,
    output,
    platforms: flags.list("platform"),
    ...sharedSettings(flags),
  };
  const from = flags.text("from");
  if (from !== undefined) options.from = from;
  if (sources.length === 0 && from === undefined) {
    throw new PusherError("usage", "missing SOURCE: which images should be pulled?", {
      hint: "name images (pull registry.example.com/app:1 -o app.tar) or a list (--from LIST)",
    });
  }
  const excludeFrom = flags.text("exclude-from");
  if (excludeFrom !== undefined) options.excludeFrom = excludeFrom;
  if (flags.flag("flatten")) {
    if (excludeFrom === undefined) {
      throw new PusherError(
        "usage",
        `${flags.label("flatten")} names the mirror of ${flags.label("exclude-from")}; ` +
          "pass both, or neither",
      );
    }
    options.flatten = true;
  }
  const credentials = explicitCredentials(flags, undefined);
  if (credentials !== undefined) options.credentials = credentials;
  return options;
}

/** The options of `copy SOURCE TARGET`. */
export function copyOptions(flags: FlagReader, source: string, target: string): CopyOptions {
  const options: CopyOptions = {
    source,
    target,
    platforms: flags.list("platform"),
    ...sharedSettings(flags),
  };
  const credentials = explicitCredentials(flags, undefined);
  if (credentials !== undefined) options.credentials = credentials;
  const username = flags.text("src-username");
  const password = flags.text("src-password");
  if (password !== undefined && username === undefined) {
    throw new PusherError("usage", `${flags.label("src-password")} needs --src-username`);
  }
  if (username !== undefined && password !== undefined) {
    options.sourceCredentials = { username, password };
  }
  return options;
}

/** The options of `sync --from LIST --to PREFIX`. */
export function syncOptions(flags: FlagReader): SyncOptions {
  const from = flags.text("from");
  if (from === undefined) {
    throw new PusherError("usage", "missing --from: which LIST of images should be synced?", {
      hint: "pass --from images.txt (one image per line)",
    });
  }
  const to = flags.text("to");
  if (to === undefined) {
    throw new PusherError("usage", "missing --to: under which prefix should the images land?", {
      hint: "pass --to registry.example.com/mirror",
    });
  }
  const options: SyncOptions = {
    ...DEFAULT_SYNC_SETTINGS,
    from,
    to,
    ...sharedSettings(flags),
    flatten: flags.flag("flatten"),
    parallelImages: flags.number("parallel-images", DEFAULT_SYNC_SETTINGS.parallelImages),
    compression: compressionSetting(flags),
    largeLayerThreshold: flags.number(
      "large-layer-threshold",
      DEFAULT_SYNC_SETTINGS.largeLayerThreshold,
    ),
    noCache: flags.flag("no-cache"),
  };
  const credentials = explicitCredentials(flags, undefined);
  if (credentials !== undefined) options.credentials = credentials;
  return options;
}
