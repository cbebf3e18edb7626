/**
 * `WWW-Authenticate` parsing (RFC 7235): several challenges in one comma-joined header, quoted
 * values with backslash escapes, token68 credentials, and realm resolution against the request
 * URL.
 *
 * @module
 */

/** One authentication challenge. */
export interface Challenge {
  /** The scheme in lower case, e.g. `bearer`, `basic`. */
  scheme: string;
  /** Parameters with lower-case names, e.g. `realm`, `service`, `scope`. */
  params: Record<string, string>;
  /** A token68 value, when the challenge carries one instead of parameters. */
  token68?: string;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

/** Parses a `WWW-Authenticate` header value into its challenges, in order. */
export function parseChallenges(header: string): Challenge[] {
  const parser = new Parser(header);
  const challenges: Challenge[] = [];
  let current: Challenge | undefined;
  for (;;) {
    parser.skip(/[\s,]/);
    if (parser.done()) break;
    const name = parser.token();
    if (name === "") {
      parser.advance();
      continue;
    }
    parser.skip(/[ \t]/);
    if (current !== undefined && parser.peek() === "=") {
      parser.advance();
      parser.skip(/[ \t]/);
      current.params[name.toLowerCase()] = parser.peek() === '"' ? parser.quoted() : parser.token();
      continue;
    }
    current = { scheme: name.toLowerCase(), params: {} };
    challenges.push(current);
    const token68 = parser.token68();
    if (token68 !== undefined) current.token68 = token68;
  }
  return challenges;
}

/** Resolves a challenge's `realm` against the URL of the request that was challenged. */
export function resolveRealm(realm: string, requestUrl: URL): URL {
  return new URL(realm, requestUrl);
}

class Parser {
  #text: string;
  #at = 0;

  constructor(text: string) {
    this.#text = text;
  }

  done(): boolean {
    return this.#at >= this.#text.length;
  }

  peek(): string {
    return this.#text[this.#at] ?? "";
  }

  advance(): void {
    this.#at++;
  }

  skip(pattern: RegExp): void {
    while (!this.done() && pattern.test(this.peek())) this.#at++;
  }

  token(): string {
    const start = this.#at;
    while (!this.done() && TOKEN_CHAR.test(this.peek())) this.#at++;
    return this.#text.slice(start, this.#at);
  }

  quoted(): string {
    this.#at++;
    let value = "";
    while (!this.done()) {
      const char = this.peek();
      this.#at++;
      if (char === '"') return value;
      if (char === "\\" && !this.done()) {
        value += this.peek();
        this.#at++;
        continue;
      }
      value += char;
    }
    return value;
  }

  /** Reads a token68 after a scheme, leaving the position alone when an auth-param follows. */
  token68(): string | undefined {
    const start = this.#at;
    while (!this.done() && TOKEN68_CHAR.test(this.peek())) this.#at++;
    if (this.#at === start) return undefined;
    while (this.peek() === "=") this.#at++;
    const end = this.#at;
    this.skip(/[ \t]/);
    const next = this.peek();
    if (next === "," || next === "") return this.#text.slice(start, end);
    this.#at = start;
    return undefined;
  }
}
