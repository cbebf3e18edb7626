/**
 * Registry failures: {@link RegistryError} (a {@link PusherError} that also carries the HTTP
 * status, the registry's error codes and retry information), the parser for registry error bodies
 * and `Retry-After`, and the accessors the retry helper uses.
 *
 * @module
 */

import { type ErrorKind, PusherError } from "../errors.ts";

/** Options accepted by {@link RegistryError}. */
export interface RegistryErrorOptions {
  /** HTTP status; absent when no response arrived (connection, TLS, DNS failures). */
  status?: number;
  /** Error codes from the registry's JSON body, e.g. `["NAME_UNKNOWN"]`. */
  codes?: readonly string[];
  /** True when sending the same request again may succeed. */
  retryable?: boolean;
  /** How long the registry asked us to wait (`Retry-After`), in milliseconds. */
  retryAfterMs?: number;
  /** True when the registry is down, restarting or overloaded (see {@link isOutageStatus}). */
  outage?: boolean;
  /** True for 411/413: the request was too large or needs a length; switch to chunked uploads. */
  needsChunking?: boolean;
  /** What the user could try next. */
  hint?: string;
  /** The underlying error. */
  cause?: unknown;
}

/** A failure talking to a registry, with the status and codes the retry logic decides on. */
export class RegistryError extends PusherError {
  /** HTTP status; `undefined` when no response arrived. */
  readonly status: number | undefined;
  /** Error codes from the registry's JSON error body. */
  readonly codes: readonly string[];
  /** True when sending the same request again may succeed. */
  readonly retryable: boolean;
  /** Delay the registry asked for via `Retry-After`, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  /** True when the registry is out rather than the request wrong: retried for a time budget. */
  readonly outage: boolean;
  /** True when the request should be repeated as a chunked upload (411, 413). */
  readonly needsChunking: boolean;

  /** Creates a registry error of the given kind. */
  constructor(kind: ErrorKind, message: string, options: RegistryErrorOptions = {}) {
    const base: { hint?: string; cause?: unknown } = {};
    if (options.hint !== undefined) base.hint = options.hint;
    if (options.cause !== undefined) base.cause = options.cause;
    super(kind, message, base);
    this.name = "RegistryError";
    this.status = options.status;
    this.codes = options.codes ?? [];
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.outage = options.outage ?? false;
    this.needsChunking = options.needsChunking ?? false;
  }
}

/**
 * True for the statuses with which a registry, or a gateway in front of it, says it is down,
 * restarting or overloaded: 429, 502, 503 and 504. Such a failure is the registry's, not the
 * request's, and is retried for as long as an outage may last.
 */
export function isOutageStatus(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/** True when `error` says the upload should be repeated in chunks (HTTP 411 or 413). */
export function needsChunkedUpload(error: unknown): boolean {
  return error instanceof RegistryError && error.needsChunking;
}

/** True when `error` is a {@link RegistryError} whose registry codes include `code`. */
export function hasErrorCode(error: unknown, code: string): boolean {
  return error instanceof RegistryError && error.codes.includes(code);
}

/**
 * Parses an HTTP `Retry-After` value, either delay-seconds or an HTTP-date, into milliseconds from
 * `now` (epoch milliseconds). Returns `undefined` for a missing or unreadable value; a date in the
 * past gives 0.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Every HTTP-date form (IMF-fixdate, RFC 850, asctime) starts with the weekday; requiring it
  // keeps values like "1.5", which Date.parse reads as a year, out.
  if (!/^[A-Za-z]{3,9},? /.test(text)) return undefined;
  // asctime dates carry no zone but are GMT, as all HTTP-dates are.
  const date = Date.parse(text.endsWith("GMT") ? text : `${text} GMT`);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * The error for a failed registry answer. `what` names the request ("pushing manifest …").
 * 401/403 → `auth`; 404 and other 4xx → `registry`; 400 `DIGEST_INVALID` → `verify`;
 * 411/413 → `registry` with {@link RegistryError.needsChunking}; 408, 429 and 5xx (but 501) →
 * `network`, retryable, with `Retry-After` parsed (and 429, 502, 503, 504 marked as an outage).
 */
export function errorForStatus(
  status: number,
  summary: ErrorBodySummary,
  retryAfter: string | null,
  what: string,
  now: number = Date.now(),
): RegistryError {
  const codes = summary.codes;
  const message = `${what} failed with HTTP ${status}${
    summary.message === "" ? "" : `: ${summary.message}`
  }`;
  const options: RegistryErrorOptions = { status, codes };
  const retryable = status === 408 || status === 429 || (status >= 500 && status !== 501) ||
    codes.includes("TOOMANYREQUESTS");
  if (retryable) {
    options.retryable = true;
    if (isOutageStatus(status) || codes.includes("TOOMANYREQUESTS")) options.outage = true;
    const delay = parseRetryAfter(retryAfter, now);
    if (delay !== undefined) options.retryAfterMs = delay;
    return new RegistryError("network", message, options);
  }
  if (status === 401 || status === 403) {
    options.hint = "check that the account may push to this repository";
    return new RegistryError("auth", message, options);
  }
  if (status === 411 || status === 413) {
    options.needsChunking = true;
    options.hint =
      "the registry or a proxy in front of it limits request sizes; use chunked uploads";
    return new RegistryError("registry", message, options);
  }
  if (codes.includes("DIGEST_INVALID")) return new RegistryError("verify", message, options);
  if (codes.includes("NAME_UNKNOWN")) {
    options.hint = "create the repository first if this registry doesn't create it on push";
  } else if (status === 405 || codes.includes("UNSUPPORTED")) {
    options.hint = "the registry refuses pushes here (read-only, or a pull-through cache?)";
  } else if (status === 400 && /HTTP request to an HTTPS server/i.test(summary.message)) {
    options.hint = "the registry speaks HTTPS: use an https:// URL";
  }
  return new RegistryError("registry", message, options);
}

/** A blob lookup (`HEAD`) the registry answered with 403. */
export interface DeniedLookup {
  /** The registry as the user named it. */
  registry: string;
  /** The repository looked in, e.g. `team/app`. */
  repository: string;
  /** The user name pushed as; `undefined` for anonymous pushes. */
  account: string | undefined;
}

/**
 * The `auth` error for a blob lookup answered 403 where a registry that lets the account push
 * answers 200 or 404 (the answer to a `HEAD` has no body, so no error code tells more). Aliyun ACR answers so when the repository's namespace does not exist or the
 * account may not write to it; the message names the namespace to create and the permission to
 * grant, and the upload is not tried.
 */
export function deniedLookupError(denied: DeniedLookup): RegistryError {
  const { registry, repository, account } = denied;
  const slash = repository.lastIndexOf("/");
  const namespace = slash > 0 ? repository.slice(0, slash) : undefined;
  const who = account === undefined ? "anonymous users" : `the account "${account}"`;
  const reason = namespace === undefined
    ? `${who} may not push to ${repository}`
    : `the namespace "${namespace}" does not exist there, or ${who} may not push to it`;
  const permission = account === undefined
    ? `log in with -u/-p as an account that may push to ${repository}`
    : `grant ${who} push permission on ${repository}`;
  const hint = namespace === undefined
    ? permission
    : `create the namespace "${namespace}" in ${registry}, or ${permission}`;
  return new RegistryError(
    "auth",
    `${registry} denied access to ${repository} when looking up a blob (HTTP 403): ${reason}`,
    { status: 403, hint },
  );
}

/** What a registry error body said. */
export interface ErrorBodySummary {
  /** Registry error codes (`errors[].code`). */
  codes: string[];
  /** A one-line description: the registry's messages, or the text of an HTML/plain page. */
  message: string;
}

const MAX_MESSAGE_LENGTH = 300;

/**
 * Summarises an error body: `{"errors":[{code,message,detail}]}` from registries, an HTML page
 * from a proxy, or plain text. Always returns one line.
 */
export function parseErrorBody(text: string, contentType: string | null): ErrorBodySummary {
  const trimmed = text.trim();
  if (trimmed === "") return { codes: [], message: "" };
  if (trimmed.startsWith("{")) {
    const parsed = parseJsonErrors(trimmed);
    if (parsed !== undefined) return parsed;
  }
  const isHtml = (contentType ?? "").includes("html") || /^<(?:!doctype|html)/i.test(trimmed);
  const plain = isHtml ? htmlToText(trimmed) : trimmed;
  return { codes: [], message: oneLine(plain) };
}

function parseJsonErrors(text: string): ErrorBodySummary | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null) return undefined;
  const record = body as Record<string, unknown>;
  const errors = Array.isArray(record.errors) ? record.errors : [];
  const codes: string[] = [];
  const parts: string[] = [];
  for (const entry of errors) {
    if (typeof entry !== "object" || entry === null) continue;
    const item = entry as Record<string, unknown>;
    const code = typeof item.code === "string" ? item.code : undefined;
    if (code !== undefined) codes.push(code);
    const message = typeof item.message === "string" ? item.message : "";
    const detail = describeDetail(item.detail);
    const text = [code, message].filter((part) => part !== undefined && part !== "").join(" ");
    parts.push(detail === "" ? text : `${text} (${detail})`);
  }
  if (parts.length === 0) {
    const alt = typeof record.message === "string"
      ? record.message
      : typeof record.error === "string"
      ? record.error
      : text;
    return { codes, message: oneLine(alt) };
  }
  return { codes, message: oneLine(parts.join("; ")) };
}

function describeDetail(detail: unknown): string {
  if (detail === undefined || detail === null || detail === "") return "";
  if (typeof detail === "string") return detail;
  try {
    return JSON.stringify(detail);
  } catch {
    return "";
  }
}

function htmlToText(html: string): string {
  const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html)?.[1];
  const heading = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(html)?.[1];
  const picked = title ?? heading;
  const source = picked ?? html.replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, " ");
  return source.replace(/<[^>]*>/g, " ").replace(/&nbsp;/g, " ").replace(/&amp;/g, "&")
    .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"');
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > MAX_MESSAGE_LENGTH ? `${line.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : line;
}
