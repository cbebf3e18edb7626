/**
 * An in-process OCI Distribution registry for tests and the demo. It follows the distribution
 * spec closely (upload sessions with a changing `_state`, streamed and chunked PATCH, status GET
 * for resume, cross-repo mount, manifest validation) and keeps every blob in memory, so it is for
 * small images only.
 *
 * Tests can observe what a client did ({@link MemoryRegistry.stats}, {@link MemoryRegistry.log},
 * {@link MemoryRegistry.sessions}) and inject faults per request: an error status, a dropped
 * connection after N request-body bytes, a stall, or a processed request whose response is lost.
 * Connection drops are real: the server sits behind a small TCP front ({@link serveCuttable}) that
 * closes the client's socket, so `fetch` rejects with a network error.
 *
 * Note that Deno's `fetch` re-sends a request with a replayable body (none, or a `Uint8Array`)
 * once when the pooled connection it reused is closed before the response; use
 * `Deno.createHttpClient({ poolMaxIdlePerHost: 0 })` when a test needs exactly one attempt.
 *
 * ```ts
 * await using registry = startMemoryRegistry({
 *   faults: ({ kind, attempt }) =>
 *     kind === "upload-patch" && attempt === 1 ? { type: "cut", afterBytes: 1000 } : undefined,
 * });
 * // push to `${registry.host}/demo:1` …
 * ```
 *
 * @module
 */

import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";

// ---------------------------------------------------------------------------------------------
// A Deno.serve server whose connections can be cut
// ---------------------------------------------------------------------------------------------

/** Lets a request handler drop the client's TCP connection. */
export interface ConnectionControl {
  /** Closes the client's connection at once; the client sees a network error. */
  cut(): void;
  /** Aborted once the connection is gone: cut, closed by the client, or the server closing. */
  readonly signal: AbortSignal;
}

/** A request handler for {@link serveCuttable}. */
export type CuttableHandler = (
  request: Request,
  connection: ConnectionControl,
) => Response | Promise<Response>;

/** A running {@link serveCuttable} server. */
export interface CuttableServer {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The port clients connect to. */
  readonly port: number;
  /** Cuts every open connection, stops listening and waits for the HTTP server to stop. */
  close(): Promise<void>;
}

interface Link {
  client: Deno.Conn;
  inner: Deno.Conn;
  closed: AbortController;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const read = await from.read(buffer);
      if (read === null) return;
      let offset = 0;
      while (offset < read) offset += await to.write(buffer.subarray(offset, read));
    }
  } catch {
    // the connection was cut or reset
  }
}

/**
 * Serves `handler` with `Deno.serve` on 127.0.0.1 behind a TCP front on another port 0 socket.
 * Every client connection is spliced to its own connection to the HTTP server, so a handler can
 * close the client's socket mid-request (`connection.cut()`): `Deno.serve` itself can only answer.
 */
export function serveCuttable(handler: CuttableHandler): CuttableServer {
  const links = new Map<number, Link>();
  const cut = (innerPort: number): void => {
    const link = links.get(innerPort);
    if (!link) return;
    links.delete(innerPort);
    closeQuietly(link.client);
    closeQuietly(link.inner);
    link.closed.abort();
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request, info) => {
      const port = info.remoteAddr.port;
      const signal = links.get(port)?.closed.signal ?? AbortSignal.abort();
      return handler(request, { cut: () => cut(port), signal });
    },
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const client of listener) {
      let inner: Deno.Conn;
      try {
        inner = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      } catch {
        closeQuietly(client);
        continue;
      }
      const innerPort = (inner.localAddr as Deno.NetAddr).port;
      links.set(innerPort, { client, inner, closed: new AbortController() });
      Promise.race([pump(client, inner), pump(inner, client)]).then(() => cut(innerPort));
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close(): Promise<void> {
      listener.close();
      for (const innerPort of [...links.keys()]) cut(innerPort);
      await accepting;
      await server.shutdown();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Requests and faults
// ---------------------------------------------------------------------------------------------

/** What a request does, from its method and path. */
export type RequestKind =
  | "ping"
  | "token"
  | "blob-head"
  | "blob-get"
  | "upload-start"
  | "upload-patch"
  | "upload-put"
  | "upload-status"
  | "upload-delete"
  | "manifest-put"
  | "manifest-get"
  | "manifest-head"
  | "tags-list"
  | "other";

/** A classified request path. */
export interface RequestTarget {
  /** What the request does. */
  kind: RequestKind;
  /** Repository name, for repository paths. */
  repository?: string;
  /** Blob digest, manifest tag or digest, or upload session id. */
  reference?: string;
}

const ROUTES: ReadonlyArray<{ pattern: RegExp; methods: Readonly<Record<string, RequestKind>> }> = [
  { pattern: /^\/v2\/?$/, methods: { GET: "ping", HEAD: "ping" } },
  { pattern: /^\/token$/, methods: { GET: "token", POST: "token" } },
  { pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, methods: { POST: "upload-start" } },
  {
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    methods: {
      PATCH: "upload-patch",
      PUT: "upload-put",
      GET: "upload-status",
      DELETE: "upload-delete",
    },
  },
  { pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/, methods: { HEAD: "blob-head", GET: "blob-get" } },
  {
    pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    methods: { PUT: "manifest-put", GET: "manifest-get", HEAD: "manifest-head" },
  },
  { pattern: /^\/v2\/(.+)\/tags\/list$/, methods: { GET: "tags-list" } },
];

/** Classifies a request by method and URL path (the same scheme for the registry and proxy). */
export function classifyRequest(method: string, pathname: string): RequestTarget {
  for (const route of ROUTES) {
    const match = route.pattern.exec(pathname);
    if (!match) continue;
    const kind = route.methods[method] ?? "other";
    const target: RequestTarget = { kind };
    if (match[1] !== undefined) target.repository = match[1];
    if (match[2] !== undefined) target.reference = decodeURIComponent(match[2]);
    return target;
  }
  return { kind: "other" };
}

/**
 * A fault to inject into one request:
 * - `status`: answer with this status (and headers, body) without processing the request;
 * - `cut`: read at most `afterBytes` request-body bytes, then drop the connection (bytes read
 *   into an upload session stay there, as on a real registry);
 * - `stall`: wait `ms` milliseconds, then process the request normally;
 * - `drop-response`: process the request fully (a final PUT stores the blob), then drop the
 *   connection instead of answering.
 * - `cut-response`: answer normally, but drop the connection after `afterBytes` bytes of the
 *   response body;
 * - `stall-response`: answer normally, but send nothing after `afterBytes` bytes of the response
 *   body until the client gives up.
 */
export type Fault =
  | { type: "status"; status: number; headers?: Record<string, string>; body?: string }
  | { type: "cut"; afterBytes: number }
  | { type: "stall"; ms: number }
  | { type: "drop-response" }
  | { type: "cut-response"; afterBytes: number }
  | { type: "stall-response"; afterBytes: number };

/** The kind of a {@link Fault}. */
export type FaultType = Fault["type"];

/** Which server of a {@link MemoryRegistry} answered: its own, or the redirect target. */
export type Origin = "primary" | "redirect";

/** What a fault hook learns about a request. */
export interface FaultContext {
  /** HTTP method. */
  method: string;
  /** What the request does. */
  kind: RequestKind;
  /** URL path. */
  path: string;
  /** Repository name, for repository paths. */
  repository: string | undefined;
  /** 1-based count of requests of this kind so far, this one included. */
  attempt: number;
  /** 1-based count of all requests so far, this one included. */
  sequence: number;
  /** Which server received it. */
  origin: Origin;
}

/** Decides a fault for one request, or none. */
export type FaultHook = (context: FaultContext) => Fault | undefined;

/** One request as the registry saw it. */
export interface RequestRecord {
  /** 1-based position among all requests. */
  sequence: number;
  /** HTTP method. */
  method: string;
  /** What the request does. */
  kind: RequestKind;
  /** URL path and query. */
  path: string;
  /** Which server received it. */
  origin: Origin;
  /** Whether an `Authorization` header arrived. */
  authorization: boolean;
  /** Whether the body came with a `Content-Length` (else it was streamed chunked, or absent). */
  contentLength: boolean;
  /** The `Range` header, when one arrived. */
  range?: string;
  /** Request-body bytes read. */
  bytes: number;
  /** The injected fault, if any. */
  fault?: FaultType;
  /** Status sent, `cut` when the connection was dropped while reading, `dropped` after processing. */
  outcome: number | "cut" | "dropped";
}

/** Counters for tests. */
export interface RegistryStats {
  /** Requests per `"<METHOD> <kind>"`, e.g. `"PATCH upload-patch"`. */
  requests: Record<string, number>;
  /** Request-body bytes read, per kind. */
  bytesReceived: Partial<Record<RequestKind, number>>;
  /** Faults injected, per type. */
  faults: Partial<Record<FaultType, number>>;
}

/** An upload session as tests see it. */
export interface UploadSessionInfo {
  /** Session id (the last path segment of its URL). */
  id: string;
  /** Repository it uploads to. */
  repository: string;
  /** `open` until completed, cancelled (DELETE) or failed (digest mismatch). */
  state: "open" | "completed" | "cancelled" | "failed";
  /** Bytes stored so far. */
  size: number;
  /** PATCH requests that added data. */
  patches: number;
  /** The digest it was committed as. */
  digest?: string;
}

/** A stored manifest. */
export interface StoredManifest {
  /** Its digest. */
  digest: string;
  /** The Content-Type it was pushed with. */
  mediaType: string;
  /** The exact bytes. */
  bytes: Uint8Array<ArrayBuffer>;
}

/** Credentials the registry demands, and how. */
export interface RegistryAuthOptions {
  /** Accepted user name. */
  username: string;
  /** Accepted password. */
  password: string;
  /** `basic` challenges for Basic credentials; `bearer` runs a token endpoint at `/token`. */
  scheme?: "basic" | "bearer";
  /** Lifetime of issued tokens; 300 s by default. */
  tokenTtlSeconds?: number;
  /**
   * Let requests without credentials pull (Docker Hub style): `bearer` issues anonymous tokens
   * that grant `pull` only; `basic` lets reads through without `Authorization`.
   */
  anonymousPull?: boolean;
}

/** Options for {@link startMemoryRegistry}. */
export interface MemoryRegistryOptions {
  /** Require credentials. */
  auth?: RegistryAuthOptions;
  /**
   * Send clients to a second server on another port (another origin): `blobs` answers blob
   * HEAD/GET of existing blobs with 307 there; `uploads` hands out upload locations there.
   * The second server needs no credentials and records whether `Authorization` arrived.
   */
  redirect?: { blobs?: boolean; uploads?: boolean };
  /** Fault hook; can be replaced later through {@link MemoryRegistry.faults}. */
  faults?: FaultHook;
  /** Sent as `OCI-Chunk-Min-Length` when an upload session starts. */
  chunkMinLength?: number;
  /** Answer blob GETs with the whole blob (200), ignoring `Range`, as some registries do. */
  ignoreRange?: boolean;
  /** Headers added to every answer (e.g. Docker Hub's `ratelimit-*`). */
  responseHeaders?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Media types and validation
// ---------------------------------------------------------------------------------------------

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const MANIFEST_TYPES = new Set([DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX]);
const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";

const NAME_PATTERN =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_PATTERN = /^[\w][\w.-]{0,127}$/;
const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

interface Descriptor {
  mediaType: string | undefined;
  digest: string;
  size: number;
  foreign: boolean;
}

class ManifestProblem extends Error {
  constructor(readonly code: string, message: string, readonly detail?: unknown) {
    super(message);
  }
}

function descriptorOf(value: unknown, where: string): Descriptor {
  if (typeof value !== "object" || value === null) {
    throw new ManifestProblem("MANIFEST_INVALID", `${where} is not an object`);
  }
  const record = value as Record<string, unknown>;
  const { digest, size, mediaType, urls } = record;
  if (typeof digest !== "string" || !DIGEST_PATTERN.test(digest)) {
    throw new ManifestProblem("MANIFEST_INVALID", `${where} has an invalid digest`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new ManifestProblem("MANIFEST_INVALID", `${where} has an invalid size`);
  }
  if (mediaType !== undefined && typeof mediaType !== "string") {
    throw new ManifestProblem("MANIFEST_INVALID", `${where} has an invalid mediaType`);
  }
  return { digest, size, mediaType, foreign: Array.isArray(urls) && urls.length > 0 };
}

function listOf(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new ManifestProblem("MANIFEST_INVALID", `${where} is missing`);
  return value;
}

function sha(algorithm: "sha256" | "sha512", chunks: readonly Uint8Array[]): string {
  const hash = createHash(algorithm);
  for (const chunk of chunks) hash.update(chunk);
  return `${algorithm}:${hash.digest("hex")}`;
}

function digestOf(digest: string, chunks: readonly Uint8Array[]): string {
  return sha(digest.startsWith("sha512:") ? "sha512" : "sha256", chunks);
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------------------------

interface Repository {
  blobs: Set<string>;
  manifests: Map<string, StoredManifest>;
  tags: Map<string, string>;
}

interface Session extends UploadSessionInfo {
  chunks: Uint8Array[];
  latestState: string;
  origin: Origin;
}

interface Body {
  chunks: Uint8Array[];
  size: number;
  /** False when the connection was cut or the client gave up mid-body. */
  complete: boolean;
}

interface Token {
  grants: Set<string>;
  expires: number;
}

interface StatePayload {
  id: string;
  offset: number;
  nonce: string;
}

const ERROR_CODES: Readonly<Record<number, string>> = {
  429: "TOOMANYREQUESTS",
  503: "UNAVAILABLE",
};

function jsonResponse(status: number, value: unknown, headers: HeadersInit = {}): Response {
  const response = new Response(JSON.stringify(value), { status, headers });
  response.headers.set("Content-Type", "application/json");
  return response;
}

function errorResponse(
  status: number,
  code: string,
  message: string,
  detail?: unknown,
  headers: HeadersInit = {},
): Response {
  return jsonResponse(status, { errors: [{ code, message, detail: detail ?? null }] }, headers);
}

function emptyResponse(status: number, headers: HeadersInit): Response {
  const response = new Response(null, { status, headers });
  response.headers.set("Content-Length", "0");
  return response;
}

/** Resolves after `ms` milliseconds, or as soon as `signal` aborts. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/** How long a `cut-response` waits for the bytes before the cut to reach the client. */
const RESPONSE_FLUSH_MS = 50;

/** Resolves once `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * Passes the first `limit` bytes of `body` through, then runs `broken` and sends nothing more
 * (the server cancels the stream when the connection goes).
 */
function breakAfter(
  body: ReadableStream<Uint8Array>,
  limit: number,
  broken: () => Promise<void>,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      if (sent >= limit) {
        await broken();
        return;
      }
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      const part = value.subarray(0, limit - sent);
      sent += part.length;
      controller.enqueue(part);
    },
    cancel(reason): Promise<void> {
      return reader.cancel(reason);
    },
  });
}

/** An in-memory registry; create it with {@link startMemoryRegistry}. */
export class MemoryRegistry {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `127.0.0.1:<port>`, for image references. */
  readonly host: string;
  /** Base URL of the redirect target, when redirects are on. */
  readonly redirectUrl: string | undefined;
  /** The fault hook; replace it at any time. */
  faults: FaultHook | undefined;
  /** Counters; reset with {@link resetStats}. */
  stats: RegistryStats = { requests: {}, bytesReceived: {}, faults: {} };
  /** Every request in arrival order; reset with {@link resetStats}. */
  log: RequestRecord[] = [];

  readonly #options: MemoryRegistryOptions;
  readonly #servers: CuttableServer[];
  readonly #blobs = new Map<string, Uint8Array<ArrayBuffer>>();
  readonly #repositories = new Map<string, Repository>();
  readonly #sessions = new Map<string, Session>();
  readonly #attempts = new Map<RequestKind, number>();
  readonly #tokens = new Map<string, Token>();
  readonly #secret = randomBytes(32);
  #sequence = 0;

  /** Use {@link startMemoryRegistry}. */
  constructor(options: MemoryRegistryOptions) {
    this.#options = options;
    this.faults = options.faults;
    const primary = serveCuttable((request, connection) =>
      this.#handle(request, connection, "primary")
    );
    this.#servers = [primary];
    this.url = primary.url;
    this.host = `127.0.0.1:${primary.port}`;
    if (options.redirect?.blobs || options.redirect?.uploads) {
      const second = serveCuttable((request, connection) =>
        this.#handle(request, connection, "redirect")
      );
      this.#servers.push(second);
      this.redirectUrl = second.url;
    }
  }

  /** Upload sessions in creation order. */
  sessions(): UploadSessionInfo[] {
    return [...this.#sessions.values()].map((session) => {
      const info: UploadSessionInfo = {
        id: session.id,
        repository: session.repository,
        state: session.state,
        size: session.size,
        patches: session.patches,
      };
      if (session.digest !== undefined) info.digest = session.digest;
      return info;
    });
  }

  /** Whether `repository` holds the blob. */
  hasBlob(repository: string, digest: string): boolean {
    return this.#repositories.get(repository)?.blobs.has(digest) ?? false;
  }

  /** The stored bytes of a blob (any repository); a live view, so a test can corrupt it. */
  blob(digest: string): Uint8Array | undefined {
    return this.#blobs.get(digest);
  }

  /** Stores a blob in `repository` directly and returns its sha256 digest. */
  seedBlob(repository: string, data: Uint8Array): string {
    const digest = sha("sha256", [data]);
    this.#blobs.set(digest, data.slice());
    this.#repository(repository).blobs.add(digest);
    return digest;
  }

  /**
   * Stores a manifest under `reference` (a tag or digest) without validating it — schema 1, a
   * wrong `digest` reported in `Docker-Content-Digest` — and returns the digest it reports.
   */
  seedManifest(
    repository: string,
    reference: string,
    manifest: { bytes: Uint8Array; mediaType: string; digest?: string },
  ): string {
    const digest = manifest.digest ?? sha("sha256", [manifest.bytes]);
    const repo = this.#repository(repository);
    repo.manifests.set(digest, {
      digest,
      mediaType: manifest.mediaType,
      bytes: manifest.bytes.slice(),
    });
    if (!DIGEST_PATTERN.test(reference)) repo.tags.set(reference, digest);
    return digest;
  }

  /** A manifest by tag or digest. */
  manifest(repository: string, reference: string): StoredManifest | undefined {
    const repo = this.#repositories.get(repository);
    if (!repo) return undefined;
    return repo.manifests.get(repo.tags.get(reference) ?? reference);
  }

  /** Tags of `repository`, sorted. */
  tags(repository: string): string[] {
    return [...(this.#repositories.get(repository)?.tags.keys() ?? [])].sort();
  }

  /** Clears {@link stats}, {@link log} and the per-kind attempt counters. */
  resetStats(): void {
    this.stats = { requests: {}, bytesReceived: {}, faults: {} };
    this.log = [];
    this.#attempts.clear();
  }

  /** Stops the servers. */
  async close(): Promise<void> {
    await Promise.all(this.#servers.map((server) => server.close()));
  }

  /** Stops the servers (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #repository(name: string): Repository {
    let repo = this.#repositories.get(name);
    if (!repo) {
      repo = { blobs: new Set(), manifests: new Map(), tags: new Map() };
      this.#repositories.set(name, repo);
    }
    return repo;
  }

  async #handle(
    request: Request,
    connection: ConnectionControl,
    origin: Origin,
  ): Promise<Response> {
    const url = new URL(request.url);
    const target = classifyRequest(request.method, url.pathname);
    const attempt = (this.#attempts.get(target.kind) ?? 0) + 1;
    this.#attempts.set(target.kind, attempt);
    const sequence = ++this.#sequence;
    const key = `${request.method} ${target.kind}`;
    this.stats.requests[key] = (this.stats.requests[key] ?? 0) + 1;
    const record: RequestRecord = {
      sequence,
      method: request.method,
      kind: target.kind,
      path: url.pathname + url.search,
      origin,
      authorization: request.headers.has("Authorization"),
      contentLength: request.headers.has("Content-Length"),
      bytes: 0,
      outcome: 0,
    };
    const range = request.headers.get("Range");
    if (range !== null) record.range = range;
    this.log.push(record);
    const fault = this.faults?.({
      method: request.method,
      kind: target.kind,
      path: url.pathname,
      repository: target.repository,
      attempt,
      sequence,
      origin,
    });
    if (fault) {
      record.fault = fault.type;
      this.stats.faults[fault.type] = (this.stats.faults[fault.type] ?? 0) + 1;
    }
    if (fault?.type === "stall") await delay(fault.ms, connection.signal);

    const body = await this.#readBody(
      request,
      fault?.type === "cut" ? fault.afterBytes : undefined,
    );
    record.bytes = body.size;
    this.stats.bytesReceived[target.kind] = (this.stats.bytesReceived[target.kind] ?? 0) +
      body.size;
    if (fault?.type === "cut") connection.cut();

    let response: Response;
    if (fault?.type === "status") {
      const code = ERROR_CODES[fault.status] ?? "UNKNOWN";
      response = fault.body === undefined
        ? errorResponse(fault.status, code, "injected fault", undefined, fault.headers)
        : new Response(fault.body, { status: fault.status, headers: fault.headers ?? {} });
    } else {
      response = await this.#route(request, url, target, origin, body);
    }
    response.headers.set("Docker-Distribution-API-Version", "registry/2.0");
    for (const [name, value] of Object.entries(this.#options.responseHeaders ?? {})) {
      response.headers.set(name, value);
    }
    if (
      (fault?.type === "cut-response" || fault?.type === "stall-response") && response.body
    ) {
      const broken = fault.type === "cut-response"
        ? async (): Promise<void> => {
          await delay(RESPONSE_FLUSH_MS, connection.signal);
          connection.cut();
        }
        : () => aborted(connection.signal);
      response = new Response(breakAfter(response.body, fault.afterBytes, broken), {
        status: response.status,
        headers: response.headers,
      });
    }
    if (!body.complete) {
      record.outcome = "cut";
    } else if (fault?.type === "drop-response") {
      connection.cut();
      record.outcome = "dropped";
    } else {
      record.outcome = response.status;
    }
    return response;
  }

  async #readBody(request: Request, limit: number | undefined): Promise<Body> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let complete = true;
    if (request.body) {
      const reader = request.body.getReader();
      try {
        while (limit === undefined || size < limit) {
          const { done, value } = await reader.read();
          if (done) break;
          const chunk = limit === undefined ? value : value.subarray(0, limit - size);
          chunks.push(chunk);
          size += chunk.length;
        }
      } catch {
        complete = false;
      }
      reader.cancel().catch(() => {});
    }
    return { chunks, size, complete: complete && limit === undefined };
  }

  #route(
    request: Request,
    url: URL,
    target: RequestTarget,
    origin: Origin,
    body: Body,
  ): Response | Promise<Response> {
    if (target.kind === "token") return this.#token(request, url, body);
    if (target.kind === "other") {
      return errorResponse(
        405,
        "UNSUPPORTED",
        `${request.method} ${url.pathname} is not supported`,
      );
    }
    const repository = target.repository;
    if (repository !== undefined && !NAME_PATTERN.test(repository)) {
      return errorResponse(400, "NAME_INVALID", `invalid repository name ${repository}`);
    }
    if (origin === "redirect") {
      if (!target.kind.startsWith("blob-") && !target.kind.startsWith("upload-")) {
        return errorResponse(404, "NOT_FOUND", "the redirect target serves blobs and uploads only");
      }
    } else {
      const denied = this.#authorize(request, target, url);
      if (denied) return denied;
    }
    const reference = target.reference ?? "";
    switch (target.kind) {
      case "ping":
        return jsonResponse(200, {});
      case "blob-head":
      case "blob-get":
        return this.#getBlob(
          repository ?? "",
          reference,
          origin,
          target.kind === "blob-get" ? request.headers.get("Range") : undefined,
        );
      case "upload-start":
        return this.#startUpload(request, repository ?? "", url, body);
      case "upload-patch":
      case "upload-put":
      case "upload-status":
      case "upload-delete":
        return this.#session(request, repository ?? "", reference, url, origin, body);
      case "manifest-put":
        return this.#putManifest(request, repository ?? "", reference, body);
      case "manifest-get":
      case "manifest-head":
        return this.#getManifest(repository ?? "", reference, target.kind === "manifest-get");
      case "tags-list":
        return this.#listTags(repository ?? "", url);
    }
  }

  // ----- auth ---------------------------------------------------------------------------------

  #authorize(request: Request, target: RequestTarget, url: URL): Response | undefined {
    const auth = this.#options.auth;
    if (!auth) return undefined;
    const header = request.headers.get("Authorization") ?? "";
    const scheme = auth.scheme ?? "basic";
    const push = target.kind.startsWith("upload-") || target.kind === "manifest-put";
    if (scheme === "basic") {
      if (this.#basicMatches(header)) return undefined;
      if (auth.anonymousPull && header === "" && !push) return undefined;
      return errorResponse(401, "UNAUTHORIZED", "authentication required", undefined, {
        "WWW-Authenticate": 'Basic realm="memory-registry"',
      });
    }
    const token = this.#validToken(header);
    if (token) {
      if (target.repository === undefined) return undefined;
      if (token.grants.has(`${target.repository}:${push ? "push" : "pull"}`)) return undefined;
    }
    let challenge = `Bearer realm="${url.origin}/token",service="memory-registry"`;
    if (target.repository !== undefined) {
      challenge += `,scope="repository:${target.repository}:${push ? "pull,push" : "pull"}"`;
    }
    return errorResponse(401, "UNAUTHORIZED", "authentication required", undefined, {
      "WWW-Authenticate": challenge,
    });
  }

  #basicMatches(header: string): boolean {
    const auth = this.#options.auth;
    if (!auth || !header.startsWith("Basic ")) return false;
    let decoded: string;
    try {
      decoded = new TextDecoder().decode(
        Uint8Array.from(atob(header.slice(6).trim()), (c) => c.charCodeAt(0)),
      );
    } catch {
      return false;
    }
    return this.#credentialsMatch(
      decoded.slice(0, decoded.indexOf(":")),
      decoded.slice(decoded.indexOf(":") + 1),
    );
  }

  #credentialsMatch(username: string, password: string): boolean {
    const auth = this.#options.auth;
    if (!auth) return false;
    const given = new TextEncoder().encode(`${username}\n${password}`);
    const wanted = new TextEncoder().encode(`${auth.username}\n${auth.password}`);
    return given.length === wanted.length && timingSafeEqual(given, wanted);
  }

  #validToken(header: string): Token | undefined {
    if (!header.startsWith("Bearer ")) return undefined;
    const token = this.#tokens.get(header.slice(7).trim());
    return token && token.expires > Date.now() ? token : undefined;
  }

  #token(request: Request, url: URL, body: Body): Response {
    const auth = this.#options.auth;
    if (auth?.scheme !== "bearer") {
      return errorResponse(404, "NOT_FOUND", "no token endpoint on this registry");
    }
    let scopes = url.searchParams.getAll("scope");
    let allowed = false;
    let refresh = false;
    let anonymous = false;
    if (request.method === "POST") {
      const form = new URLSearchParams(new TextDecoder().decode(concat(body.chunks, body.size)));
      scopes = form.getAll("scope").flatMap((scope) => scope.split(" "));
      const grant = form.get("grant_type");
      if (grant === "password") {
        allowed = this.#credentialsMatch(form.get("username") ?? "", form.get("password") ?? "");
      } else if (grant === "refresh_token") {
        allowed = this.#tokens.has(`refresh:${form.get("refresh_token") ?? ""}`);
      }
      refresh = true;
    } else if (!request.headers.has("Authorization") && auth.anonymousPull) {
      allowed = true;
      anonymous = true;
    } else {
      allowed = this.#basicMatches(request.headers.get("Authorization") ?? "");
    }
    if (!allowed) {
      return errorResponse(401, "UNAUTHORIZED", "invalid credentials", undefined, {
        "WWW-Authenticate": 'Basic realm="memory-registry-token"',
      });
    }
    const grants = new Set<string>();
    for (const scope of scopes) {
      const parts = scope.split(":");
      if (parts.length < 3 || parts[0] !== "repository") continue;
      const name = parts.slice(1, -1).join(":");
      for (const action of (parts.at(-1) ?? "").split(",")) {
        if (!anonymous || action === "pull") grants.add(`${name}:${action}`);
      }
    }
    const ttl = auth.tokenTtlSeconds ?? 300;
    const token = randomUUID();
    this.#tokens.set(token, { grants, expires: Date.now() + ttl * 1000 });
    const answer: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: ttl,
      issued_at: new Date().toISOString(),
    };
    if (refresh) {
      const refreshToken = randomUUID();
      this.#tokens.set(`refresh:${refreshToken}`, { grants: new Set(), expires: Infinity });
      answer.refresh_token = refreshToken;
    }
    return jsonResponse(200, answer);
  }

  #canPull(request: Request, repository: string): boolean {
    const auth = this.#options.auth;
    if (auth?.scheme !== "bearer") return true;
    const token = this.#validToken(request.headers.get("Authorization") ?? "");
    return token?.grants.has(`${repository}:pull`) ?? false;
  }

  // ----- blobs and uploads --------------------------------------------------------------------

  /** A blob HEAD (`range` undefined) or GET, honouring `Range: bytes=<first>-[<last>]`. */
  #getBlob(
    repository: string,
    digest: string,
    origin: Origin,
    range: string | null | undefined,
  ): Response {
    if (!DIGEST_PATTERN.test(digest)) {
      return errorResponse(400, "DIGEST_INVALID", `invalid digest ${digest}`);
    }
    const data = this.#blobs.get(digest);
    if (!data || !this.hasBlob(repository, digest)) {
      return errorResponse(404, "BLOB_UNKNOWN", `blob unknown to registry: ${digest}`, { digest });
    }
    if (origin === "primary" && this.#options.redirect?.blobs) {
      return emptyResponse(307, {
        Location: `${this.redirectUrl}/v2/${repository}/blobs/${digest}`,
        "Docker-Content-Digest": digest,
      });
    }
    const headers = {
      "Content-Length": String(data.length),
      "Content-Type": "application/octet-stream",
      "Docker-Content-Digest": digest,
    };
    const asked = /^bytes=(\d+)-(\d*)$/.exec(range ?? "");
    if (asked === null || this.#options.ignoreRange) {
      return new Response(range === undefined ? null : data, { status: 200, headers });
    }
    const first = Number(asked[1]);
    const last = Math.min(asked[2] === "" ? data.length - 1 : Number(asked[2]), data.length - 1);
    if (first >= data.length || last < first) {
      return emptyResponse(416, { "Content-Range": `bytes */${data.length}` });
    }
    return new Response(data.slice(first, last + 1), {
      status: 206,
      headers: {
        ...headers,
        "Content-Length": String(last - first + 1),
        "Content-Range": `bytes ${first}-${last}/${data.length}`,
      },
    });
  }

  #newState(session: Session): string {
    const payload: StatePayload = {
      id: session.id,
      offset: session.size,
      nonce: randomUUID(),
    };
    const encoded = btoa(JSON.stringify(payload)).replaceAll("+", "-").replaceAll("/", "_")
      .replaceAll("=", "");
    const mac = createHmac("sha256", this.#secret).update(encoded).digest("base64url");
    session.latestState = `${encoded}.${mac}`;
    return session.latestState;
  }

  #stateMatches(state: string | null, session: Session): boolean {
    if (!state) return false;
    const [encoded = "", mac = ""] = state.split(".");
    const expected = createHmac("sha256", this.#secret).update(encoded).digest("base64url");
    if (mac !== expected) return false;
    try {
      const payload = JSON.parse(
        atob(encoded.replaceAll("-", "+").replaceAll("_", "/")),
      ) as StatePayload;
      return payload.id === session.id;
    } catch {
      return false;
    }
  }

  #uploadHeaders(session: Session, status: number): Response {
    const state = this.#newState(session);
    const path = `/v2/${session.repository}/blobs/uploads/${session.id}?_state=${state}`;
    const location = session.origin === "redirect" ? `${this.redirectUrl}${path}` : path;
    return emptyResponse(status, {
      Location: location,
      Range: `0-${Math.max(session.size - 1, 0)}`,
      "Docker-Upload-UUID": session.id,
    });
  }

  #commit(repository: string, digest: string, data: Uint8Array<ArrayBuffer>): Response {
    this.#blobs.set(digest, data);
    this.#repository(repository).blobs.add(digest);
    return emptyResponse(201, {
      Location: `/v2/${repository}/blobs/${digest}`,
      "Docker-Content-Digest": digest,
    });
  }

  #startUpload(request: Request, repository: string, url: URL, body: Body): Response {
    if (!body.complete) return emptyResponse(400, {});
    const mount = url.searchParams.get("mount");
    const from = url.searchParams.get("from");
    if (mount !== null && from !== null && DIGEST_PATTERN.test(mount)) {
      if (this.hasBlob(from, mount) && this.#canPull(request, from)) {
        this.#repository(repository).blobs.add(mount);
        return emptyResponse(201, {
          Location: `/v2/${repository}/blobs/${mount}`,
          "Docker-Content-Digest": mount,
        });
      }
    }
    const digest = url.searchParams.get("digest");
    if (digest !== null && mount === null) {
      if (!DIGEST_PATTERN.test(digest)) {
        return errorResponse(400, "DIGEST_INVALID", `invalid digest ${digest}`);
      }
      const actual = digestOf(digest, body.chunks);
      if (actual !== digest) {
        return errorResponse(400, "DIGEST_INVALID", `content does not match digest ${digest}`, {
          digest,
        });
      }
      return this.#commit(repository, digest, concat(body.chunks, body.size));
    }
    const session: Session = {
      id: randomUUID(),
      repository,
      state: "open",
      size: 0,
      patches: 0,
      chunks: [],
      latestState: "",
      origin: this.#options.redirect?.uploads ? "redirect" : "primary",
    };
    this.#sessions.set(session.id, session);
    this.#repository(repository);
    const response = this.#uploadHeaders(session, 202);
    const minimum = this.#options.chunkMinLength;
    if (minimum !== undefined) response.headers.set("OCI-Chunk-Min-Length", String(minimum));
    return response;
  }

  #session(
    request: Request,
    repository: string,
    id: string,
    url: URL,
    origin: Origin,
    body: Body,
  ): Response {
    const session = this.#sessions.get(id);
    if (!session || session.state !== "open" || session.repository !== repository) {
      return errorResponse(404, "BLOB_UPLOAD_UNKNOWN", `blob upload unknown: ${id}`);
    }
    if (session.origin !== origin) {
      return errorResponse(404, "BLOB_UPLOAD_UNKNOWN", `blob upload ${id} lives on another origin`);
    }
    const state = url.searchParams.get("_state");
    if (request.method === "DELETE") {
      session.state = "cancelled";
      return emptyResponse(204, {});
    }
    if (!this.#stateMatches(state, session)) {
      return errorResponse(400, "BLOB_UPLOAD_INVALID", `invalid _state for upload ${id}`);
    }
    if (request.method === "GET") return this.#uploadHeaders(session, 204);
    if (state !== session.latestState) {
      return errorResponse(
        400,
        "BLOB_UPLOAD_INVALID",
        `stale _state for upload ${id}: use the newest Location`,
      );
    }
    const range = request.headers.get("Content-Range");
    if (range !== null) {
      const match = /^(\d+)-(\d+)$/.exec(range.trim());
      const start = Number(match?.[1]);
      const end = Number(match?.[2]);
      if (!match || start !== session.size || end < start) {
        return errorResponse(
          416,
          "BLOB_UPLOAD_INVALID",
          `range ${range} does not continue upload`,
          {
            size: session.size,
          },
          { Range: `0-${Math.max(session.size - 1, 0)}`, Location: url.pathname + url.search },
        );
      }
      if (body.complete && end - start + 1 !== body.size) {
        return errorResponse(400, "BLOB_UPLOAD_INVALID", `range ${range} does not match body`);
      }
    }
    if (body.size > 0) {
      session.chunks.push(...body.chunks);
      session.size += body.size;
      if (request.method === "PATCH") session.patches++;
    }
    if (!body.complete) return emptyResponse(400, {});
    if (request.method === "PATCH") return this.#uploadHeaders(session, 202);

    const digest = url.searchParams.get("digest");
    if (digest === null || !DIGEST_PATTERN.test(digest)) {
      return errorResponse(400, "DIGEST_INVALID", `missing or invalid digest ${digest ?? ""}`);
    }
    if (digestOf(digest, session.chunks) !== digest) {
      session.state = "failed";
      return errorResponse(400, "DIGEST_INVALID", `content does not match digest ${digest}`, {
        digest,
      });
    }
    session.state = "completed";
    session.digest = digest;
    return this.#commit(repository, digest, concat(session.chunks, session.size));
  }

  // ----- manifests and tags -------------------------------------------------------------------

  #putManifest(request: Request, repository: string, reference: string, body: Body): Response {
    if (!body.complete) return emptyResponse(400, {});
    const contentType = request.headers.get("Content-Type") ?? "";
    const bytes = concat(body.chunks, body.size);
    const digest = sha("sha256", [bytes]);
    try {
      if (DIGEST_PATTERN.test(reference)) {
        if (digestOf(reference, [bytes]) !== reference) {
          return errorResponse(400, "DIGEST_INVALID", `manifest does not match ${reference}`);
        }
      } else if (!TAG_PATTERN.test(reference)) {
        return errorResponse(400, "TAG_INVALID", `invalid tag ${reference}`);
      }
      this.#validateManifest(repository, contentType, bytes);
    } catch (error) {
      if (!(error instanceof ManifestProblem)) throw error;
      return errorResponse(400, error.code, error.message, error.detail);
    }
    const repo = this.#repository(repository);
    const stored = DIGEST_PATTERN.test(reference) ? reference : digest;
    repo.manifests.set(stored, { digest: stored, mediaType: contentType, bytes });
    if (!DIGEST_PATTERN.test(reference)) repo.tags.set(reference, stored);
    return emptyResponse(201, {
      Location: `/v2/${repository}/manifests/${stored}`,
      "Docker-Content-Digest": stored,
    });
  }

  #validateManifest(repository: string, contentType: string, bytes: Uint8Array): void {
    if (!MANIFEST_TYPES.has(contentType)) {
      throw new ManifestProblem("MANIFEST_INVALID", `unsupported Content-Type ${contentType}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new ManifestProblem("MANIFEST_INVALID", "manifest is not valid JSON");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new ManifestProblem("MANIFEST_INVALID", "manifest is not a JSON object");
    }
    const manifest = parsed as Record<string, unknown>;
    if (manifest.schemaVersion !== 2) {
      throw new ManifestProblem("MANIFEST_INVALID", "schemaVersion must be 2");
    }
    const docker = contentType.startsWith("application/vnd.docker.");
    if (manifest.mediaType === undefined ? docker : manifest.mediaType !== contentType) {
      throw new ManifestProblem(
        "MANIFEST_INVALID",
        `mediaType ${String(manifest.mediaType)} does not match Content-Type ${contentType}`,
      );
    }
    const repo = this.#repositories.get(repository);
    if (contentType === DOCKER_LIST || contentType === OCI_INDEX) {
      listOf(manifest.manifests, "manifests").forEach((entry, i) => {
        const child = descriptorOf(entry, `manifests[${i}]`);
        if (!repo?.manifests.has(child.digest)) {
          throw new ManifestProblem(
            "MANIFEST_BLOB_UNKNOWN",
            `child manifest unknown: ${child.digest}`,
            { digest: child.digest },
          );
        }
      });
      return;
    }
    const config = descriptorOf(manifest.config, "config");
    if (docker && config.mediaType !== DOCKER_CONFIG) {
      throw new ManifestProblem("MANIFEST_INVALID", `config mediaType ${config.mediaType}`);
    }
    const layers = listOf(manifest.layers, "layers").map((entry, i) =>
      descriptorOf(entry, `layers[${i}]`)
    );
    for (const [i, layer] of layers.entries()) {
      const family = layer.mediaType?.split(".")[1];
      if (docker ? family !== "docker" : family === "docker") {
        throw new ManifestProblem(
          "MANIFEST_INVALID",
          `layers[${i}] mediaType ${layer.mediaType} does not belong in a ${contentType}`,
        );
      }
    }
    for (const descriptor of [config, ...layers]) {
      if (descriptor.foreign) continue;
      const data = this.#blobs.get(descriptor.digest);
      if (!data || !repo?.blobs.has(descriptor.digest)) {
        throw new ManifestProblem(
          "MANIFEST_BLOB_UNKNOWN",
          `blob unknown to registry: ${descriptor.digest}`,
          { digest: descriptor.digest },
        );
      }
      if (data.length !== descriptor.size) {
        throw new ManifestProblem(
          "MANIFEST_INVALID",
          `size ${descriptor.size} of ${descriptor.digest} does not match the blob (${data.length})`,
        );
      }
    }
  }

  #getManifest(repository: string, reference: string, withBody: boolean): Response {
    const manifest = this.manifest(repository, reference);
    if (!manifest) {
      return errorResponse(404, "MANIFEST_UNKNOWN", `manifest unknown: ${reference}`);
    }
    return new Response(withBody ? manifest.bytes : null, {
      status: 200,
      headers: {
        "Content-Type": manifest.mediaType,
        "Content-Length": String(manifest.bytes.length),
        "Docker-Content-Digest": manifest.digest,
      },
    });
  }

  #listTags(repository: string, url: URL): Response {
    if (!this.#repositories.has(repository)) {
      return errorResponse(404, "NAME_UNKNOWN", `repository name not known: ${repository}`);
    }
    const last = url.searchParams.get("last");
    let tags = this.tags(repository).filter((tag) => last === null || tag > last);
    const n = Number(url.searchParams.get("n") ?? NaN);
    const headers: Record<string, string> = {};
    if (Number.isSafeInteger(n) && n >= 0 && tags.length > n) {
      tags = tags.slice(0, n);
      headers.Link = `</v2/${repository}/tags/list?n=${n}&last=${tags.at(-1) ?? ""}>; rel="next"`;
    }
    return jsonResponse(200, { name: repository, tags }, headers);
  }
}

/** Starts an in-memory registry on 127.0.0.1 (a free port). Close it when done. */
export function startMemoryRegistry(options: MemoryRegistryOptions = {}): MemoryRegistry {
  return new MemoryRegistry(options);
}
