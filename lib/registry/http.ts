/**
 * The HTTP vocabulary shared by the transport, its backends and the registry client: request
 * bodies, requests, responses and the per-request log entry.
 *
 * @module
 */

import type { RateLimit } from "./rate_limit.ts";

/** Re-opens a request body from the start; lets streamed bodies be sent again. */
export type BodyFactory = () => ReadableStream<Uint8Array>;

/**
 * A request body. `Uint8Array` bodies are sent with `Content-Length` and can be replayed; a
 * `ReadableStream` is sent chunked and can be sent once; a {@link BodyFactory} is sent chunked
 * and re-opened when the request has to be sent again (redirect, token refresh).
 */
export type RequestBody = Uint8Array | ReadableStream<Uint8Array> | BodyFactory | null;

/** One request as the client hands it to the transport. */
export interface TransportRequest {
  /** HTTP method. */
  method: string;
  /** Absolute URL. */
  url: URL;
  /** Request headers (copied; the caller's object is not changed). */
  headers?: Headers;
  /** The body; `null` or absent for none. */
  body?: RequestBody;
  /** Aborts the request. */
  signal?: AbortSignal | undefined;
  /** Follow 3xx answers (default true). `false` hands a redirect back as it is. */
  followRedirects?: boolean;
}

/** A response whose body has not been read yet. */
export interface TransportResponse {
  /** HTTP status. */
  readonly status: number;
  /** Response headers (several values of one header joined with `, `). */
  readonly headers: Headers;
  /** The URL that answered (after redirects). */
  readonly url: URL;
  /** The body stream, or `null` when there is none. */
  readonly body: ReadableStream<Uint8Array> | null;
  /** Reads the body as UTF-8 text. */
  text(): Promise<string>;
  /** Reads the body as JSON. */
  json(): Promise<unknown>;
  /** Drops the body without reading it (frees the connection). */
  discard(): Promise<void>;
}

/** What the `onRequest` hook learns about each HTTP exchange (one per redirect hop). */
export interface RequestLog {
  /** HTTP method. */
  method: string;
  /** URL with query values masked (no signatures, no upload state). */
  url: string;
  /** HTTP status; 0 when no response arrived. */
  status: number;
  /** Request body bytes sent. */
  bytes: number;
  /** Milliseconds until the response headers arrived (or the failure). */
  ms: number;
  /** The failure, when no response arrived. */
  error?: string;
  /** The pull quota the answer reported (Docker Hub's `ratelimit-*` headers). */
  rateLimit?: RateLimit;
}

/** A request reduced to what one hop on the wire needs. */
export interface BackendRequest {
  /** HTTP method. */
  method: string;
  /** Absolute URL. */
  url: URL;
  /** Headers to send. */
  headers: Headers;
  /** The body, already opened. */
  body: Uint8Array | ReadableStream<Uint8Array> | null;
  /** Aborts the request. */
  signal?: AbortSignal | undefined;
}

/** Sends one HTTP exchange without following redirects. */
export interface HttpBackend {
  /** Sends `request`; rejects with a `network` {@link RegistryError} or an `AbortError`. */
  send(request: BackendRequest): Promise<TransportResponse>;
  /** Releases connections and clients. */
  close(): void;
}

/** Sends requests, following redirects. */
export interface Transport {
  /** Sends `request` and returns the final response. */
  request(request: TransportRequest): Promise<TransportResponse>;
  /** Releases connections and clients. */
  close(): void;
}

/** A {@link TransportResponse} over a status, headers and a body stream. */
export class StreamResponse implements TransportResponse {
  /** HTTP status. */
  readonly status: number;
  /** Response headers. */
  readonly headers: Headers;
  /** The URL that answered. */
  readonly url: URL;
  /** The body stream. */
  readonly body: ReadableStream<Uint8Array> | null;

  /** Wraps an answer from a backend. */
  constructor(
    status: number,
    headers: Headers,
    url: URL,
    body: ReadableStream<Uint8Array> | null,
  ) {
    this.status = status;
    this.headers = headers;
    this.url = url;
    this.body = body;
  }

  /** Reads the body as UTF-8 text. */
  async text(): Promise<string> {
    if (this.body === null) return "";
    return await new Response(this.body).text();
  }

  /** Reads the body as JSON. */
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /** Cancels the body stream; errors are ignored. */
  async discard(): Promise<void> {
    if (this.body === null || this.body.locked) return;
    await this.body.cancel().catch(() => {});
  }
}
