/**
 * Choosing one image of a multi-image archive by name: `name:tag` as given, tolerant of
 * `docker.io/library/` prefixes, of a missing `:latest`, and of OCI `ref.name` annotations that
 * hold a bare tag. An image can also be chosen by digest.
 *
 * @module
 */

import { PusherError } from "../errors.ts";

/** One image an archive offers. */
export interface Candidate<T> {
  /** Full names (`repo:tag`), from `RepoTags` or `io.containerd.image.name`. */
  names: string[];
  /** OCI `org.opencontainers.image.ref.name` values (often a bare tag). */
  refNames: string[];
  /** Digests the image can be chosen by (manifest digest, config digest). */
  digests: string[];
  /** How the image is shown when it has no names. */
  fallbackLabel: string;
  /** The image itself. */
  value: T;
}

/** A reference in canonical form: `docker.io/library/app:latest`. */
export function canonicalReference(reference: string): string {
  let rest = reference.trim();
  let digest = "";
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at);
    rest = rest.slice(0, at);
  }
  let tag = "";
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  let domain = "docker.io";
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      domain = first === "index.docker.io" ? "docker.io" : first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === "docker.io" && !path.includes("/")) path = `library/${path}`;
  if (tag === "" && digest === "") tag = "latest";
  return `${domain}/${path}${tag === "" ? "" : `:${tag}`}${digest}`;
}

function tagOf(reference: string): string | undefined {
  const withoutDigest = reference.split("@")[0] ?? "";
  const colon = withoutDigest.lastIndexOf(":");
  return colon > withoutDigest.lastIndexOf("/") ? withoutDigest.slice(colon + 1) : undefined;
}

function isBareTag(refName: string): boolean {
  return !/[/:@]/.test(refName);
}

/** A name as docker shows it: without `docker.io/` and `library/`. */
export function familiarName(name: string): string {
  return name.replace(/^(?:index\.)?docker\.io\//, "").replace(/^library\/(?=[^/]+$)/, "");
}

/** How a candidate is listed in messages. */
function label<T>(candidate: Candidate<T>): string {
  const names = candidate.names.length > 0 ? candidate.names : candidate.refNames;
  return names.length > 0 ? names.map(familiarName).join(" = ") : candidate.fallbackLabel;
}

function matchingStages<T>(requested: string): Array<(candidate: Candidate<T>) => boolean> {
  const canonical = canonicalReference(requested);
  const requestedTag = tagOf(requested);
  const digest = requested.replace(/^.*@/, "");
  return [
    (c) => c.names.includes(requested) || c.refNames.includes(requested),
    (c) =>
      [...c.names, ...c.refNames.filter((ref) => !isBareTag(ref))].some((name) =>
        canonicalReference(name) === canonical
      ),
    // A bare-tag ref name stands for the whole name only when the image has no full name.
    (c) =>
      requestedTag !== undefined && c.names.length === 0 &&
      c.refNames.some((ref) => isBareTag(ref) && ref === requestedTag),
    (c) => c.digests.some((d) => d === digest || d.slice("sha256:".length) === digest),
  ];
}

/** A word as a POSIX shell reads it back: as it is when plain, single-quoted otherwise. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The hint of a refusal to guess among several images: list them with `ls`, then choose. */
function listThenChooseHint(lsArguments: readonly string[] | undefined): string {
  const shown = lsArguments === undefined ? "FILE" : lsArguments.map(shellWord).join(" ");
  return `run "docker-image-pusher ls ${shown}" to list them, then pass --image NAME:TAG`;
}

/**
 * Picks the image to push. Without `requested`, the archive must hold exactly one image; otherwise
 * a usage error lists what it holds and points to `ls` (run with `lsArguments`, `FILE` when
 * absent). With `requested`, the first matching stage (exact name, canonical name, bare OCI tag,
 * digest) must match exactly one image.
 */
export function selectCandidate<T>(
  candidates: Candidate<T>[],
  requested: string | undefined,
  lsArguments?: readonly string[],
): T {
  const listing = candidates.map(label).join(", ");
  const first = candidates[0];
  if (first === undefined) throw new PusherError("input", "the archive holds no images");
  if (requested === undefined || requested === "") {
    if (candidates.length === 1) return first.value;
    throw new PusherError(
      "usage",
      `the archive holds ${candidates.length} images (${listing}); choose one with --image`,
      { hint: listThenChooseHint(lsArguments) },
    );
  }
  for (const stage of matchingStages<T>(requested)) {
    const matches = candidates.filter(stage);
    const match = matches[0];
    if (match === undefined) continue;
    if (matches.length === 1) return match.value;
    throw new PusherError(
      "usage",
      `--image ${requested} matches ${matches.length} images in the archive (${
        matches.map(label).join(", ")
      })`,
      { hint: "give the full name:tag, or the manifest digest" },
    );
  }
  throw new PusherError("usage", `image ${requested} is not in the archive; it holds: ${listing}`);
}
