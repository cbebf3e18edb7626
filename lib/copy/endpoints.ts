/**
 * The two ends of a copy: a pull-only client for the source repository and a push client for the
 * target, sharing one transport (TLS settings and extra CAs for both registries, the request log
 * for `--verbose`). Each end has its own credentials: the source's from `sourceCredentials` or the
 * docker/podman config entry of the source registry, the target's likewise.
 *
 * @module
 */

import { resolveCredentials } from "../credentials/resolve.ts";
import { moduleLogger } from "../logging/logger.ts";
import type { ExplicitCredentials } from "../options.ts";
import { clientCredentials, logRequest } from "../push/clients.ts";
import { loadCaCertificates } from "../registry/ca_certs.ts";
import { RegistryClient, type RepositoryAccess } from "../registry/client.ts";
import type { Transport } from "../registry/http.ts";
import type { Reference } from "../registry/reference.ts";
import { createTransport } from "../registry/transport.ts";
import type { CopyOptions } from "./options.ts";

/** The clients of a copy and the transport they share. */
export interface CopyEndpoints {
  /** Reads from the source repository (pull-only tokens). */
  source: RegistryClient;
  /** Writes to the target repository. */
  target: RegistryClient;
  /** Close it when the copy ends. */
  transport: Transport;
}

const authLog = moduleLogger("auth");

/** Creates the transport and both clients; sends no request. */
export async function openEndpoints(
  source: Reference,
  target: Reference,
  options: CopyOptions,
): Promise<CopyEndpoints> {
  const { pems, sources } = await loadCaCertificates(options.caCertFiles, [
    source.registry,
    source.apiBase.host,
    target.registry,
    target.apiBase.host,
  ]);
  for (const file of sources) authLog.debug(`trusting the CA certificate ${file}`);
  if (options.skipTls) {
    authLog.warn(
      "TLS certificate verification is off (--skip-tls): the registries' identity is not checked",
    );
  }
  const transport = createTransport({
    ...(pems.length > 0 ? { caCerts: pems } : {}),
    skipTlsVerify: options.skipTls,
    onRequest: logRequest,
  });
  return {
    source: await client(source, options.sourceCredentials, transport, "pull"),
    target: await client(target, options.credentials, transport, "push"),
    transport,
  };
}

async function client(
  reference: Reference,
  explicit: ExplicitCredentials | undefined,
  transport: Transport,
  access: RepositoryAccess,
): Promise<RegistryClient> {
  const resolved = await resolveCredentials(explicit, reference.registry, reference.repository);
  return new RegistryClient({
    reference,
    credentials: clientCredentials(resolved),
    transport,
    access,
  });
}
