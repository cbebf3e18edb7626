/**
 * Where credentials come from, in order: explicit (`-u/-p`, `DOCKER_PUSHER_USERNAME` and
 * `DOCKER_PUSHER_PASSWORD`, `--password-stdin`), docker's config (`$DOCKER_CONFIG/config.json` or
 * `~/.docker/config.json`: auths, credHelpers, credsStore), `REGISTRY_AUTH_FILE`, podman's
 * `auth.json`. Nothing found means anonymous.
 *
 * @module
 */

import { moduleLogger } from "../logging/logger.ts";
import { ANONYMOUS, type Credentials } from "./credentials.ts";
import { configFilePaths, credentialsFromConfig, readAuthConfig } from "./docker_config.ts";

const log = moduleLogger("auth");

/**
 * Resolves the credentials for a registry and repository: `explicit` ones when given (anonymous
 * included), else the first config file that has an entry, else anonymous.
 */
export async function resolveCredentials(
  explicit: Credentials | undefined,
  registry: string,
  repository: string,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<Credentials> {
  if (explicit) return explicit;
  for (const path of configFilePaths(env)) {
    const config = await readAuthConfig(path);
    if (!config) continue;
    const found = await credentialsFromConfig(config, path, registry, repository);
    if (found) {
      log.debug(`using credentials for ${registry} from ${found.source}`);
      return found.credentials;
    }
  }
  return ANONYMOUS;
}
