/**
 * Connecting to registries the way every command does: one transport for the run (extra CAs from
 * `--ca-cert` and the `certs.d` directories of each registry, `--skip-tls`, a redacted request
 * log for `--verbose`), and one client per repository with credentials resolved in the documented
 * order, their secrets registered with the run's redactor before any request is made.
 *
 * @module
 */

import type { Credentials } from "../credentials/credentials.ts";
import { resolveCredentials } from "../credentials/resolve.ts";
import { moduleLogger } from "../logging/logger.ts";
import type { Redactor } from "../logging/redact.ts";
import { loadCaCertificates } from "./ca_certs.ts";
import { RegistryClient, type RepositoryAccess } from "./client.ts";
import type { RequestLog, Transport } from "./http.ts";
import { describeRateLimit } from "./rate_limit.ts";
import type { Reference } from "./reference.ts";
import { createTransport } from "./transport.ts";

/** The TLS settings a run connects with. */
export interface TlsSettings {
  /** Turn TLS certificate verification off. */
  skipTls: boolean;
  /** Extra PEM CA certificate files to trust. */
  caCertFiles: string[];
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
 * Creates the run's transport for the given registries; sends no request. Requests are logged
 * when the `http` logger shows debug lines at this point (configure logging before a run).
 */
export async function openTransport(
  references: readonly Reference[],
  tls: TlsSettings,
  redactor: Redactor,
): Promise<Transport> {
  const hosts = references.flatMap((reference) => [reference.registry, reference.apiBase.host]);
  const { pems, sources } = await loadCaCertificates(tls.caCertFiles, [...new Set(hosts)]);
  for (const source of sources) authLog.debug(`trusting the CA certificate ${source}`);
  if (tls.skipTls) {
    authLog.warn(
      "TLS certificate verification is off (--skip-tls): the registry's identity is not checked",
    );
  }
  return createTransport({
    ...(pems.length > 0 ? { caCerts: pems } : {}),
    skipTlsVerify: tls.skipTls,
    // Without `--verbose` no request is logged: no hook, so no request pays for a redacted line.
    ...(httpLog.isEnabledFor("debug")
      ? { onRequest: (entry: RequestLog) => httpLog.debug(requestLine(entry, redactor)) }
      : {}),
  });
}

/**
 * A client for one repository: `explicit` credentials when given, else the docker/podman config
 * entry of its registry; their secrets are registered with `redactor`. Its tokens also carry
 * `pull` on `mountSources` (see `RegistryClientOptions.mountSources`).
 */
export async function connectClient(
  reference: Reference,
  explicit: Credentials | undefined,
  transport: Transport,
  access: RepositoryAccess,
  redactor: Redactor,
  mountSources: readonly string[] = [],
): Promise<RegistryClient> {
  const credentials = await resolveCredentials(explicit, reference.registry, reference.repository);
  redactor.addCredentials(credentials);
  return new RegistryClient({ reference, credentials, transport, access, mountSources });
}
