/**
 * The look before a sync line moves anything: one manifest `HEAD` of the source reference (a
 * registry source) and one of the target tag, sent together — never a `GET`, which Docker Hub
 * counts against the pull quota. Clients come from the sync's pool, shared with the transfers; a
 * `HEAD` that found a manifest shows that its registry answers as one, and counts as the pool's
 * registry check, so a transfer of the line sends no `GET /v2/` of its own.
 *
 * @module
 */

import type { Credentials } from "../credentials/credentials.ts";
import { PusherError } from "../errors.ts";
import { type RequestContext, retrying } from "../transfer/retrying_request.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { ClientPool } from "../registry/client_pool.ts";
import { formatReference, parseReference, type Reference } from "../registry/reference.ts";
import type { SyncLine } from "./list_file.ts";

/** What the two `HEAD`s found. */
export interface LineCheck {
  /** The source's manifest digest (registry sources whose registry sent it). */
  sourceDigest?: string;
  /** The digest the target tag names now; absent when the tag does not exist. */
  targetDigest?: string;
}

/** The tag or digest a reference names in its repository. */
function manifestName(reference: Reference): string {
  return reference.digest ?? reference.tag ?? "latest";
}

/** Explicit credentials of a repository, if any (else config files are consulted). */
export type CredentialsFor = (reference: Reference) => Credentials | undefined;

/**
 * `HEAD`s the line's source (registry sources) and its target tag, both at once. A target the
 * registry refuses to show (`auth`) counts as absent, with a warning: the transfer tells whether
 * it may be written. The target's client is the one a transfer of the line writes with (its token
 * asks for push and pull at once), so a line that moves fetches no second token.
 *
 * @throws {PusherError} kind `registry` when the source does not exist; the registry's kinds
 * (`auth`, `network`, …) when a `HEAD` fails.
 */
export async function checkLine(
  ctx: RequestContext,
  clients: ClientPool,
  credentialsFor: CredentialsFor,
  line: SyncLine,
): Promise<LineCheck> {
  const [sourceDigest, targetDigest] = await Promise.all([
    line.source.kind === "registry"
      ? sourceLookup(ctx, clients, credentialsFor, parseReference(line.source.reference))
      : undefined,
    targetLookup(ctx, clients, credentialsFor, parseReference(line.target)),
  ]);
  const check: LineCheck = {};
  if (sourceDigest !== undefined) check.sourceDigest = sourceDigest;
  if (targetDigest !== undefined) check.targetDigest = targetDigest;
  return check;
}

/** The digest of a registry source (when the registry sent one); a missing source is an error. */
async function sourceLookup(
  ctx: RequestContext,
  clients: ClientPool,
  credentialsFor: CredentialsFor,
  reference: Reference,
): Promise<string | undefined> {
  const client = await clients.client(reference, "pull", credentialsFor(reference));
  const head = await retrying(
    ctx,
    `manifest ${formatReference(reference)}`,
    (signal) => client.headManifest(manifestName(reference), signal),
  );
  if (head === undefined) {
    throw new PusherError("registry", `the source ${formatReference(reference)} does not exist`);
  }
  await answeredAsRegistry(clients, reference);
  return reference.digest ?? head.digest;
}

/** The digest the target tag names now; `undefined` when it does not exist or can't be seen. */
async function targetLookup(
  ctx: RequestContext,
  clients: ClientPool,
  credentialsFor: CredentialsFor,
  target: Reference,
): Promise<string | undefined> {
  const client = await clients.client(target, "push", credentialsFor(target));
  let head: Awaited<ReturnType<RegistryClient["headManifest"]>>;
  try {
    head = await retrying(
      ctx,
      `manifest ${formatReference(target)}`,
      (signal) => client.headManifest(manifestName(target), signal),
    );
  } catch (error) {
    // Some registries (Aliyun ACR) deny a look at a repository that does not exist yet; the
    // transfer finds out whether pushing is allowed.
    if (!(error instanceof PusherError) || error.kind !== "auth") throw error;
    ctx.emit({
      type: "warning",
      message: `could not look up ${formatReference(target)} (${error.message}): transferring`,
    });
    return undefined;
  }
  if (head === undefined) return undefined;
  await answeredAsRegistry(clients, target);
  return target.digest ?? head.digest;
}

/**
 * Records that `reference`'s registry served a manifest to the run's client: the registry check
 * (`GET /v2/`) would learn nothing more, so it is settled as passed.
 */
async function answeredAsRegistry(clients: ClientPool, reference: Reference): Promise<void> {
  await clients.checkRegistry(reference, () => Promise.resolve());
}
