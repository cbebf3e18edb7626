/**
 * One registry client per target repository, sharing a transport: credentials resolved in the
 * documented order, TLS settings (extra CAs from `--ca-cert` and the `certs.d` directories), and a
 * request log for `--verbose`.
 *
 * @module
 */

import { resolveCredentials } from "../credentials/resolve.ts";
import type { RegistryCredentials } from "../credentials/types.ts";
import { PusherError } from "../errors.ts";
import { moduleLogger } from "../logging/logger.ts";
import type { PushOptions } from "../options.ts";
import { loadCaCertificates } from "../registry/ca_certs.ts";
import { RegistryClient, type RepositoryAccess } from "../registry/client.ts";
import { ANONYMOUS, type Credentials } from "../registry/credentials.ts";
import type { RequestLog } from "../registry/http.ts";
import { describeRateLimit } from "../registry/rate_limit.ts";
import { createTransport } from "../registry/transport.ts";
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

const httpLog = moduleLogger("http");
const authLog = moduleLogger("auth");

/** Maps resolved credentials to the registry client's form. */
export function clientCredentials(credentials: RegistryCredentials): Credentials {
  switch (credentials.kind) {
    case "anonymous":
      return ANONYMOUS;
    case "basic":
      return { username: credentials.username, password: credentials.password };
    case "identity-token":
      return credentials.username === ""
        ? { identityToken: credentials.token }
        : { identityToken: credentials.token, username: credentials.username };
  }
}

function logRequest(entry: RequestLog): void {
  const outcome = entry.status > 0 ? String(entry.status) : `failed: ${entry.error ?? "no answer"}`;
  httpLog.debug(
    `${entry.method} ${entry.url} → ${outcome} (${entry.bytes} bytes sent, ${
      Math.round(entry.ms)
    } ms)${
      entry.rateLimit === undefined ? "" : `, pull quota ${describeRateLimit(entry.rateLimit)}`
    }`,
  );
}

/** The settings {@link createClients} reads (a push's, a pull's or a copy's). */
export type ClientSettings = Pick<PushOptions, "caCertFiles" | "skipTls" | "credentials">;

/**
 * Creates the transport and one client per repository: `push` access (the default) for targets,
 * `pull` for sources.
 */
export async function createClients(
  targets: readonly TargetRepository[],
  options: ClientSettings,
  access: RepositoryAccess = "push",
): Promise<{ clients: RepositoryClient[]; transport: Transport }> {
  if (targets.length === 0) throw new PusherError("usage", "no repository given");
  const { pems: caCerts, sources } = await loadCaCertificates(
    options.caCertFiles,
    [...new Set(targets.flatMap(({ reference }) => [reference.registry, reference.apiBase.host]))],
  );
  for (const source of sources) authLog.debug(`trusting the CA certificate ${source}`);
  if (options.skipTls) {
    authLog.warn(
      "TLS certificate verification is off (--skip-tls): the registry's identity is not checked",
    );
  }
  const transport = createTransport({
    ...(caCerts.length > 0 ? { caCerts } : {}),
    skipTlsVerify: options.skipTls,
    onRequest: logRequest,
  });
  const clients: RepositoryClient[] = [];
  for (const target of targets) {
    const { reference } = target;
    const resolved = await resolveCredentials(
      options.credentials,
      reference.registry,
      reference.repository,
    );
    clients.push({
      ...target,
      repository: reference.repository,
      name: `${reference.registry}/${reference.repository}`,
      client: new RegistryClient({
        reference,
        credentials: clientCredentials(resolved),
        transport,
        access,
      }),
    });
  }
  return { clients, transport };
}
