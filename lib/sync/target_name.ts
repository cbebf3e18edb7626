/**
 * Where an image lands under a mirror prefix: `docker.io/library/nginx:1.27` under
 * `registry.example/mirror` becomes `registry.example/mirror/library/nginx:1.27` — the repository
 * path kept, the source's registry host dropped. With `flatten`, only the last path segment is
 * kept (`registry.example/mirror/nginx:1.27`), for registries that allow two levels only (Aliyun
 * ACR personal edition). `sync` maps its list lines with it; `push --all` maps archive names.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { parseReference, type Reference } from "../registry/reference.ts";

/** How a source name becomes a target name. */
export interface TargetNaming {
  /** `registry[/namespace…]`, or a URL of one (`https://host/namespace`). */
  prefix: string;
  /** Keep only the last path segment of the repository. */
  flatten: boolean;
}

/**
 * Checks a mirror prefix: a registry host with an optional namespace path, no tag or digest.
 * Returns it without trailing slashes.
 *
 * @throws {PusherError} kind `usage` naming the prefix.
 */
export function checkPrefix(prefix: string): string {
  const trimmed = prefix.trim().replace(/\/+$/, "");
  const invalid = (reason: string): PusherError =>
    new PusherError("usage", `invalid target prefix "${prefix}": ${reason}`, {
      hint: "expected registry[:port][/namespace], e.g. registry.example.com/mirror",
    });
  if (trimmed === "") throw invalid("it is empty");
  if (/[@]/.test(trimmed)) throw invalid("a prefix has no digest");
  const first = trimmed.replace(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//, "").split("/")[0] ?? "";
  if (first !== "localhost" && !/[.:]/.test(first)) {
    // `mirror/…` would silently mean Docker Hub: the registry is written out or it is an error.
    throw invalid(`"${first}" is not a registry host (write e.g. docker.io/${trimmed})`);
  }
  try {
    parseReference(`${trimmed}/probe`);
  } catch (error) {
    throw invalid(error instanceof Error ? error.message : String(error));
  }
  return trimmed;
}

/**
 * The target reference of `source` under the prefix: `PREFIX/<repository path>:<tag>`, or
 * `PREFIX/<last segment>:<tag>` with `flatten`. A source pinned by digest only keeps its digest
 * (`PREFIX/path@sha256:…`); one with a tag keeps the tag.
 *
 * @throws {PusherError} kind `usage` for a bad prefix, or when the result is not a valid reference.
 */
export function mirrorTarget(source: Reference, naming: TargetNaming): string {
  const prefix = checkPrefix(naming.prefix);
  const path = naming.flatten
    ? source.repository.slice(source.repository.lastIndexOf("/") + 1)
    : source.repository;
  const suffix = source.tag !== undefined ? `:${source.tag}` : `@${source.digest ?? ""}`;
  const target = `${prefix}/${path}${suffix}`;
  parseReference(target);
  return target;
}
