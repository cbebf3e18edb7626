/**
 * One registry client per target repository of a push, sharing one transport (see
 * `registry/connect.ts`).
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { Redactor } from "../logging/redact.ts";
import type { PushOptions } from "../options.ts";
import type { RegistryClient, RepositoryAccess } from "../registry/client.ts";
import { connectClient, openTransport } from "../registry/connect.ts";
import type { Transport } from "../registry/http.ts";
import type { TargetRepository } from "./targets.ts";

/** A target repository with its client. */
export interface RepositoryClient extends TargetRepository {
  /** The client. */
  client: RegistryClient;
  /** The repository path, e.g. `project/app`. */
  repository: string;
  /** `registry/repository`, as shown to the user. */
  name: string;
}

/** The settings {@link createClients} reads (a push's, a pull's or a copy's). */
export type ClientSettings = Pick<PushOptions, "caCertFiles" | "skipTls" | "credentials">;

/**
 * Creates the transport and one client per repository: `push` access (the default) for targets,
 * `pull` for sources. The secrets of every credentials resolved are registered with `redactor`
 * before any request is made.
 */
export async function createClients(
  targets: readonly TargetRepository[],
  options: ClientSettings,
  redactor: Redactor,
  access: RepositoryAccess = "push",
): Promise<{ clients: RepositoryClient[]; transport: Transport }> {
  if (targets.length === 0) throw new PusherError("usage", "no repository given");
  const transport = await openTransport(
    targets.map((target) => target.reference),
    options,
    redactor,
  );
  const clients: RepositoryClient[] = [];
  for (const target of targets) {
    const { reference } = target;
    clients.push({
      ...target,
      repository: reference.repository,
      name: `${reference.registry}/${reference.repository}`,
      client: await connectClient(reference, options.credentials, transport, access, redactor),
    });
  }
  return { clients, transport };
}
