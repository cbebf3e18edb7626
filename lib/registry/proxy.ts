/**
 * Proxy selection from `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (and their lower-case forms)
 * for the `node:https` path (`--skip-tls`), which has to tunnel by itself; `fetch` reads the same
 * variables on its own.
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
 * optionally with `:port`, and IPv4 CIDR blocks (`10.0.0.0/8`). Deno's `fetch` (the verified-TLS
 * and plain-HTTP path) applies its own rules to the same variables: host names, IP addresses and
 * CIDR blocks, but neither `:port` suffixes nor `*` for IP addresses.
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
    if (entry.includes("/")) {
      if (inCidr(host, entry)) return true;
      continue;
    }
    const { entryHost, entryPort } = splitEntry(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    if (host === entryHost || host.endsWith(`.${entryHost}`)) return true;
  }
  return false;
}

/** True when `host` is an IPv4 address inside the IPv4 CIDR block `cidr` (`10.0.0.0/8`). */
function inCidr(host: string, cidr: string): boolean {
  const [network = "", bits = ""] = cidr.split("/");
  const prefix = Number(bits);
  const address = ipv4(host);
  const base = ipv4(network);
  if (address === undefined || base === undefined) return false;
  if (!/^[0-9]+$/.test(bits) || prefix > 32) return false;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((address & mask) >>> 0) === ((base & mask) >>> 0);
}

function ipv4(text: string): number | undefined {
  const parts = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (parts === null) return undefined;
  let value = 0;
  for (const part of parts.slice(1)) {
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

function splitEntry(entry: string): { entryHost: string; entryPort: string | undefined } {
  const bracketed = /^\[([^\]]*)\](?::([0-9]+))?$/.exec(entry);
  if (bracketed !== null) return { entryHost: bracketed[1] ?? "", entryPort: bracketed[2] };
  const withPort = /^([^:]*):([0-9]+)$/.exec(entry);
  const host = withPort === null ? entry : withPort[1] ?? "";
  return { entryHost: host.replace(/^\*?\./, ""), entryPort: withPort?.[2] };
}
