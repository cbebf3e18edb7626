/**
 * Fetches bearer tokens from a registry's token service (the Docker token protocol): `GET realm`
 * with `service` and one `scope` per scope, Basic credentials when we have them; or the OAuth2
 * form `POST` (`grant_type=refresh_token` for identity tokens, `grant_type=password` on request),
 * falling back to `GET` when the service answers 404/405.
 *
 * @module
 */

import {
  basicAuthorization,
  type Credentials,
  type PasswordCredentials,
  usernameOf,
} from "../credentials/credentials.ts";
import { isOutageStatus, parseErrorBody, parseRetryAfter, RegistryError } from "./errors.ts";
import type { Transport, TransportResponse } from "./http.ts";

/** A bearer token and when to stop using it. */
export interface BearerToken {
  /** The token. Never logged. */
  value: string;
  /** Epoch milliseconds at which the token expires. */
  expiresAt: number;
  /** How long the token lives, in milliseconds, counted from when it was issued. */
  lifetimeMs: number;
}

/** Options of {@link TokenService}. */
export interface TokenServiceOptions {
  /** The registry the tokens are for, as the user named it (for messages). */
  registry: string;
  /** Use the OAuth2 password grant (`POST`) for user-name/password credentials. */
  preferOAuth?: boolean;
  /** `client_id` sent with OAuth2 grants. */
  clientId?: string;
  /** Clock, for tests. */
  now?: () => number;
}

/** Default `client_id` for OAuth2 grants. */
export const CLIENT_ID = "docker-image-pusher";
/** Token lifetime assumed when the service doesn't send `expires_in`. */
export const DEFAULT_TOKEN_LIFETIME_MS = 60_000;

/** Fetches tokens for one set of credentials, remembering refresh tokens and a missing `POST`. */
export class TokenService {
  #transport: Transport;
  #credentials: Credentials;
  #registry: string;
  #preferOAuth: boolean;
  #clientId: string;
  #now: () => number;
  #refreshToken: string | undefined;
  #postUnsupported = false;

  /** Creates a token service client for `credentials`. */
  constructor(transport: Transport, credentials: Credentials, options: TokenServiceOptions) {
    this.#transport = transport;
    this.#credentials = credentials;
    this.#registry = options.registry;
    this.#preferOAuth = options.preferOAuth ?? false;
    this.#clientId = options.clientId ?? CLIENT_ID;
    this.#now = options.now ?? Date.now;
    this.#refreshToken = "identityToken" in credentials ? credentials.identityToken : undefined;
  }

  /**
   * Fetches a token for `scopes` from `realm`.
   *
   * @throws {RegistryError} kind `auth` when the service refuses the credentials, `network`
   * (retryable) for 408/429/5xx, `registry` for other failures and answers without a token.
   */
  async fetch(
    realm: URL,
    service: string | undefined,
    scopes: readonly string[],
    signal?: AbortSignal,
  ): Promise<BearerToken> {
    const password = "password" in this.#credentials ? this.#credentials : undefined;
    const usePost = !this.#postUnsupported &&
      (this.#refreshToken !== undefined || (password !== undefined && this.#preferOAuth));
    if (usePost) {
      const response = await this.#post(realm, service, scopes, password, signal);
      if (response.status === 404 || response.status === 405) {
        await response.discard();
        this.#postUnsupported = true;
      } else {
        return await this.#read(response, realm, true);
      }
    }
    return await this.#read(await this.#get(realm, service, scopes, signal), realm, false);
  }

  async #get(
    realm: URL,
    service: string | undefined,
    scopes: readonly string[],
    signal: AbortSignal | undefined,
  ): Promise<TransportResponse> {
    const url = new URL(realm.href);
    if (service !== undefined) url.searchParams.append("service", service);
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const username = usernameOf(this.#credentials);
    if (username !== undefined) url.searchParams.append("account", username);
    const headers = new Headers({ accept: "application/json" });
    const authorization = basicAuthorization(this.#credentials);
    if (authorization !== undefined) headers.set("authorization", authorization);
    return await this.#transport.request({ method: "GET", url, headers, signal });
  }

  async #post(
    realm: URL,
    service: string | undefined,
    scopes: readonly string[],
    password: PasswordCredentials | undefined,
    signal: AbortSignal | undefined,
  ): Promise<TransportResponse> {
    const form = new URLSearchParams();
    if (this.#refreshToken !== undefined) {
      form.set("grant_type", "refresh_token");
      form.set("refresh_token", this.#refreshToken);
    } else if (password !== undefined) {
      form.set("grant_type", "password");
      form.set("username", password.username);
      form.set("password", password.password);
      form.set("access_type", "offline");
    }
    form.set("client_id", this.#clientId);
    if (service !== undefined) form.set("service", service);
    if (scopes.length > 0) form.set("scope", scopes.join(" "));
    const headers = new Headers({
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    });
    const body = new TextEncoder().encode(form.toString());
    return await this.#transport.request({ method: "POST", url: realm, headers, body, signal });
  }

  async #read(response: TransportResponse, realm: URL, posted: boolean): Promise<BearerToken> {
    const where = `${realm.origin}${realm.pathname}`;
    if (response.status !== 200) {
      const summary = parseErrorBody(await response.text(), response.headers.get("content-type"));
      throw this.#failure(response, where, summary.message);
    }
    let body: Record<string, unknown>;
    try {
      const parsed = await response.json();
      body = typeof parsed === "object" && parsed !== null ? parsed as Record<string, unknown> : {};
    } catch {
      body = {};
    }
    const value = typeof body.token === "string" && body.token !== ""
      ? body.token
      : typeof body.access_token === "string" && body.access_token !== ""
      ? body.access_token
      : undefined;
    if (value === undefined) {
      throw new RegistryError(
        "registry",
        `the token service at ${where} answered without a token`,
        {
          status: response.status,
        },
      );
    }
    if (posted && typeof body.refresh_token === "string" && body.refresh_token !== "") {
      this.#refreshToken = body.refresh_token;
    }
    return { value, ...tokenLifetime(body, this.#now()) };
  }

  #failure(response: TransportResponse, where: string, detail: string): RegistryError {
    const status = response.status;
    const suffix = detail === "" ? "" : `: ${detail}`;
    if (status === 401 || status === 403) {
      if ("anonymous" in this.#credentials) {
        return new RegistryError(
          "auth",
          `registry ${this.#registry} requires credentials: its token service at ${where} ` +
            `refused anonymous access (HTTP ${status})`,
          { status, hint: "pass --username and --password" },
        );
      }
      const user = usernameOf(this.#credentials);
      return new RegistryError(
        "auth",
        `the credentials${user === undefined ? "" : ` of ${user}`} were refused by the token ` +
          `service at ${where} (HTTP ${status})${suffix}`,
        { status, hint: "check the user name and password (or token) for this registry" },
      );
    }
    const retryable = status === 408 || status === 429 || (status >= 500 && status !== 501);
    const options: ConstructorParameters<typeof RegistryError>[2] = {
      status,
      retryable,
      outage: isOutageStatus(status),
    };
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), this.#now());
    if (retryAfterMs !== undefined) options.retryAfterMs = retryAfterMs;
    return new RegistryError(
      retryable ? "network" : "registry",
      `the token service at ${where} answered HTTP ${status}${suffix}`,
      options,
    );
  }
}

/**
 * Reads `expires_in` (seconds; 60 when absent or not positive) and `issued_at` from a token
 * answer. A past `issued_at` shortens the remaining life by the token's age, at most by half (a
 * registry clock running behind ours must not make every token look expired); a future one is
 * ignored.
 */
export function tokenLifetime(
  body: Record<string, unknown>,
  now: number,
): { expiresAt: number; lifetimeMs: number } {
  const seconds = typeof body.expires_in === "number" && body.expires_in > 0
    ? body.expires_in
    : undefined;
  const lifetimeMs = seconds === undefined ? DEFAULT_TOKEN_LIFETIME_MS : seconds * 1000;
  const issued = typeof body.issued_at === "string" ? Date.parse(body.issued_at) : Number.NaN;
  const age = Number.isNaN(issued) ? 0 : Math.min(Math.max(0, now - issued), lifetimeMs / 2);
  return { expiresAt: now + lifetimeMs - age, lifetimeMs };
}
