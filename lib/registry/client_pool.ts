/**
 * The registry clients of one run (a pull, a copy, or a whole sync), over one transport: one
 * client per repository and access, made on first use and then shared, so a repository's token
 * is fetched once per run and kept alive connections serve every request. A client starts from
 * the token realm its registry is known by — one a client of this run learnt from a challenge,
 * else one an earlier run remembered — and fetches its token at once, beside its first request,
 * instead of after a 401. The registry check (`GET /v2/`) runs once per registry, and the
 * requests of its registry that wait for a token wait for the check too (see
 * `RegistryClient.shareConnectionWith`), so the first of them reuses the check's connection.
 *
 * @module
 */

import type { Credentials } from "../credentials/credentials.ts";
import type { Redactor } from "../logging/redact.ts";
import type { BearerRealm } from "./auth.ts";
import type { RegistryClient, RepositoryAccess } from "./client.ts";
import { connectClient, openTransport, type TlsSettings } from "./connect.ts";
import type { Transport } from "./http.ts";
import type { Reference } from "./reference.ts";

/** Where token realms are kept between runs (see `state/realm_memory.ts`). */
export interface RealmStore {
  /** The realm an earlier run learnt for `registry`, if any. */
  load(registry: string): Promise<BearerRealm | undefined>;
  /** Keeps `realm` for `registry`; `previous` is what {@link load} gave. */
  save(registry: string, realm: BearerRealm, previous: BearerRealm | undefined): Promise<void>;
}

/** Options of {@link ClientPool.open}. */
export interface ClientPoolOptions {
  /** Realms remembered across runs; none are read or kept when absent. */
  realms?: RealmStore;
  /** Aborts the token fetches started from a known realm (the run's signal). */
  signal?: AbortSignal;
}

/** The clients of one run; {@link close} it when the run ends. */
export class ClientPool {
  readonly #transport: Transport;
  readonly #redactor: Redactor;
  readonly #options: ClientPoolOptions;
  readonly #clients = new Map<string, Promise<RegistryClient>>();
  /** The clients made so far. */
  readonly #made: RegistryClient[] = [];
  readonly #remembered = new Map<string, Promise<BearerRealm | undefined>>();
  readonly #checks = new Map<string, Promise<void>>();

  private constructor(transport: Transport, redactor: Redactor, options: ClientPoolOptions) {
    this.#transport = transport;
    this.#redactor = redactor;
    this.#options = options;
  }

  /**
   * Opens the run's transport for `references` (their registries' extra CAs are loaded) and a
   * pool over it; sends no request.
   */
  static async open(
    references: readonly Reference[],
    tls: TlsSettings,
    redactor: Redactor,
    options: ClientPoolOptions = {},
  ): Promise<ClientPool> {
    const transport = await openTransport(references, tls, redactor);
    return new ClientPool(transport, redactor, options);
  }

  /**
   * The client of `reference`'s repository with `access`; the first call makes it with
   * `credentials` (else the docker/podman config entry of its registry) and, when its registry's
   * token realm is known, starts fetching its token. `mountSources` are repositories of the same
   * registry whose `pull` its tokens carry too (blobs are mounted from them); a client with
   * other mount sources is another client.
   */
  client(
    reference: Reference,
    access: RepositoryAccess,
    credentials: Credentials | undefined,
    mountSources: readonly string[] = [],
  ): Promise<RegistryClient> {
    const mounts = mountSources.length === 0 ? "" : ` from ${[...mountSources].sort().join(",")}`;
    const key = `${reference.apiBase.href} ${reference.repository} ${access}${mounts}`;
    const known = this.#clients.get(key);
    if (known !== undefined) return known;
    const client = this.#connect(reference, access, credentials, mountSources);
    this.#clients.set(key, client);
    // A client that could not be made is made again by the next call.
    client.catch(() => {
      if (this.#clients.get(key) === client) this.#clients.delete(key);
    });
    return client;
  }

  /**
   * Runs `check` (the registry check of `reference`'s registry) once per registry: a later call
   * waits for the first one's. A check that failed is run again by the next caller, which then
   * meets the failure itself (an aborted run's check says nothing about the registry).
   */
  async checkRegistry(reference: Reference, check: () => Promise<void>): Promise<void> {
    const key = reference.apiBase.origin;
    const earlier = this.#checks.get(key);
    if (earlier !== undefined) {
      try {
        return await earlier;
      } catch {
        // checked again below
      }
    }
    const mine = check();
    this.#checks.set(key, mine);
    for (const client of this.#made) {
      if (client.apiOrigin === key) client.shareConnectionWith(mine);
    }
    try {
      await mine;
    } catch (error) {
      if (this.#checks.get(key) === mine) this.#checks.delete(key);
      throw error;
    }
  }

  /** Keeps the realms this run learnt for the next run and closes the transport. */
  async close(): Promise<void> {
    try {
      const store = this.#options.realms;
      if (store === undefined) return;
      for (const registry of new Set(this.#made.map((client) => client.registry))) {
        const learnt = this.#learnt(registry);
        if (learnt === undefined) continue;
        const previous = await this.#rememberedRealm(registry);
        await store.save(registry, learnt, previous).catch(() => {});
      }
    } finally {
      this.#transport.close();
    }
  }

  async #connect(
    reference: Reference,
    access: RepositoryAccess,
    credentials: Credentials | undefined,
    mountSources: readonly string[],
  ): Promise<RegistryClient> {
    const client = await connectClient(
      reference,
      credentials,
      this.#transport,
      access,
      this.#redactor,
      mountSources,
    );
    const realm = this.#learnt(reference.registry) ??
      await this.#rememberedRealm(reference.registry);
    if (realm !== undefined) client.assumeBearer(realm, this.#options.signal);
    const check = this.#checks.get(reference.apiBase.origin);
    if (check !== undefined) client.shareConnectionWith(check);
    this.#made.push(client);
    return client;
  }

  /** The realm a client of this run learnt from `registry`'s challenge, if any. */
  #learnt(registry: string): BearerRealm | undefined {
    for (const client of this.#made) {
      const realm = client.registry === registry ? client.bearerRealm : undefined;
      if (realm !== undefined) return realm;
    }
    return undefined;
  }

  #rememberedRealm(registry: string): Promise<BearerRealm | undefined> {
    let realm = this.#remembered.get(registry);
    if (realm === undefined) {
      realm = this.#options.realms?.load(registry).catch(() => undefined) ??
        Promise.resolve(undefined);
      this.#remembered.set(registry, realm);
    }
    return realm;
  }
}
