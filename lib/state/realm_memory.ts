/**
 * The token realm a registry's challenge named, kept for the next run: it then fetches its
 * token at once, beside its first requests, instead of after their 401 — one round trip less on
 * a far registry. Only the realm URL and service name are kept (no credentials, no tokens); a
 * realm that no longer works is forgotten by the run that finds out.
 *
 * @module
 */

import type { BearerRealm } from "../registry/auth.ts";
import type { RealmStore } from "../registry/client_pool.ts";
import { readRegistryFile, registryFilePath, writeFileAtomic } from "./cache_dir.ts";

const FORMAT = "docker-image-pusher/token-realm";

/** The realm an earlier run learnt for `registry`, if any. */
export async function loadRealm(
  directory: string,
  registry: string,
): Promise<BearerRealm | undefined> {
  const path = registryFilePath(directory, "realm", registry);
  const fields = await readRegistryFile(path, "token realm", FORMAT, registry);
  const realm = fields?.["realm"];
  const service = fields?.["service"];
  if (typeof realm !== "string" || !URL.canParse(realm)) return undefined;
  const url = new URL(realm);
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  return { realm: url, service: typeof service === "string" ? service : undefined };
}

/** Keeps `realm` for `registry` (nothing is written when it is what the file already says). */
export async function saveRealm(
  directory: string,
  registry: string,
  realm: BearerRealm,
  previous: BearerRealm | undefined,
): Promise<void> {
  if (previous?.realm.href === realm.realm.href && previous.service === realm.service) return;
  await Deno.mkdir(directory, { recursive: true });
  const file: Record<string, unknown> = {
    format: FORMAT,
    version: 1,
    registry,
    realm: realm.realm.href,
  };
  if (realm.service !== undefined) file["service"] = realm.service;
  await writeFileAtomic(registryFilePath(directory, "realm", registry), JSON.stringify(file));
}

/** The realms kept in `directory` (the cache directory), as a run's client pool reads and keeps them. */
export function realmStore(directory: string): RealmStore {
  return {
    load: (registry) => loadRealm(directory, registry),
    save: (registry, realm, previous) => saveRealm(directory, registry, realm, previous),
  };
}
