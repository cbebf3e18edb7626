/**
 * Registry authorisation for one repository: learns the scheme from `WWW-Authenticate`
 * challenges (Bearer or Basic), keeps one bearer token for the repository's scopes, refreshes it
 * before it expires, and decides after a 401 whether a fresh token is worth one more try or the
 * credentials were refused.
 *
 * @module
 */

import { type Challenge, parseChallenges, resolveRealm } from "./challenge.ts";
import { basicAuthorization, type Credentials, usernameOf } from "../credentials/credentials.ts";
import { PusherError } from "../errors.ts";
import { RegistryError } from "./errors.ts";
import type { Transport } from "./http.ts";
import { type BearerToken, TokenService } from "./token_service.ts";

/** What was sent with one request, handed back after a 401 to decide what to do. */
export interface AuthTicket {
  /** The `Authorization` value sent, if any. Never logged. */
  readonly header: string | undefined;
  /** Identifies the bearer token used (0 when none). */
  readonly generation: number;
}

/** Options of {@link Authorizer}. */
export interface AuthorizerOptions {
  /** The registry as the user named it (for messages). */
  registry: string;
  /** Scopes every token asks for, e.g. `repository:team/app:pull,push`. */
  scopes: readonly string[];
  /** Use the OAuth2 password grant (`POST`) for user-name/password credentials. */
  preferOAuth?: boolean;
  /** Clock, for tests. */
  now?: () => number;
}

/** The scheme the registry asked for; `unknown` until the first challenge. */
export type AuthScheme = "unknown" | "basic" | "bearer";

interface HeldToken extends BearerToken {
  generation: number;
  scopeKey: string;
  /** Fetched because a request was answered 401. */
  afterChallenge: boolean;
  /** A request sent with it was not answered 401. */
  proven: boolean;
}

/** Where a registry's bearer tokens come from, as its challenge said. */
export interface BearerRealm {
  /** The token service URL. */
  realm: URL;
  /** The `service` parameter, if the challenge had one. */
  service: string | undefined;
}

/** Authorises requests to one repository; shared by all requests of one client. */
export class Authorizer {
  #credentials: Credentials;
  #registry: string;
  #scopes: Set<string>;
  #tokens: TokenService;
  #now: () => number;
  #scheme: AuthScheme = "unknown";
  #bearer: BearerRealm | undefined;
  #token: HeldToken | undefined;
  #pending: Promise<HeldToken> | undefined;
  #generation = 0;
  /** The realm was taken from an earlier run, not from a challenge of this one. */
  #assumed = false;

  /** Creates an authoriser that fetches tokens through `transport`. */
  constructor(transport: Transport, credentials: Credentials, options: AuthorizerOptions) {
    this.#credentials = credentials;
    this.#registry = options.registry;
    this.#scopes = new Set(options.scopes);
    this.#now = options.now ?? Date.now;
    const tokenOptions: ConstructorParameters<typeof TokenService>[2] = {
      registry: options.registry,
      now: this.#now,
    };
    if (options.preferOAuth !== undefined) tokenOptions.preferOAuth = options.preferOAuth;
    this.#tokens = new TokenService(transport, credentials, tokenOptions);
  }

  /** The scheme learnt from the registry's challenges. */
  get scheme(): AuthScheme {
    return this.#scheme;
  }

  /** The token realm learnt from a challenge (or assumed), for a later run to start from. */
  get bearerRealm(): BearerRealm | undefined {
    return this.#assumed ? undefined : this.#bearer;
  }

  /**
   * Starts from a realm an earlier run learnt: the token is fetched at once, in parallel with
   * the first requests, instead of after their 401. If that fetch fails, the realm is forgotten
   * and the registry's challenge decides as usual.
   */
  assumeBearer(realm: BearerRealm, signal?: AbortSignal): void {
    if (this.#scheme !== "unknown") return;
    this.#scheme = "bearer";
    this.#bearer = realm;
    this.#assumed = true;
    this.#refresh(false, signal).catch(() => this.#forgetAssumed());
  }

  /** Whether a bearer token is being fetched: a request now waits for it. */
  get fetchingToken(): boolean {
    return this.#pending !== undefined;
  }

  /** Adds a scope (e.g. `repository:<source>:pull` for a mount); the next token carries it. */
  addScope(scope: string): void {
    this.#scopes.add(scope);
  }

  /** Removes a scope added with {@link addScope}; the next token goes without it. */
  removeScope(scope: string): void {
    this.#scopes.delete(scope);
  }

  /**
   * The authorisation for the next request: nothing before the first challenge, Basic
   * credentials, or a bearer token — fetched or refreshed first when missing, issued for other
   * scopes, or close to expiry.
   */
  async ticket(signal?: AbortSignal): Promise<AuthTicket> {
    if (this.#scheme === "basic") {
      return { header: basicAuthorization(this.#credentials), generation: 0 };
    }
    if (this.#scheme !== "bearer") return { header: undefined, generation: 0 };
    let token = this.#token;
    if (token === undefined || token.scopeKey !== this.#scopeKey() || this.#expiring(token)) {
      const assumed = this.#assumed;
      try {
        token = await this.#refresh(false, signal);
      } catch (error) {
        if (!assumed) throw error;
        // The realm an earlier run learnt did not answer: the registry's challenge decides.
        this.#forgetAssumed();
        return { header: undefined, generation: 0 };
      }
    }
    return { header: `Bearer ${token.value}`, generation: token.generation };
  }

  /** Records that a request sent with `ticket` was not refused, so its token works. */
  accepted(ticket: AuthTicket): void {
    if (this.#token !== undefined && this.#token.generation === ticket.generation) {
      this.#token.proven = true;
    }
  }

  /**
   * Handles a 401 for a request sent with `ticket`: parses the challenge and gets what the next
   * attempt needs (a fresh token; Basic credentials). `request` names the request for messages.
   *
   * @throws {RegistryError} kind `auth` when there is nothing new to try: the credentials (or a
   * fresh token fetched for them) were already refused, or the registry needs credentials and
   * none were given.
   */
  async challenged(
    header: string | null,
    requestUrl: URL,
    ticket: AuthTicket,
    request: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const challenges = parseChallenges(header ?? "");
    const bearer = challenges.find((challenge) => challenge.scheme === "bearer");
    const basic = challenges.find((challenge) => challenge.scheme === "basic");
    if (bearer !== undefined && bearer.params.realm !== undefined) {
      await this.#challengedBearer(
        bearer,
        bearer.params.realm,
        requestUrl,
        ticket,
        request,
        signal,
      );
      return;
    }
    if (basic !== undefined) {
      this.#challengedBasic(ticket, request);
      return;
    }
    throw new RegistryError(
      "auth",
      `registry ${this.#registry} answered 401 to ${request} without a usable challenge ` +
        `(WWW-Authenticate: ${header === null ? "absent" : describeSchemes(challenges)})`,
      { status: 401 },
    );
  }

  /** The error for a request refused although it carried the credentials' authorisation. */
  refused(request: string, reason?: string): RegistryError {
    const why = reason === undefined || reason === "" ? "" : ` (${reason})`;
    if ("anonymous" in this.#credentials) {
      return new RegistryError(
        "auth",
        `registry ${this.#registry} requires credentials for ${request}${why}`,
        { status: 401, hint: "pass --username and --password" },
      );
    }
    const user = usernameOf(this.#credentials);
    return new RegistryError(
      "auth",
      `the credentials${user === undefined ? "" : ` of ${user}`} were refused by ` +
        `${this.#registry} for ${request}${why}`,
      {
        status: 401,
        hint: "check the user name and password (or token), and that the account may push here",
      },
    );
  }

  async #challengedBearer(
    challenge: Challenge,
    realm: string,
    requestUrl: URL,
    ticket: AuthTicket,
    request: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const learnt = { realm: resolveRealm(realm, requestUrl), service: challenge.params.service };
    const known = this.#bearer;
    if (
      known !== undefined &&
      (known.realm.href !== learnt.realm.href || known.service !== learnt.service)
    ) {
      // A token of another realm (one an earlier run learnt) is no use here.
      this.#token = undefined;
    }
    this.#scheme = "bearer";
    this.#bearer = learnt;
    this.#assumed = false;
    const current = this.#token;
    if (current !== undefined && ticket.generation !== current.generation) return;
    if (current !== undefined && current.afterChallenge && !current.proven) {
      throw this.refused(request, challenge.params.error);
    }
    await this.#refresh(true, signal);
  }

  #challengedBasic(ticket: AuthTicket, request: string): void {
    this.#scheme = "basic";
    if (basicAuthorization(this.#credentials) === undefined) {
      throw "anonymous" in this.#credentials ? this.refused(request) : new RegistryError(
        "auth",
        `registry ${this.#registry} asks for Basic auth, which needs a user name with the ` +
          "identity token",
        { status: 401, hint: "pass --username with the token" },
      );
    }
    if (ticket.header !== undefined) throw this.refused(request);
  }

  async #refresh(afterChallenge: boolean, signal: AbortSignal | undefined): Promise<HeldToken> {
    if (this.#pending !== undefined) return await this.#pending;
    const bearer = this.#bearer;
    if (bearer === undefined) throw new PusherError("internal", "no bearer challenge seen yet");
    const scopeKey = this.#scopeKey();
    const pending = this.#tokens.fetch(bearer.realm, bearer.service, [...this.#scopes], signal)
      .then((token): HeldToken => {
        this.#token = {
          ...token,
          generation: ++this.#generation,
          scopeKey,
          afterChallenge,
          proven: false,
        };
        return this.#token;
      });
    this.#pending = pending;
    try {
      return await pending;
    } finally {
      this.#pending = undefined;
    }
  }

  /** Drops an assumed realm whose token could not be fetched: challenges decide again. */
  #forgetAssumed(): void {
    if (!this.#assumed) return;
    this.#assumed = false;
    this.#scheme = "unknown";
    this.#bearer = undefined;
    this.#token = undefined;
  }

  #expiring(token: HeldToken): boolean {
    const margin = Math.min(Math.max(token.lifetimeMs * 0.1, 5_000), token.lifetimeMs * 0.5);
    return this.#now() >= token.expiresAt - margin;
  }

  #scopeKey(): string {
    return [...this.#scopes].sort().join(" ");
  }
}

function describeSchemes(challenges: Challenge[]): string {
  return challenges.length === 0
    ? "unparsable"
    : challenges.map((challenge) => challenge.scheme).join(", ");
}
