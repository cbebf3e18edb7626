/**
 * URL redaction for logs and messages: upload locations carry signed state and storage redirects
 * carry signatures, so query values are masked except for a few harmless, useful ones.
 *
 * @module
 */

const KEPT_QUERY_PARAMETERS = new Set(["digest", "mount", "from", "service", "scope", "n", "last"]);

/** The URL as text with user info removed and query values masked except `digest`, `mount`, … */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  copy.username = "";
  copy.password = "";
  copy.hash = "";
  if (copy.search === "") return copy.href;
  const parts: string[] = [];
  for (const [name, value] of copy.searchParams) {
    parts.push(KEPT_QUERY_PARAMETERS.has(name) ? `${name}=${value}` : `${name}=…`);
  }
  return `${copy.origin}${copy.pathname}?${parts.join("&")}`;
}
