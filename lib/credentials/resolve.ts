/**
 * Where credentials come from, in order: explicit (`-u/-p`, `DOCKER_PUSHER_USERNAME` and
 * `DOCKER_PUSHER_PASSWORD`, `--password-stdin`), docker's config (`$DOCKER_CONFIG/config.json` or
 * `~/.docker/config.json`: auths, credHelpers, credsStore), `REGISTRY_AUTH_FILE`, podman's
 * `auth.json`. Nothing found means anonymous.
 *
 * @module
 */

import { moduleLogger } from "../logging/logger.ts";
import type { ExplicitCredentials } from "../options.ts";
import { configFilePaths, credentialsFromConfig, readAuthConfig } from "./docker_config.ts";
import type { RegistryCredentials } from "./types.ts";

const log = moduleLogger("auth");

/** Resolves the credentials for a registry and repository. */
export async function resolveCredentials(
  explicit: ExplicitCredentials | undefined,
  registry: string,
  repository: string,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<RegistryCredentials> {
  if (explicit) {
    return {
      kind: "basic",
      username: explicit.username,
      password: explicit.password,
      source: "the command line or environment",
    };
  }
  for (const path of configFilePaths(env)) {
    const config = await readAuthConfig(path);
    if (!config) continue;
    const found = await credentialsFromConfig(config, path, registry, repository);
    if (found) {
      log.debug(
        `using credentials for ${registry} from ${
          found.kind === "anonymous" ? "nowhere" : found.source
        }`,
      );
      return found;
    }
  }
  return { kind: "anonymous" };
}
