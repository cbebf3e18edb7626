/**
 * One registry client per target repository, sharing a transport: credentials resolved in the
 * documented order, TLS settings (extra CAs from `--ca-cert` and `/etc/docker/certs.d`), and a
 * request log for `--verbose`.
 *
 * @module
 */

import { join } from "node:path";
import { resolveCredentials } from "../credentials/resolve.ts";
import type { RegistryCredentials } from "../credentials/types.ts";
import { PusherError } from "../errors.ts";
import { moduleLogger } from "../logging/logger.ts";
import type { PushOptions } from "../options.ts";
import { RegistryClient } from "../registry/client.ts";
import { ANONYMOUS, type Credentials } from "../registry/credentials.ts";
import type { RequestLog } from "../registry/http.ts";
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
      return { identityToken: credentials.token, username: credentials.username };
  }
}

async function readCaFile(path: string, origin: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new PusherError(
      "usage",
      `cannot read CA certificate ${path} (${origin}): ${(error as Error).message}`,
    );
  }
}

/** PEM CA certificates to trust: `--ca-cert` files and docker's `certs.d/<host>/ca.crt`. */
export async function caCertificates(
  caCertFiles: readonly string[],
  host: string,
): Promise<string[]> {
  const pems: string[] = [];
  for (const file of caCertFiles) pems.push(await readCaFile(file, "--ca-cert"));
  const dockerCa = join("/etc/docker/certs.d", host, "ca.crt");
  try {
    pems.push(await Deno.readTextFile(dockerCa));
    authLog.debug(`trusting ${dockerCa}`);
  } catch {
    // docker's per-registry CA is optional
  }
  return pems;
}

function logRequest(entry: RequestLog): void {
  const outcome = entry.status > 0 ? String(entry.status) : `failed: ${entry.error ?? "no answer"}`;
  httpLog.debug(
    `${entry.method} ${entry.url} → ${outcome} (${entry.bytes} bytes sent, ${
      Math.round(entry.ms)
    } ms)`,
  );
}

/** Creates the transport and one client per target repository. */
export async function createClients(
  targets: readonly TargetRepository[],
  options: PushOptions,
): Promise<{ clients: RepositoryClient[]; transport: Transport }> {
  const first = targets[0];
  if (!first) throw new PusherError("usage", "no target repository given");
  const caCerts = await caCertificates(options.caCertFiles, first.reference.apiBase.host);
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
      }),
    });
  }
  return { clients, transport };
}
