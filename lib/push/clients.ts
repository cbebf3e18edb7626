/**
 * One registry client per target repository, sharing a transport: credentials resolved in the
 * documented order (their secrets registered with the run's redactor), TLS settings (extra CAs
 * from `--ca-cert` and the `certs.d` directories), and a redacted request log for `--verbose`.
 *
 * @module
 */

import { resolveCredentials } from "../credentials/resolve.ts";
import { PusherError } from "../errors.ts";
import { moduleLogger } from "../logging/logger.ts";
import type { Redactor } from "../logging/redact.ts";
import type { PushOptions } from "../options.ts";
import { loadCaCertificates } from "../registry/ca_certs.ts";
import { RegistryClient } from "../registry/client.ts";
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

/** The `--verbose` line of one HTTP exchange, redacted by the run's policy. */
function requestLine(entry: RequestLog, redactor: Redactor): string {
  const outcome = entry.status > 0 ? String(entry.status) : `failed: ${entry.error ?? "no answer"}`;
  return redactor.redact(
    `${entry.method} ${entry.url} → ${outcome} (${entry.bytes} bytes sent, ${
      Math.round(entry.ms)
    } ms)${
      entry.rateLimit === undefined ? "" : `, pull quota ${describeRateLimit(entry.rateLimit)}`
    }`,
  );
}

/**
 * Creates the transport and one client per target repository; the secrets of every credentials
 * resolved are registered with `redactor` before any request is made.
 */
export async function createClients(
  targets: readonly TargetRepository[],
  options: PushOptions,
  redactor: Redactor,
): Promise<{ clients: RepositoryClient[]; transport: Transport }> {
  const first = targets[0];
  if (!first) throw new PusherError("usage", "no target repository given");
  const { pems: caCerts, sources } = await loadCaCertificates(options.caCertFiles, [
    first.reference.registry,
    first.reference.apiBase.host,
  ]);
  for (const source of sources) authLog.debug(`trusting the CA certificate ${source}`);
  if (options.skipTls) {
    authLog.warn(
      "TLS certificate verification is off (--skip-tls): the registry's identity is not checked",
    );
  }
  const transport = createTransport({
    ...(caCerts.length > 0 ? { caCerts } : {}),
    skipTlsVerify: options.skipTls,
    onRequest: (entry) => httpLog.debug(requestLine(entry, redactor)),
  });
  const clients: RepositoryClient[] = [];
  for (const target of targets) {
    const { reference } = target;
    const credentials = await resolveCredentials(
      options.credentials,
      reference.registry,
      reference.repository,
    );
    redactor.addCredentials(credentials);
    clients.push({
      ...target,
      repository: reference.repository,
      name: `${reference.registry}/${reference.repository}`,
      client: new RegistryClient({
        reference,
        credentials,
        transport,
      }),
    });
  }
  return { clients, transport };
}
