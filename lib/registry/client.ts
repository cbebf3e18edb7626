/**
 * `RegistryClient`: the registry API calls a push makes against one repository — ping, blob
 * existence, cross-repository mounts, upload sessions (one streamed PATCH, chunks, status,
 * completion, cancellation) and manifests. It knows nothing of archives, and retries nothing
 * except one request after a 401 with a fresh token; the caller's retry helper decides the rest
 * from {@link RegistryError.retryable}.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { PusherError } from "../errors.ts";
import { Authorizer, type AuthScheme, type AuthTicket, type BearerRealm } from "./auth.ts";
import { ANONYMOUS, type Credentials } from "./credentials.ts";
import { errorForStatus, parseErrorBody, RegistryError } from "./errors.ts";
import type { BodyFactory, RequestBody, RequestLog, Transport, TransportResponse } from "./http.ts";
import type { Reference } from "./reference.ts";
import { createTransport } from "./transport.ts";

/** An open blob upload. */
export interface UploadSession {
  /** Where the next request of this upload goes (the newest `Location`). */
  readonly location: URL;
  /** Bytes the registry holds for this upload, as counted by us. */
  readonly offset: number;
  /** `OCI-Chunk-Min-Length`: the smallest chunk the registry takes, except the last. */
  readonly minChunkLength?: number;
}

/** Whether a blob exists, and its size when the registry said. */
export interface BlobStatus {
  /** True when the registry answered 200 or a redirect. */
  exists: boolean;
  /** Size from `Content-Length` of a 200. */
  size?: number;
}

/** Options of {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** The target: registry name, API base URL and repository. */
  reference: Pick<Reference, "registry" | "apiBase" | "repository">;
  /** Credentials; anonymous when absent. */
  credentials?: Credentials;
  /** A transport to share between clients; the client then does not close it. */
  transport?: Transport;
  /** Extra trusted CA certificates (PEM), for a transport the client creates. */
  caCerts?: string[];
  /** Skip TLS verification, for a transport the client creates. */
  skipTlsVerify?: boolean;
  /** Request hook, for a transport the client creates. */
  onRequest?: (log: RequestLog) => void;
  /** `User-Agent`, for a transport the client creates. */
  userAgent?: string;
  /** Use the OAuth2 password grant (`POST`) to get tokens with user-name/password credentials. */
  preferOAuth?: boolean;
}

/** Media types asked for when looking a manifest up. */
export const MANIFEST_ACCEPT: string = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

const OCTET_STREAM = "application/octet-stream";
/** What a request to another origin carries: no authorisation. */
const NO_TICKET: AuthTicket = Object.freeze({ header: undefined, generation: 0 });

interface Exchange {
  method: string;
  url: URL;
  what: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  followRedirects?: boolean;
  signal?: AbortSignal | undefined;
  /**
   * Sent without authorisation, and a 401 only teaches the authoriser the challenge (fetching a
   * token) instead of sending the request again.
   */
  probe?: boolean;
}

/** Talks to one repository of one registry. */
export class RegistryClient {
  /** The registry as the user named it, e.g. `docker.io`. */
  readonly registry: string;
  /** The repository, e.g. `library/alpine`. */
  readonly repository: string;
  #base: URL;
  #transport: Transport;
  #ownsTransport: boolean;
  #auth: Authorizer;

  /** Creates a client; no request is sent until the first call. */
  constructor(options: RegistryClientOptions) {
    this.registry = options.reference.registry;
    this.repository = options.reference.repository;
    this.#base = new URL(options.reference.apiBase.origin);
    this.#ownsTransport = options.transport === undefined;
    this.#transport = options.transport ?? createTransport(transportOptions(options));
    const authOptions: ConstructorParameters<typeof Authorizer>[2] = {
      registry: this.registry,
      scopes: [`repository:${this.repository}:pull,push`],
    };
    if (options.preferOAuth !== undefined) authOptions.preferOAuth = options.preferOAuth;
    this.#auth = new Authorizer(this.#transport, options.credentials ?? ANONYMOUS, authOptions);
  }

  /** The auth scheme the registry asked for (`unknown` until a challenge was seen). */
  get authScheme(): AuthScheme {
    return this.#auth.scheme;
  }

  /** The token realm this run learnt from the registry, for a later run to start from. */
  get bearerRealm(): BearerRealm | undefined {
    return this.#auth.bearerRealm;
  }

  /**
   * Starts fetching a token from a realm an earlier run learnt, in parallel with the first
   * requests (see {@link Authorizer.assumeBearer}).
   */
  assumeBearer(realm: BearerRealm, signal?: AbortSignal): void {
    this.#auth.assumeBearer(realm, signal);
  }

  /**
   * `GET /v2/`: checks that the API answers and establishes the auth scheme, fetching a first
   * token (so wrong credentials fail here).
   */
  async ping(signal?: AbortSignal): Promise<void> {
    await this.#checkApi(false, signal);
  }

  /**
   * `GET /v2/` once, without authorisation and without waiting for a token being fetched, so it
   * can run beside the first requests of a push: checks that the API answers and learns the auth
   * scheme from its challenge (fetching a first bearer token, so credentials a token service
   * refuses fail here). It is not sent again with the token: the requests that follow prove it.
   */
  async probe(signal?: AbortSignal): Promise<void> {
    await this.#checkApi(true, signal);
  }

  async #checkApi(probe: boolean, signal: AbortSignal | undefined): Promise<void> {
    const url = new URL("/v2/", this.#base);
    const what = `GET ${url.href}`;
    const response = await this.#send({ method: "GET", url, what, signal, probe });
    if (response.status === 200 || (probe && response.status === 401)) {
      await response.discard();
      return;
    }
    if (response.status === 404) {
      await response.discard();
      throw new RegistryError("registry", `${url.href} is not a registry API (HTTP 404)`, {
        status: 404,
        hint: "check the registry host and port in the target reference",
      });
    }
    throw await this.#error(response, what);
  }

  /** `HEAD` a blob: 200 or any redirect means the registry has it. */
  async blobExists(digest: string, signal?: AbortSignal): Promise<BlobStatus> {
    const url = this.#url(`blobs/${digest}`);
    const what = `checking blob ${digest} in ${this.#name()}`;
    const response = await this.#send({
      method: "HEAD",
      url,
      what,
      followRedirects: false,
      signal,
    });
    await response.discard();
    if (response.status === 404) return { exists: false };
    if (response.status === 200) {
      const length = Number(response.headers.get("content-length") ?? Number.NaN);
      return Number.isSafeInteger(length) && length >= 0
        ? { exists: true, size: length }
        : { exists: true };
    }
    if (response.status >= 300 && response.status < 400) return { exists: true };
    throw await this.#error(response, what);
  }

  /**
   * Mounts a blob from another repository of the same registry. Returns true when the registry
   * mounted it (201); false when it opened an upload instead (202, that session is cancelled) or
   * refused (any other answer, including a refused token for the source repository).
   */
  async mountBlob(digest: string, fromRepository: string, signal?: AbortSignal): Promise<boolean> {
    const scope = `repository:${fromRepository}:pull`;
    this.#auth.addScope(scope);
    const url = this.#url("blobs/uploads/");
    url.search = `mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepository)}`;
    const what = `mounting ${digest} from ${fromRepository} into ${this.#name()}`;
    let response: TransportResponse;
    try {
      response = await this.#send({ method: "POST", url, what, body: new Uint8Array(0), signal });
    } catch (error) {
      if (error instanceof PusherError && error.kind === "auth") {
        this.#auth.removeScope(scope);
        return false;
      }
      throw error;
    }
    await response.discard();
    if (response.status === 201) return true;
    const location = response.headers.get("location");
    if (response.status === 202 && location !== null) {
      await this.cancelUpload({ location: new URL(location, response.url), offset: 0 }, signal);
    }
    return false;
  }

  /** `POST` a new upload session. */
  async startUpload(signal?: AbortSignal): Promise<UploadSession> {
    const url = this.#url("blobs/uploads/");
    const what = `starting an upload to ${this.#name()}`;
    const response = await this.#send({
      method: "POST",
      url,
      what,
      body: new Uint8Array(0),
      signal,
    });
    if (!isSuccess(response.status)) throw await this.#error(response, what);
    await response.discard();
    const location = response.headers.get("location");
    if (location === null) {
      throw new RegistryError("registry", `${what}: the registry sent no upload Location`, {
        status: response.status,
      });
    }
    const session: { location: URL; offset: number; minChunkLength?: number } = {
      location: new URL(location, response.url),
      offset: 0,
    };
    const minimum = Number(response.headers.get("oci-chunk-min-length") ?? Number.NaN);
    if (Number.isSafeInteger(minimum) && minimum > 0) session.minChunkLength = minimum;
    return session;
  }

  /**
   * Sends the (rest of the) blob in one streamed `PATCH` without `Content-Range`. A
   * {@link BodyFactory} lets the body be re-opened for a redirect or a token refresh; a plain
   * stream can be sent once. `onProgress` gets the bytes read from the body so far.
   */
  async patchStream(
    session: UploadSession,
    body: ReadableStream<Uint8Array> | BodyFactory,
    onProgress?: (bytes: number) => void,
    signal?: AbortSignal,
  ): Promise<UploadSession> {
    let sent = 0;
    const counted = (stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> => {
      sent = 0;
      return stream.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller): void {
            sent += chunk.byteLength;
            onProgress?.(sent);
            controller.enqueue(chunk);
          },
        }),
      );
    };
    const wrapped: RequestBody = typeof body === "function" ? () => counted(body()) : counted(body);
    const what = `uploading to ${this.#name()}`;
    const response = await this.#send({
      method: "PATCH",
      url: session.location,
      what,
      headers: { "content-type": OCTET_STREAM },
      body: wrapped,
      signal,
    });
    if (!isSuccess(response.status)) throw await this.#error(response, what);
    await response.discard();
    return nextSession(session, response, session.offset + sent);
  }

  /** Sends one chunk with `Content-Range: <start>-<end>` (inclusive) at the session's offset. */
  async patchChunk(
    session: UploadSession,
    bytes: Uint8Array,
    signal?: AbortSignal,
  ): Promise<UploadSession> {
    if (bytes.byteLength === 0) {
      throw new PusherError("internal", "an upload chunk must not be empty");
    }
    const start = session.offset;
    const end = start + bytes.byteLength - 1;
    const what = `uploading bytes ${start}-${end} to ${this.#name()}`;
    const response = await this.#send({
      method: "PATCH",
      url: session.location,
      what,
      headers: { "content-type": OCTET_STREAM, "content-range": `${start}-${end}` },
      body: bytes,
      signal,
    });
    if (!isSuccess(response.status)) throw await this.#error(response, what);
    await response.discard();
    return nextSession(session, response, end + 1);
  }

  /**
   * `GET` the upload's status: the offset from `Range: 0-<last>` (0 when absent or `0-0`, which
   * is ambiguous) and the newest location.
   */
  async uploadStatus(
    session: UploadSession,
    signal?: AbortSignal,
  ): Promise<{ offset: number; session: UploadSession }> {
    const what = `reading the upload status in ${this.#name()}`;
    const response = await this.#send({ method: "GET", url: session.location, what, signal });
    if (!isSuccess(response.status)) throw await this.#error(response, what);
    await response.discard();
    const range = /^(?:bytes=)?0-([0-9]+)$/.exec(response.headers.get("range")?.trim() ?? "");
    const last = range === null ? 0 : Number(range[1]);
    const offset = last > 0 ? last + 1 : 0;
    return { offset, session: nextSession(session, response, offset) };
  }

  /**
   * Closes the upload with `PUT <location>&digest=<digest>`, optionally carrying the last bytes.
   * Returns the digest the registry stored.
   *
   * @throws {RegistryError} kind `verify` when the registry says the digest does not match the
   * bytes, or reports another digest.
   */
  async completeUpload(
    session: UploadSession,
    digest: string,
    finalBytes?: Uint8Array,
    signal?: AbortSignal,
  ): Promise<string> {
    const url = withQueryParameter(session.location, "digest", digest);
    const what = `completing the upload of ${digest} to ${this.#name()}`;
    const response = await this.#send({
      method: "PUT",
      url,
      what,
      headers: { "content-type": OCTET_STREAM },
      body: finalBytes ?? new Uint8Array(0),
      signal,
    });
    if (!isSuccess(response.status)) throw await this.#error(response, what);
    await response.discard();
    return checkDigest(response, digest, what);
  }

  /** `DELETE`s an abandoned upload session; the answer and any failure are ignored. */
  async cancelUpload(session: UploadSession, signal?: AbortSignal): Promise<void> {
    try {
      const what = `cancelling an upload in ${this.#name()}`;
      const response = await this.#send({ method: "DELETE", url: session.location, what, signal });
      await response.discard();
    } catch (error) {
      if (signal?.aborted === true) throw error;
    }
  }

  /**
   * `PUT`s a manifest under a tag or digest, sending `bytes` exactly with `Content-Type:
   * mediaType`. Returns its digest (`sha256:` of the bytes).
   *
   * @throws {RegistryError} kind `verify` when the registry reports another digest.
   */
  async putManifest(
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const url = this.#url(`manifests/${reference}`);
    const what = `pushing manifest ${this.#name()}${
      reference.includes(":") ? "@" : ":"
    }${reference}`;
    const response = await this.#send({
      method: "PUT",
      url,
      what,
      headers: { "content-type": mediaType },
      body: bytes,
      signal,
    });
    if (!isSuccess(response.status)) throw await this.#error(response, what);
    await response.discard();
    return checkDigest(response, sha256(bytes), what);
  }

  /**
   * The digest of the manifest a tag or digest points at, or `undefined` when there is none.
   * Uses `HEAD` and falls back to hashing a `GET` when no `Docker-Content-Digest` comes back.
   */
  async getManifestDigest(reference: string, signal?: AbortSignal): Promise<string | undefined> {
    const url = this.#url(`manifests/${reference}`);
    const what = `looking up manifest ${reference} in ${this.#name()}`;
    const headers = { accept: MANIFEST_ACCEPT };
    const head = await this.#send({ method: "HEAD", url, what, headers, signal });
    await head.discard();
    if (head.status === 404) return undefined;
    if (!isSuccess(head.status)) throw await this.#error(head, what);
    const digest = head.headers.get("docker-content-digest");
    if (digest !== null && digest !== "") return digest;
    const get = await this.#send({ method: "GET", url, what, headers, signal });
    if (get.status === 404) {
      await get.discard();
      return undefined;
    }
    if (!isSuccess(get.status)) throw await this.#error(get, what);
    return sha256(new Uint8Array(await new Response(get.body).arrayBuffer()));
  }

  /** Releases the transport when the client created it. */
  close(): void {
    if (this.#ownsTransport) this.#transport.close();
  }

  /**
   * Sends one request with authorisation. A 401 gets one more try after the authoriser has a
   * fresh token (or Basic credentials); a second 401 means the credentials were refused.
   * Credentials and tokens go only to the registry's own origin: a request to another origin (an
   * upload `Location` on a storage host) goes without them, and a 401 from another origin (also
   * after a redirect) is an error, never a reason to hand credentials to its token realm.
   */
  async #send(exchange: Exchange): Promise<TransportResponse> {
    const body = exchange.body ?? null;
    const foreign = exchange.url.origin !== this.#base.origin;
    for (let attempt = 0;; attempt++) {
      const ticket = foreign || exchange.probe === true
        ? NO_TICKET
        : await this.#auth.ticket(exchange.signal);
      const headers = new Headers(exchange.headers);
      if (ticket.header !== undefined) headers.set("authorization", ticket.header);
      const request: Parameters<Transport["request"]>[0] = {
        method: exchange.method,
        url: exchange.url,
        headers,
        body,
        signal: exchange.signal,
      };
      if (exchange.followRedirects !== undefined) {
        request.followRedirects = exchange.followRedirects;
      }
      const response = await this.#transport.request(request);
      if (response.status !== 401) {
        this.#auth.accepted(ticket);
        return response;
      }
      const summary = parseErrorBody(await response.text(), response.headers.get("content-type"));
      if (response.url.origin !== this.#base.origin) {
        throw this.#foreignChallenge(exchange, response.url);
      }
      if (attempt > 0) throw this.#auth.refused(exchange.what, summary.codes.join(", "));
      await this.#auth.challenged(
        response.headers.get("www-authenticate"),
        response.url,
        ticket,
        exchange.what,
        exchange.signal,
      );
      if (exchange.probe === true) return response;
      if (body instanceof ReadableStream) {
        throw new RegistryError(
          "network",
          `${exchange.what} was answered 401 (token expired?); a fresh token is ready, the ` +
            "streamed body has to be sent again",
          { status: 401, codes: summary.codes, retryable: true, retryAfterMs: 0 },
        );
      }
    }
  }

  /** The error for a 401 from another origin (`responder`): its challenge is not answered. */
  #foreignChallenge(exchange: Exchange, responder: URL): RegistryError {
    const downgraded = responder.hostname === this.#base.hostname &&
      responder.protocol === "http:" && this.#base.protocol === "https:";
    return new RegistryError(
      "auth",
      `${exchange.what}: ${responder.origin} asked for credentials, which are only sent to ` +
        `the registry itself (${this.#base.origin})`,
      {
        status: 401,
        hint: downgraded
          ? "the registry hands out http:// upload locations: a TLS proxy in front of it " +
            "probably doesn't pass X-Forwarded-Proto: https"
          : "the registry handed out an upload location on another host that wants a login",
      },
    );
  }

  async #error(response: TransportResponse, what: string): Promise<RegistryError> {
    let text = "";
    try {
      text = await response.text();
    } catch {
      text = "";
    }
    const summary = parseErrorBody(text, response.headers.get("content-type"));
    return errorForStatus(response.status, summary, response.headers.get("retry-after"), what);
  }

  #url(path: string): URL {
    return new URL(`/v2/${this.repository}/${path}`, this.#base);
  }

  #name(): string {
    return `${this.registry}/${this.repository}`;
  }
}

function transportOptions(options: RegistryClientOptions): Parameters<typeof createTransport>[0] {
  const result: Parameters<typeof createTransport>[0] = {};
  if (options.caCerts !== undefined) result.caCerts = options.caCerts;
  if (options.skipTlsVerify !== undefined) result.skipTlsVerify = options.skipTlsVerify;
  if (options.onRequest !== undefined) result.onRequest = options.onRequest;
  if (options.userAgent !== undefined) result.userAgent = options.userAgent;
  return result;
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

function nextSession(
  session: UploadSession,
  response: TransportResponse,
  offset: number,
): UploadSession {
  const location = response.headers.get("location");
  const next: { location: URL; offset: number; minChunkLength?: number } = {
    location: location === null ? session.location : new URL(location, response.url),
    offset,
  };
  if (session.minChunkLength !== undefined) next.minChunkLength = session.minChunkLength;
  return next;
}

/** Appends `name=value` to the URL's query as it is, without re-encoding what is there. */
function withQueryParameter(url: URL, name: string, value: string): URL {
  const base = url.href.replace(/#.*$/, "");
  const separator = base.includes("?")
    ? (base.endsWith("?") || base.endsWith("&") ? "" : "&")
    : "?";
  return new URL(`${base}${separator}${name}=${encodeURIComponent(value)}`);
}

function checkDigest(response: TransportResponse, expected: string, what: string): string {
  const reported = response.headers.get("docker-content-digest");
  if (reported !== null && reported !== "" && reported !== expected) {
    throw new RegistryError(
      "verify",
      `${what}: the registry reports digest ${reported}, expected ${expected}`,
      { status: response.status },
    );
  }
  return expected;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
