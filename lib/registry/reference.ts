/**
 * Parses the push target given with `-r`: a URL (`https://host[:port]/path/name:tag`, `http://`
 * for plain HTTP) or a Docker-style reference (`host[:port]/path/name[:tag][@digest]`), following
 * Docker's normalisation rules.
 *
 * @module
 */

import { PusherError } from "../errors.ts";

/** A parsed push target. */
export interface Reference {
  /** The registry as the user and credential stores name it, e.g. `docker.io`, `localhost:5000`. */
  registry: string;
  /** Base URL of the registry API (origin only), e.g. `https://registry-1.docker.io`. */
  apiBase: URL;
  /** True when the registry is spoken to over plain HTTP. */
  insecureHttp: boolean;
  /** Repository path, e.g. `library/ubuntu`. */
  repository: string;
  /** Tag; `latest` when neither a tag nor a digest was given. */
  tag?: string;
  /** Manifest digest when the reference pins one (`name@sha256:…`). */
  digest?: string;
}

/** Docker Hub as users and credential stores name it. */
export const DOCKER_HUB_REGISTRY = "docker.io";
/** The host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";
/** Tag used when a reference names neither a tag nor a digest. */
export const DEFAULT_TAG = "latest";

const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB_REGISTRY, "index.docker.io", DOCKER_HUB_API_HOST]);
const MAX_REPOSITORY_LENGTH = 255;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::([0-9]+))?$`,
);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;
const USAGE_HINT =
  "expected host[:port]/path/name[:tag][@digest] or https://host[:port]/path/name:tag";

/**
 * Parses a `-r` value into a {@link Reference}.
 *
 * Without a registry host the reference points at Docker Hub (`docker.io`, API host
 * `registry-1.docker.io`) and one-component names get `library/`. The first path component is a
 * registry host when it is `localhost`, contains `.` or `:`, or has upper-case letters. A bare
 * reference to a loopback host (`localhost`, `127.x.x.x`, `[::1]`) is spoken to over plain HTTP,
 * like go-containerregistry does; write `https://localhost:5000/…` to force TLS.
 *
 * @throws {PusherError} kind `usage` naming the value when it is not a valid reference.
 */
export function parseReference(value: string): Reference {
  const trimmed = value.trim();
  if (trimmed === "") throw invalid(value, "the reference is empty");
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(trimmed);
  if (scheme !== null) return parseUrlReference(value, trimmed, (scheme[1] ?? "").toLowerCase());
  return parseBareReference(value, trimmed);
}

/** Formats a reference as `registry/repository[:tag][@digest]`, e.g. `docker.io/library/alpine:3`. */
export function formatReference(reference: Reference): string {
  let text = `${reference.registry}/${reference.repository}`;
  if (reference.tag !== undefined) text += `:${reference.tag}`;
  if (reference.digest !== undefined) text += `@${reference.digest}`;
  return text;
}

/** True when `value` is a valid tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`). */
export function isValidTag(value: string): boolean {
  return TAG.test(value);
}

/** True when `value` is a valid repository path (lower-case components, ≤ 255 characters). */
export function isValidRepository(value: string): boolean {
  return repositoryProblem(value) === undefined;
}

function parseUrlReference(original: string, text: string, scheme: string): Reference {
  if (scheme !== "http" && scheme !== "https") {
    throw invalid(original, `unsupported scheme "${scheme}://" (use https:// or http://)`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(original, "it is not a valid URL");
  }
  if (url.username !== "" || url.password !== "") {
    throw new PusherError(
      "usage",
      `invalid image reference "${redactUserInfo(url)}": credentials in the URL are not supported`,
      { hint: "pass them with --username and --password" },
    );
  }
  if (url.search !== "" || url.hash !== "") {
    throw invalid(original, "a query or fragment is not allowed");
  }
  const path = url.pathname.replace(/^\/+/, "");
  if (path.includes("%")) throw invalid(original, "the path contains characters a name can't hold");
  const host = url.host;
  const { repository, tag, digest } = splitNameTagDigest(original, path);
  return build(original, host, repository, tag, digest, scheme === "http");
}

function parseBareReference(original: string, text: string): Reference {
  const slash = text.indexOf("/");
  let host = DOCKER_HUB_REGISTRY;
  let remainder = text;
  if (slash !== -1) {
    const first = text.slice(0, slash);
    if (
      first === "localhost" || first.includes(".") || first.includes(":") ||
      first !== first.toLowerCase()
    ) {
      host = first;
      remainder = text.slice(slash + 1);
    }
  }
  const { repository, tag, digest } = splitNameTagDigest(original, remainder);
  return build(original, host, repository, tag, digest, isLoopbackHost(host));
}

interface NameParts {
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

function splitNameTagDigest(original: string, text: string): NameParts {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(original, `"${digest}" is not a valid digest`);
    if (digest.startsWith("sha256:") && !SHA256_DIGEST.test(digest)) {
      throw invalid(original, `"${digest}" is not a sha256 digest (64 lower-case hex digits)`);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon !== -1 && colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw invalid(
        original,
        `"${tag}" is not a valid tag (letters, digits, _ . -, up to 128, not starting with . or -)`,
      );
    }
  }
  return { repository: rest, tag, digest };
}

function build(
  original: string,
  rawHost: string,
  rawRepository: string,
  tag: string | undefined,
  digest: string | undefined,
  insecureHttp: boolean,
): Reference {
  const hostMatch = HOST.exec(rawHost);
  if (hostMatch === null) throw invalid(original, `"${rawHost}" is not a valid registry host`);
  const port = hostMatch[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw invalid(original, `port ${port} is out of range`);
  }
  const lowerHost = rawHost.toLowerCase();
  const dockerHub = DOCKER_HUB_ALIASES.has(lowerHost);
  const registry = dockerHub ? DOCKER_HUB_REGISTRY : lowerHost;
  const apiHost = dockerHub ? DOCKER_HUB_API_HOST : lowerHost;
  const repository = dockerHub && !rawRepository.includes("/")
    ? `library/${rawRepository}`
    : rawRepository;
  const problem = repositoryProblem(repository);
  if (problem !== undefined) throw invalid(original, problem);
  const apiBase = new URL(`${insecureHttp ? "http" : "https"}://${apiHost}`);
  const reference: Reference = { registry, apiBase, insecureHttp, repository };
  if (tag !== undefined) reference.tag = tag;
  else if (digest === undefined) reference.tag = DEFAULT_TAG;
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

function repositoryProblem(repository: string): string | undefined {
  if (repository === "" || repository === "library/") return "the repository name is empty";
  if (repository.length > MAX_REPOSITORY_LENGTH) {
    return `the repository name is longer than ${MAX_REPOSITORY_LENGTH} characters`;
  }
  if (repository !== repository.toLowerCase()) {
    return `repository name "${repository}" must be lower-case`;
  }
  for (const component of repository.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      return component === ""
        ? `repository name "${repository}" has an empty path component`
        : `"${component}" in "${repository}" is not a valid repository path component ` +
          "(lower-case letters and digits, separated by . _ __ or -)";
    }
  }
  return undefined;
}

function isLoopbackHost(host: string): boolean {
  const name = host.replace(/:[0-9]+$/, "").toLowerCase();
  return name === "localhost" || name === "[::1]" || /^127(?:\.[0-9]{1,3}){3}$/.test(name);
}

function redactUserInfo(url: URL): string {
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  return copy.href;
}

function invalid(value: string, reason: string): PusherError {
  return new PusherError("usage", `invalid image reference "${value}": ${reason}`, {
    hint: USAGE_HINT,
  });
}
