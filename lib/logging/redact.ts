/**
 * The one redaction policy for everything the tool shows — log lines, the `--verbose` request
 * log, error messages and JSON error events:
 *
 * - A URL is shown without user info or fragment, and a query value only when its parameter is on
 *   an allow-list ({@link SHOWN_QUERY_PARAMETERS}): upload locations carry signed state, storage
 *   redirects carry signatures, token requests may carry tokens.
 * - Text has the run's known secrets (passwords, identity tokens) replaced, every URL in it shown
 *   by the URL rule, and secret-shaped values masked: `Authorization` values, Basic and Bearer
 *   credentials, passwords in URLs of any scheme, JSON and form fields named like secrets.
 *
 * A {@link Redactor} holds one run's known secrets, so concurrent runs in one process neither
 * share nor forget each other's.
 *
 * @module
 */

import { type Credentials, secretsOf } from "../credentials/credentials.ts";

/** The query parameters whose values are shown: harmless and useful when reading a log. */
export const SHOWN_QUERY_PARAMETERS: ReadonlySet<string> = new Set([
  "digest",
  "mount",
  "from",
  "service",
  "scope",
  "n",
  "last",
]);

/** What a masked value is shown as. */
const MASK = "***";

/** The URL as text, user info and fragment removed, query values masked unless allow-listed. */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  copy.hash = "";
  if (copy.search === "") return copy.href;
  const parts: string[] = [];
  for (const [name, value] of copy.searchParams) {
    parts.push(SHOWN_QUERY_PARAMETERS.has(name) ? `${name}=${value}` : `${name}=…`);
  }
  return `${copy.origin}${copy.pathname}?${parts.join("&")}`;
}

/** An http(s) URL in text that carries user info or a query (others are shown as they are). */
const URL_WITH_SECRETS = /\bhttps?:\/\/[^\s"'<>]*[?@][^\s"'<>]*/gi;

/** Field names whose values are secrets, in JSON (`"token": "…"`) or forms (`password=…`). */
const SECRET_FIELDS = "token|access_token|refresh_token|password|identitytoken|auth|secret";

const PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  [/(authorization\s*[:=]\s*)(basic|bearer)\s+[^\s"',]+/gi, `$1$2 ${MASK}`],
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{16,}/gi, `$1 ${MASK}`],
  [/(\/\/[^/\s:@]+):[^@/\s]+@/g, `$1:${MASK}@`],
  [new RegExp(`("(?:${SECRET_FIELDS})"\\s*:\\s*")[^"]*"`, "gi"), `$1${MASK}"`],
  [new RegExp(`((?:^|[\\s&])(?:${SECRET_FIELDS})=)[^&\\s"]+`, "gi"), `$1${MASK}`],
];

/** Shows a URL found in text by the URL rule; text that does not parse is left to the patterns. */
function redactUrlInText(text: string): string {
  try {
    return redactUrl(new URL(text));
  } catch {
    return text;
  }
}

/**
 * One run's redaction: the policy of this module plus the secrets the run knows. Create one per
 * run; register every secret the run obtains before anything can print it.
 */
export class Redactor {
  readonly #secrets = new Set<string>();

  /** Registers a value (password, token) that must never be shown; short values are ignored. */
  addSecret(value: string | undefined): void {
    if (value !== undefined && value.length >= 4) this.#secrets.add(value);
  }

  /** Registers the secrets of a set of credentials (and the forms they travel in). */
  addCredentials(credentials: Credentials): void {
    for (const secret of secretsOf(credentials)) {
      this.addSecret(secret);
      this.addSecret(encodeURIComponent(secret));
    }
  }

  /** The text with the run's secrets replaced and the policy applied. */
  redact(text: string): string {
    let result = text;
    for (const secret of this.#secrets) result = result.replaceAll(secret, MASK);
    result = result.replace(URL_WITH_SECRETS, redactUrlInText);
    for (const [pattern, replacement] of PATTERNS) result = result.replace(pattern, replacement);
    return result;
  }
}
