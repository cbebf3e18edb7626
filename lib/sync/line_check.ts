/**
 * The look before a sync line moves anything: one manifest `HEAD` of the source reference (a
 * registry source) and one of the target tag — never a `GET`, which Docker Hub counts against the
 * pull quota. Clients are made once per repository and share the sync's transport.
 *
 * @module
 */

import type { Credentials } from "../credentials/credentials.ts";
import { PusherError } from "../errors.ts";
import type { Redactor } from "../logging/redact.ts";
import { type RequestContext, retrying } from "../transfer/retrying_request.ts";
import type { RegistryClient } from "../registry/client.ts";
import { connectClient } from "../registry/connect.ts";
import type { Transport } from "../registry/http.ts";
import { formatReference, parseReference, type Reference } from "../registry/reference.ts";
import type { SyncLine } from "./list_file.ts";

/** What the two `HEAD`s found. */
export interface LineCheck {
  /** The source's manifest digest (registry sources whose registry sent it). */
  sourceDigest?: string;
  /** The digest the target tag names now; absent when the tag does not exist. */
  targetDigest?: string;
}

/** Read-only clients of the repositories a sync looks at, made on first use. */
export class LookupClients {
  readonly #transport: Transport;
  readonly #redactor: Redactor;
  readonly #credentialsFor: (reference: Reference) => Credentials | undefined;
  readonly #clients = new Map<string, Promise<RegistryClient>>();

  /** Clients over `transport`; `credentialsFor` gives a repository's explicit credentials. */
  constructor(
    transport: Transport,
    redactor: Redactor,
    credentialsFor: (reference: Reference) => Credentials | undefined,
  ) {
    this.#transport = transport;
    this.#redactor = redactor;
    this.#credentialsFor = credentialsFor;
  }

  /** The client of `reference`'s repository (pull access). */
  client(reference: Reference): Promise<RegistryClient> {
    const key = `${reference.apiBase.href} ${reference.repository}`;
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = connectClient(
        reference,
        this.#credentialsFor(reference),
        this.#transport,
        "pull",
        this.#redactor,
      );
      this.#clients.set(key, client);
    }
    return client;
  }
}

/** The tag or digest a reference names in its repository. */
function manifestName(reference: Reference): string {
  return reference.digest ?? reference.tag ?? "latest";
}

/**
 * `HEAD`s the line's source (registry sources) and its target tag. A target the registry refuses
 * to show (`auth`) counts as absent, with a warning: the transfer tells whether it may be written.
 *
 * @throws {PusherError} kind `registry` when the source does not exist; the registry's kinds
 * (`auth`, `network`, …) when a `HEAD` fails.
 */
export async function checkLine(
  ctx: RequestContext,
  clients: LookupClients,
  line: SyncLine,
): Promise<LineCheck> {
  const check: LineCheck = {};
  if (line.source.kind === "registry") {
    const reference = parseReference(line.source.reference);
    const client = await clients.client(reference);
    const head = await retrying(
      ctx,
      `manifest ${formatReference(reference)}`,
      (signal) => client.headManifest(manifestName(reference), signal),
    );
    if (head === undefined) {
      throw new PusherError("registry", `the source ${formatReference(reference)} does not exist`);
    }
    const digest = reference.digest ?? head.digest;
    if (digest !== undefined) check.sourceDigest = digest;
  }
  const target = parseReference(line.target);
  const client = await clients.client(target);
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
    return check;
  }
  if (head !== undefined) {
    const digest = target.digest ?? head.digest;
    if (digest !== undefined) check.targetDigest = digest;
  }
  return check;
}
