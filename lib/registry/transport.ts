/**
 * The one HTTP layer the registry client uses. A {@link Transport} sends a request through an
 * {@link HttpBackend} — `fetch` normally, `node:https` when certificate checks are off — follows
 * redirects itself (hop cap, no https→http, no `Authorization` across origins, body replay on
 * 307/308) and reports every hop to an optional {@link RequestLog} hook. No cookie jar: cookies
 * a registry sets are never sent back (Harbor enforces CSRF checks when they are). A refused
 * connection counts as an outage only where an answer came before (see
 * {@link firstContactError}).
 *
 * @module
 */

import { RegistryError } from "./errors.ts";
import { fetchBackend } from "./fetch_backend.ts";
import { firstContactError } from "./network_error.ts";
import type {
  BackendRequest,
  HttpBackend,
  RequestBody,
  RequestLog,
  Transport,
  TransportRequest,
  TransportResponse,
} from "./http.ts";
import { parseRateLimit } from "./rate_limit.ts";
import { redactUrl } from "../logging/redact.ts";

/** Options of {@link createTransport}. */
export interface TransportOptions {
  /** Extra trusted CA certificates, PEM text. */
  caCerts?: string[];
  /** Do not verify TLS certificates (uses `node:https`, as `fetch` can't skip per request). */
  skipTlsVerify?: boolean;
  /** Called once per HTTP exchange, for `--verbose`. */
  onRequest?: (log: RequestLog) => void;
  /** `User-Agent` sent with every request. */
  userAgent?: string;
  /** Maximum number of redirects followed for one request (default 10). */
  maxRedirects?: number;
}

/** Default `User-Agent`. */
export const USER_AGENT = "docker-image-pusher";
const DEFAULT_MAX_REDIRECTS = 10;

/**
 * Creates the transport: `fetch` (with a `Deno.HttpClient` trusting `caCerts` when given) for
 * verified TLS and plain HTTP, `node:https` with verification off for https when
 * `skipTlsVerify` is set. Both honour `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`.
 */
export function createTransport(options: TransportOptions = {}): Transport {
  const verified = fetchBackend(options.caCerts ?? []);
  const unverified = options.skipTlsVerify === true ? lazyNodeBackend() : undefined;
  const pick = (url: URL): HttpBackend =>
    unverified !== undefined && url.protocol === "https:" ? unverified : verified;
  return new RedirectingTransport(pick, options, () => {
    verified.close();
    unverified?.close();
  });
}

/**
 * The `node:https` backend, loaded with its first request: the `node:` HTTP modules take a while
 * to load, and only an https request with `--skip-tls` needs them.
 */
function lazyNodeBackend(): HttpBackend {
  let loading: Promise<HttpBackend> | undefined;
  let closed = false;
  return {
    send: async (request) => {
      loading ??= import("./node_backend.ts").then(({ nodeBackend }) => nodeBackend());
      const backend = await loading;
      if (closed) backend.close();
      return await backend.send(request);
    },
    close: () => {
      closed = true;
      loading?.then((backend) => backend.close(), () => {});
    },
  };
}

/** Wraps backends with redirect handling, the request hook and a `User-Agent`. */
class RedirectingTransport implements Transport {
  #pick: (url: URL) => HttpBackend;
  #onRequest: ((log: RequestLog) => void) | undefined;
  #userAgent: string;
  #maxRedirects: number;
  #close: () => void;
  /** Origins that answered at least once. */
  readonly #answered = new Set<string>();

  constructor(pick: (url: URL) => HttpBackend, options: TransportOptions, close: () => void) {
    this.#pick = pick;
    this.#onRequest = options.onRequest;
    this.#userAgent = options.userAgent ?? USER_AGENT;
    this.#maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    this.#close = close;
  }

  async request(request: TransportRequest): Promise<TransportResponse> {
    const headers = new Headers(request.headers);
    if (!headers.has("user-agent")) headers.set("user-agent", this.#userAgent);
    let method = request.method;
    let url = request.url;
    let body: RequestBody = request.body ?? null;
    let sentOnce = false;
    for (let hop = 0;; hop++) {
      const opened = openBody(body, sentOnce, method, url);
      sentOnce = true;
      const response = await this.#send({
        method,
        url,
        headers,
        body: opened,
        signal: request.signal,
      });
      const location = response.headers.get("location");
      if (request.followRedirects === false || !isRedirect(response.status) || location === null) {
        return response;
      }
      await response.discard();
      if (hop >= this.#maxRedirects) {
        throw new RegistryError(
          "registry",
          `${request.method} ${
            redactUrl(request.url)
          } was redirected more than ${this.#maxRedirects} times`,
          { status: response.status },
        );
      }
      const next = new URL(location, url);
      if (url.protocol === "https:" && next.protocol !== "https:") {
        throw new RegistryError(
          "registry",
          `refused a redirect from ${redactUrl(url)} to ${redactUrl(next)}: it leaves HTTPS`,
          { status: response.status },
        );
      }
      if (next.origin !== url.origin) headers.delete("authorization");
      if (response.status === 303 || (response.status <= 302 && method === "POST")) {
        if (method !== "HEAD") method = "GET";
        body = null;
        headers.delete("content-type");
      }
      url = next;
    }
  }

  close(): void {
    this.#close();
  }

  async #send(request: BackendRequest): Promise<TransportResponse> {
    const hook = this.#onRequest;
    const watch: BodyWatch = { bytes: 0, sourceError: undefined };
    const body = request.body instanceof ReadableStream
      ? watched(request.body, watch)
      : request.body;
    if (request.body instanceof Uint8Array) watch.bytes = request.body.byteLength;
    const started = performance.now();
    const log = (status: number, error?: string, headers?: Headers): void => {
      if (hook === undefined) return;
      const entry: RequestLog = {
        method: request.method,
        url: redactUrl(request.url),
        status,
        bytes: watch.bytes,
        ms: Math.round(performance.now() - started),
      };
      if (error !== undefined) entry.error = error;
      const rateLimit = headers === undefined ? undefined : parseRateLimit(headers);
      if (rateLimit !== undefined) entry.rateLimit = rateLimit;
      hook(entry);
    };
    try {
      const response = await this.#pick(request.url).send({ ...request, body });
      this.#answered.add(request.url.origin);
      log(response.status, undefined, response.headers);
      return response;
    } catch (error) {
      const cause = watch.sourceError ?? error;
      log(0, cause instanceof Error ? cause.message : String(cause));
      throw this.#answered.has(request.url.origin) ? cause : firstContactError(cause);
    }
  }
}

/** Bytes read from a streamed body, and the error its source failed with, if it did. */
interface BodyWatch {
  bytes: number;
  sourceError: unknown;
}

/**
 * Passes a body stream through, counting bytes and remembering the source's own failure, so a
 * reader error (a bad archive, a digest mismatch) surfaces as itself, not as a network error.
 */
function watched(
  source: ReadableStream<Uint8Array>,
  watch: BodyWatch,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        watch.sourceError = error;
        throw error;
      }
      if (result.done) {
        controller.close();
        return;
      }
      watch.bytes += result.value.byteLength;
      controller.enqueue(result.value);
    },
    async cancel(reason): Promise<void> {
      await reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function openBody(
  body: RequestBody,
  sentOnce: boolean,
  method: string,
  url: URL,
): Uint8Array | ReadableStream<Uint8Array> | null {
  if (typeof body === "function") return body();
  if (body instanceof ReadableStream && sentOnce) {
    throw new RegistryError(
      "registry",
      `${method} ${redactUrl(url)} was redirected, and its streamed body can't be sent twice`,
    );
  }
  return body;
}
