/**
 * Turns the errors `fetch` and `node:https` throw when no response arrives (TLS, DNS, refused or
 * lost connections) into one-line {@link RegistryError}s of kind `network`.
 *
 * @module
 */

import { RegistryError } from "./errors.ts";
import { redactUrl } from "../logging/redact.ts";

const CERTIFICATE =
  /certificate|UnknownIssuer|CaUsedAsEndEntity|NotValidForName|BadSignature|CERT_|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|Expired|NotValidYet/i;
const NOT_TLS = /InvalidContentType|wrong version number|packet length too long|corrupt message/i;
const DNS = /dns error|lookup address|ENOTFOUND|EAI_AGAIN|EAI_NONAME|Name or service not known/i;
const REFUSED = /Connection refused|ECONNREFUSED/i;
const TLS_HINT = "if the registry uses a private CA, pass its certificate with --ca-cert <file>; " +
  "--skip-tls turns verification off (insecure)";

/** True when `error` is the `AbortError` an aborted signal produces. */
export function isAbortError(error: unknown): boolean {
  return (error instanceof DOMException || error instanceof Error) && error.name === "AbortError";
}

/**
 * Maps an error thrown while sending `method url` to a {@link RegistryError} of kind `network`.
 * Abort errors are returned unchanged so they keep meaning "interrupted". Certificate failures say
 * so and suggest `--ca-cert` / `--skip-tls`; they and DNS failures are not retryable, other
 * connection failures are, and a refused connection (nothing listens: the registry is down or
 * restarting) counts as an outage.
 */
export function networkError(error: unknown, method: string, url: URL): Error {
  if (isAbortError(error)) return error as Error;
  if (error instanceof RegistryError) return error;
  const reason = describe(error);
  const host = url.host;
  if (CERTIFICATE.test(reason)) {
    return new RegistryError(
      "network",
      `the TLS certificate of ${host} was rejected: ${reason}`,
      { hint: TLS_HINT, cause: error },
    );
  }
  if (NOT_TLS.test(reason)) {
    return new RegistryError("network", `TLS handshake with ${host} failed: ${reason}`, {
      hint: "the registry may speak plain HTTP: use an http:// URL",
      cause: error,
    });
  }
  if (DNS.test(reason)) {
    return new RegistryError("network", `cannot resolve registry host ${url.hostname}: ${reason}`, {
      retryable: /EAI_AGAIN|temporary/i.test(reason),
      hint: "check the registry name and your DNS or proxy settings",
      cause: error,
    });
  }
  if (REFUSED.test(reason)) {
    return new RegistryError("network", `connection to ${host} was refused`, {
      retryable: true,
      outage: true,
      hint: "check the registry host and port, and that the registry is running",
      cause: error,
    });
  }
  return new RegistryError("network", `${method} ${redactUrl(url)} failed: ${reason}`, {
    retryable: true,
    cause: error,
  });
}

/**
 * The error of a request to an origin that has never answered: a refused connection there more
 * likely means a wrong address than a registry that went down, so it loses its outage mark (and
 * is retried like other failures, not for the outage budget). Other errors are returned as they
 * are.
 */
export function firstContactError(error: unknown): unknown {
  if (!(error instanceof RegistryError) || !error.outage || error.status !== undefined) {
    return error;
  }
  return new RegistryError(error.kind, error.message, {
    retryable: error.retryable,
    ...(error.hint !== undefined ? { hint: error.hint } : {}),
    ...(error.cause !== undefined ? { cause: error.cause } : {}),
  });
}

/** Joins the messages of an error and its causes, without the URLs Deno embeds in them. */
function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    const code = current instanceof Error ? (current as { code?: unknown }).code : undefined;
    const cleaned = message.replace(/ for url \([^)]*\)/g, "").trim();
    if (cleaned !== "" && cleaned !== "fetch failed") parts.push(cleaned);
    if (typeof code === "string" && !cleaned.includes(code)) parts.push(code);
    current = current instanceof Error ? current.cause : undefined;
  }
  const text = parts.join(": ").replace(/\s+/g, " ");
  return text === "" ? "connection failed" : text;
}
