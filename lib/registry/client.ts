/**
 * `RegistryClient`: the registry API calls a push or a pull makes against one repository — ping,
 * blob existence, cross-repository mounts, upload sessions (one streamed PATCH, chunks, status,
 * completion, cancellation), manifests, and reads (manifest GET/HEAD with digest checks, blob GET
 * from an offset). It knows nothing of archives, and retries nothing except one request after a
 * 401 with a fresh token; the caller's retry helper decides the rest from
 * {@link RegistryError.retryable}.
 *
 * @module
 */

import { countingStream } from "../bytes/count.ts";
import { sha256Digest } from "../bytes/sha256.ts";
import { MANIFEST_ACCEPT } from "../oci/media_types.ts";
import { PusherError } from "../errors.ts";
import { Authorizer, type AuthScheme, type AuthTicket, type BearerRealm } from "./auth.ts";
import { checkPartialAnswer, withNetworkErrors } from "./blob_read.ts";
import { ANONYMOUS, type Credentials, usernameOf } from "../credentials/credentials.ts";
import { deniedLookupError, errorForStatus, parseErrorBody, RegistryError } from "./errors.ts";
import type { BodyFactory, RequestBody, RequestLog, Transport, TransportResponse } from "./http.ts";
import { readManifestBody, refuseSchema1, verifiedManifestDigest } from "./manifest_read.ts";
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
  /**
   * What tokens are asked for: `push` (default) asks `pull,push`; `pull` asks only `pull`, for a
   * read-only source (an anonymous token service grants no more).
   */
  access?: RepositoryAccess;
  /**
   * Other repositories of the registry whose `pull` every token carries too: the sources blobs
   * are mounted from, so that the first token already allows the mounts.
   */
  mountSources?: readonly string[];
}

/** The access a client needs to its repository. */
export type RepositoryAccess = "pull" | "push";

/** A manifest read with {@link RegistryClient.getManifest}. */
export interface FetchedManifest {
  /** The exact bytes the registry sent. */
  bytes: Uint8Array;
  /** Its media type (`Content-Type`, else the JSON's `mediaType`). */
  mediaType: string;
  /** The digest of the bytes, checked against what was asked for and reported. */
  digest: string;
}

/** What a `HEAD` of a manifest tells. */
export interface ManifestHead {
  /** `Docker-Content-Digest`, when the registry sent it. */
  digest?: string;
  /** `Content-Type`. */
  mediaType: string;
  /** `Content-Length`, when sent. */
  size?: number;
}

/** Options of {@link RegistryClient.getBlob}. */
export interface GetBlobOptions {
  /** Ask for the bytes from here on (`Range: bytes=<offset>-`) when above 0. */
  offset?: number;
  /** Aborts the request and the body. */
  signal?: AbortSignal | undefined;
}

/** An open blob download. */
export interface BlobDownload {
  /** The bytes, from {@link start}; read failures are retryable `network` errors. */
  body: ReadableStream<Uint8Array>;
  /**
   * Where the body starts in the blob: the offset asked for when the registry honoured the range
   * (206), 0 when it sent the whole blob (200).
   */
  start: number;
  /** Whether the range asked for was honoured. */
  ranged: boolean;
  /** Size of the whole blob, when the answer told. */
  size?: number;
}

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
  /**
   * Called when a 401 with a bearer challenge answers the request, which then is not sent again
   * with the token: the 401 is returned once the token is there.
   */
  onBearerChallenge?: () => void;
  /** A 401 is the answer: no fresh token is fetched to send the request again. */
  noTokenRetry?: boolean;
}

/** A registry check in flight that requests waiting for a token wait for too (see below). */
interface CheckGate {
  /** Settles (never rejects) when the check is answered. */
  settled: Promise<void>;
  /** `performance.now()` when the gate was set. */
  since: number;
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
  /** The user name pushed as (safe to show); `undefined` when anonymous. */
  #account: string | undefined;
  #checkGate: CheckGate | undefined;

  /** Creates a client; no request is sent until the first call. */
  constructor(options: RegistryClientOptions) {
    this.registry = options.reference.registry;
    this.repository = options.reference.repository;
    this.#base = new URL(options.reference.apiBase.origin);
    this.#ownsTransport = options.transport === undefined;
    this.#transport = options.transport ?? createTransport(transportOptions(options));
    const actions = options.access === "pull" ? "pull" : "pull,push";
    const mountScopes = (options.mountSources ?? [])
      .filter((repository) => repository !== this.repository)
      .map((repository) => `repository:${repository}:pull`);
    const authOptions: ConstructorParameters<typeof Authorizer>[2] = {
      registry: this.registry,
      scopes: [`repository:${this.repository}:${actions}`, ...mountScopes],
    };
    if (options.preferOAuth !== undefined) authOptions.preferOAuth = options.preferOAuth;
    this.#auth = new Authorizer(this.#transport, options.credentials ?? ANONYMOUS, authOptions);
    this.#account = usernameOf(options.credentials ?? ANONYMOUS);
  }

  /** The origin of the registry's API, e.g. `https://registry.example:5000`. */
  get apiOrigin(): string {
    return this.#base.origin;
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
   * Lets the requests that have to wait for a bearer token also wait for `check`, the registry
   * check in flight (a {@link probe}), when it comes back soon after the token: on a far
   * registry the two come back at about the same time, and a request sent once both are back
   * goes out on the check's kept-alive connection instead of opening another — one round trip
   * less for the run's first request. Reusing it wins while the check is back within twice the
   * time the token took (a new connection costs the registry's round trip again), so a request
   * waits at most that long; requests that find a token ready, or need none, never wait.
   */
  shareConnectionWith(check: Promise<unknown>): void {
    const gate: CheckGate = { settled: check.then(() => {}, () => {}), since: performance.now() };
    this.#checkGate = gate;
    gate.settled.then(() => {
      if (this.#checkGate === gate) this.#checkGate = undefined;
    });
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

  /**
   * `HEAD` a blob: 200 or any redirect means the registry has it, 404 that it has not.
   *
   * @throws {RegistryError} kind `auth` for a 403 (see {@link deniedLookupError}).
   */
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
    if (response.status === 403) {
      throw deniedLookupError({
        registry: this.registry,
        repository: this.repository,
        account: this.#account,
      });
    }
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
      return stream.pipeThrough(countingStream((total) => {
        sent = total;
        onProgress?.(total);
      }));
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

  /**
   * `DELETE`s an abandoned upload session; the answer and any failure are ignored. A 401 is not
   * answered with a fresh token: Distribution's token auth wants the `delete` action for any
   * `DELETE`, which a push token does not carry, so another token would be refused the same way.
   */
  async cancelUpload(session: UploadSession, signal?: AbortSignal): Promise<void> {
    try {
      const what = `cancelling an upload in ${this.#name()}`;
      const response = await this.#send({
        method: "DELETE",
        url: session.location,
        what,
        signal,
        noTokenRetry: true,
      });
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
    return checkDigest(response, sha256Digest(bytes), what);
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
    return sha256Digest(new Uint8Array(await new Response(get.body).arrayBuffer()));
  }

  /**
   * `GET`s a manifest by tag or digest with one `Accept` list for every manifest type. The digest
   * of the bytes is checked against the digest asked for and `Docker-Content-Digest`.
   *
   * @throws {RegistryError} kind `verify` on a digest mismatch, `registry` for a missing
   * manifest (404) and other failed answers.
   * @throws {PusherError} kind `input` for a Docker schema 1 manifest.
   */
  async getManifest(reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const url = this.#url(`manifests/${reference}`);
    const what = `reading manifest ${this.#reference(reference)}`;
    const headers = { accept: MANIFEST_ACCEPT };
    const response = await this.#send({ method: "GET", url, what, headers, signal });
    if (response.status !== 200) throw await this.#error(response, what);
    const contentType = response.headers.get("content-type") ?? "";
    const bytes = await readManifestBody(withNetworkErrors(body(response), "GET", url), what);
    refuseSchema1(contentType, bytes, what);
    const digest = verifiedManifestDigest(
      bytes,
      reference,
      response.headers.get("docker-content-digest"),
      what,
    );
    return { bytes, mediaType: manifestMediaType(contentType, bytes), digest };
  }

  /**
   * `HEAD`s a manifest: its digest, media type and size without a `GET` (Docker Hub counts
   * manifest `GET`s against the pull quota, not `HEAD`s). `undefined` when there is none (404).
   *
   * @throws {PusherError} kind `input` for a Docker schema 1 manifest.
   */
  async headManifest(reference: string, signal?: AbortSignal): Promise<ManifestHead | undefined> {
    const url = this.#url(`manifests/${reference}`);
    const what = `looking up manifest ${this.#reference(reference)}`;
    const headers = { accept: MANIFEST_ACCEPT };
    const response = await this.#send({ method: "HEAD", url, what, headers, signal });
    await response.discard();
    if (response.status === 404) return undefined;
    if (!isSuccess(response.status)) throw await this.#error(response, what);
    const mediaType = response.headers.get("content-type") ?? "";
    refuseSchema1(mediaType, undefined, what);
    const head: ManifestHead = { mediaType: mediaType.split(";")[0]?.trim() ?? "" };
    const digest = response.headers.get("docker-content-digest");
    if (digest !== null && digest !== "") head.digest = digest;
    const size = Number(response.headers.get("content-length") ?? Number.NaN);
    if (Number.isSafeInteger(size) && size >= 0) head.size = size;
    return head;
  }

  /**
   * Whether the repository has any tag: `GET tags/list?n=1`, false for an unknown repository
   * (404) or an empty list. A new repository has no blobs worth looking up before reading them.
   * Given `onBearerChallenge`, a question that meets the registry's bearer challenge (its auth
   * was not known when the question went out) calls it and is not asked again with the token:
   * it settles `undefined` once the token is there. That is for a caller that needs the answer
   * only before the token, as it would come no sooner than the requests waiting for the token.
   *
   * @throws {RegistryError} for any other answer (a registry that does not list tags).
   */
  async hasTags(
    signal?: AbortSignal,
    onBearerChallenge?: () => void,
  ): Promise<boolean | undefined> {
    const url = this.#url("tags/list");
    url.search = "n=1";
    const what = `listing the tags of ${this.#name()}`;
    const exchange: Exchange = { method: "GET", url, what, signal };
    if (onBearerChallenge !== undefined) exchange.onBearerChallenge = onBearerChallenge;
    const response = await this.#send(exchange);
    if (response.status === 404 || response.status === 401) {
      await response.discard();
      return response.status === 404 ? false : undefined;
    }
    if (response.status !== 200) throw await this.#error(response, what);
    const listed: unknown = await response.json().catch(() => undefined);
    const tags = typeof listed === "object" && listed !== null
      ? (listed as Record<string, unknown>).tags
      : undefined;
    if (tags === null || (Array.isArray(tags) && tags.length === 0)) return false;
    if (Array.isArray(tags)) return true;
    throw new RegistryError("registry", `${what}: the registry sent no tag list`, {
      status: response.status,
    });
  }

  /**
   * `GET`s a blob, from `offset` on when above 0 (`Range: bytes=<offset>-`). Redirects to blob
   * storage on another origin are followed without `Authorization`. The answer says whether the
   * range was honoured (206) or the whole blob came (200).
   *
   * @throws {RegistryError} kind `registry` for a missing blob (404), a 206 for another range and
   * other failed answers; `network` (retryable) for 408, 429 and 5xx.
   */
  async getBlob(digest: string, options: GetBlobOptions = {}): Promise<BlobDownload> {
    const offset = options.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new PusherError("internal", `invalid blob offset ${offset}`);
    }
    const url = this.#url(`blobs/${digest}`);
    const what = `downloading blob ${digest} from ${this.#name()}`;
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const response = await this.#send({
      method: "GET",
      url,
      what,
      headers,
      signal: options.signal,
    });
    if (response.status !== 200 && response.status !== 206) {
      throw await this.#error(response, what);
    }
    const download: BlobDownload = {
      body: withNetworkErrors(body(response), "GET", response.url),
      start: 0,
      ranged: false,
    };
    const length = Number(response.headers.get("content-length") ?? Number.NaN);
    if (response.status === 206) {
      let range: ReturnType<typeof checkPartialAnswer>;
      try {
        range = checkPartialAnswer(response.headers.get("content-range"), offset, what);
      } catch (error) {
        await response.discard();
        throw error;
      }
      download.start = offset;
      download.ranged = true;
      if (range.total !== undefined) download.size = range.total;
    } else if (Number.isSafeInteger(length) && length >= 0) {
      download.size = length;
    }
    return download;
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
        : await this.#authorisation(exchange.signal);
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
      if (exchange.noTokenRetry === true) return response;
      if (attempt > 0) throw this.#auth.refused(exchange.what, summary.codes.join(", "));
      const challenge = this.#auth.challenged(
        response.headers.get("www-authenticate"),
        response.url,
        ticket,
        exchange.what,
        exchange.signal,
      );
      // The challenge sets the scheme before it first waits (for a token).
      const told = exchange.onBearerChallenge !== undefined && this.#auth.scheme === "bearer";
      if (told) exchange.onBearerChallenge?.();
      await challenge;
      if (exchange.probe === true || told) return response;
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

  /** The authorisation of a request, after the check in flight when it had to wait for a token. */
  async #authorisation(signal: AbortSignal | undefined): Promise<AuthTicket> {
    const gate = this.#checkGate;
    if (gate === undefined || !this.#auth.fetchingToken) return await this.#auth.ticket(signal);
    const ticket = await this.#auth.ticket(signal);
    const patience = performance.now() - gate.since;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      gate.settled,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, patience))),
    ]);
    clearTimeout(timer);
    return ticket;
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

  /** `registry/repository:tag` or `registry/repository@digest`. */
  #reference(reference: string): string {
    return `${this.#name()}${reference.includes(":") ? "@" : ":"}${reference}`;
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

/** The body of an answer, an empty stream when there is none. */
function body(response: TransportResponse): ReadableStream<Uint8Array> {
  return response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
}

/** `Content-Type` without parameters, else the `mediaType` field of the JSON. */
function manifestMediaType(contentType: string, bytes: Uint8Array): string {
  const bare = contentType.split(";")[0]?.trim() ?? "";
  if (bare !== "" && bare !== "application/json" && bare !== "text/plain") return bare;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    const field = typeof parsed === "object" && parsed !== null
      ? (parsed as Record<string, unknown>).mediaType
      : undefined;
    return typeof field === "string" ? field : bare;
  } catch {
    return bare;
  }
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
