/**
 * Proxy selection from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (and their lower-case forms),
 * matching what Deno's `fetch` does, for the `node:https` path that has to tunnel by itself.
 *
 * @module
 */

/** Reads an environment variable; `undefined` when unset or not permitted. */
export type EnvReader = (name: string) => string | undefined;

/** Reads the process environment, treating a denied `--allow-env` as unset. */
export function processEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * The proxy URL to use for `target`, or `undefined` to connect directly. `NO_PROXY` entries are
 * `*`, host names (matching the host and its subdomains, a leading `.` allowed), IP addresses, each
 * optionally with `:port`.
 */
export function proxyFor(target: URL, env: EnvReader = processEnv): URL | undefined {
  const name = target.protocol === "https:" ? "HTTPS_PROXY" : "HTTP_PROXY";
  const value = env(name) ?? env(name.toLowerCase());
  if (value === undefined || value.trim() === "") return undefined;
  if (bypassed(target, env("NO_PROXY") ?? env("no_proxy") ?? "")) return undefined;
  const text = value.trim();
  try {
    return new URL(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(text) ? text : `http://${text}`);
  } catch {
    return undefined;
  }
}

function bypassed(target: URL, noProxy: string): boolean {
  const host = target.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const port = target.port !== "" ? target.port : target.protocol === "https:" ? "443" : "80";
  for (const raw of noProxy.split(",")) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return true;
    const { entryHost, entryPort } = splitEntry(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    if (host === entryHost || host.endsWith(`.${entryHost}`)) return true;
  }
  return false;
}

function splitEntry(entry: string): { entryHost: string; entryPort: string | undefined } {
  const bracketed = /^\[([^\]]*)\](?::([0-9]+))?$/.exec(entry);
  if (bracketed !== null) return { entryHost: bracketed[1] ?? "", entryPort: bracketed[2] };
  const withPort = /^([^:]*):([0-9]+)$/.exec(entry);
  const host = withPort === null ? entry : withPort[1] ?? "";
  return { entryHost: host.replace(/^\*?\./, ""), entryPort: withPort?.[2] };
}
