/**
 * The two ends of a copy: a pull-only client for the source repository and a push client for the
 * target, sharing one transport (TLS settings and extra CAs for both registries, the request log
 * for `--verbose`). Each end has its own credentials: the source's from `sourceCredentials` or the
 * docker/podman config entry of the source registry, the target's likewise.
 *
 * @module
 */

import type { Redactor } from "../logging/redact.ts";
import type { RegistryClient } from "../registry/client.ts";
import { connectClient, openTransport } from "../registry/connect.ts";
import type { Transport } from "../registry/http.ts";
import type { Reference } from "../registry/reference.ts";
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

/** Creates the transport and both clients; sends no request. */
export async function openEndpoints(
  source: Reference,
  target: Reference,
  options: CopyOptions,
  redactor: Redactor,
): Promise<CopyEndpoints> {
  const transport = await openTransport([source, target], options, redactor);
  return {
    source: await connectClient(source, options.sourceCredentials, transport, "pull", redactor),
    target: await connectClient(target, options.credentials, transport, "push", redactor),
    transport,
  };
}
