/**
 * The push's targets: every `-r` parsed, grouped by repository, each with its registry client.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { parseReference, type Reference } from "../registry/reference.ts";

/** One repository to push to, with the tags (or digest) it gets. */
export interface TargetRepository {
  /** The first reference naming this repository (registry, repository, scheme). */
  reference: Reference;
  /** Tags to write in this repository (empty when only a digest was given). */
  tags: string[];
  /** A digest the user pinned (`name@sha256:…`): the pushed manifest must have it. */
  pinnedDigest?: string;
}

function repositoryKey(reference: Reference): string {
  return `${reference.apiBase.href}|${reference.repository}`;
}

/** Parses and groups the `-r` values; throws a usage error for a bad one. */
export function groupTargets(texts: readonly string[]): TargetRepository[] {
  const groups = new Map<string, TargetRepository>();
  for (const text of texts) {
    const reference = parseReference(text);
    const key = repositoryKey(reference);
    const group = groups.get(key) ?? { reference, tags: [] };
    if (reference.tag !== undefined && !group.tags.includes(reference.tag)) {
      group.tags.push(reference.tag);
    }
    if (reference.digest !== undefined) {
      if (group.pinnedDigest !== undefined && group.pinnedDigest !== reference.digest) {
        throw new PusherError("usage", `two different digests given for ${reference.repository}`);
      }
      group.pinnedDigest = reference.digest;
    }
    groups.set(key, group);
  }
  const result = [...groups.values()];
  const registries = new Set(result.map((group) => group.reference.apiBase.href));
  if (registries.size > 1) {
    throw new PusherError(
      "usage",
      `all -r targets must be on one registry, got ${[...registries].join(" and ")}`,
      { hint: "run the tool once per registry" },
    );
  }
  return result;
}
