/**
 * Credentials from docker's and podman's config files: `auths` entries (`auth`, `identitytoken`),
 * `credHelpers` and `credsStore` (run `docker-credential-<name> get`).
 *
 * @module
 */

import { join } from "node:path";
import { PusherError } from "../errors.ts";
import type { Credentials } from "./credentials.ts";

/** Credentials found in a config file or given by a helper, and where they came from. */
export interface FoundCredentials {
  /** The credentials. */
  credentials: Credentials;
  /** Where they came from, e.g. `~/.docker/config.json (registry.example)` (safe to show). */
  source: string;
}

/** The parts of a docker/podman config file this tool reads. */
interface AuthConfigFile {
  auths?: Record<
    string,
    { auth?: string; identitytoken?: string; username?: string; password?: string }
  >;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Docker Hub's historical key in docker config files. */
export const DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/";

const DOCKER_HUB_NAMES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/** The keys a registry may be stored under, most specific first (podman allows repo paths). */
export function configKeys(registry: string, repository: string): string[] {
  if (DOCKER_HUB_NAMES.has(registry)) {
    const parts = repository.split("/");
    const paths = parts.map((_, index) =>
      `docker.io/${parts.slice(0, parts.length - index).join("/")}`
    );
    return [
      ...paths,
      DOCKER_HUB_CONFIG_KEY,
      "docker.io",
      "index.docker.io",
      "registry-1.docker.io",
      "https://index.docker.io/v1",
    ];
  }
  const parts = repository.split("/");
  const paths = parts.map((_, index) =>
    `${registry}/${parts.slice(0, parts.length - index).join("/")}`
  );
  return [
    ...paths,
    registry,
    `https://${registry}`,
    `http://${registry}`,
    `https://${registry}/v1/`,
    `https://${registry}/v2/`,
  ];
}

function decodeAuth(auth: string, source: string): { username: string; password: string } {
  let decoded: string;
  try {
    decoded = atob(auth.trim());
  } catch {
    throw new PusherError("auth", `the auth entry in ${source} is not valid base64`);
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) throw new PusherError("auth", `the auth entry in ${source} has no user:password`);
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Reads a config file; undefined when it does not exist. Malformed JSON is an auth error. */
export async function readAuthConfig(path: string): Promise<AuthConfigFile | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new PusherError(
      "auth",
      `cannot read credentials file ${path}: ${(error as Error).message}`,
    );
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null) throw new Error("not an object");
    return parsed as AuthConfigFile;
  } catch (error) {
    throw new PusherError(
      "auth",
      `credentials file ${path} is not valid JSON: ${(error as Error).message}`,
    );
  }
}

/** Runs `docker-credential-<helper> get` for a server; undefined when it has no entry. */
export async function runCredentialHelper(
  helper: string,
  serverUrl: string,
): Promise<FoundCredentials | undefined> {
  const program = `docker-credential-${helper}`;
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(program, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(serverUrl));
    await writer.close();
    output = await child.output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new PusherError("auth", `credential helper ${program} is not on PATH`, {
        hint: "install it, or pass -u and --password-stdin",
      });
    }
    throw new PusherError("auth", `credential helper ${program} failed to start`, { cause: error });
  }
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    const message = new TextDecoder().decode(output.stderr).trim();
    if (/not found|no credentials/i.test(message) || /not found|no credentials/i.test(stdout)) {
      return undefined;
    }
    throw new PusherError("auth", `credential helper ${program} failed (exit ${output.code})`);
  }
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new PusherError(
      "auth",
      `credential helper ${program} printed something that is not JSON`,
    );
  }
  if (!parsed.Secret) return undefined;
  const source = `credential helper ${program}`;
  // Docker's convention: the user name `<token>` marks the secret as an identity token.
  if (parsed.Username === "<token>") {
    return { credentials: { identityToken: parsed.Secret }, source };
  }
  return {
    credentials: { username: parsed.Username ?? "", password: parsed.Secret },
    source,
  };
}

/** Looks a registry up in one config file. */
export async function credentialsFromConfig(
  config: AuthConfigFile,
  path: string,
  registry: string,
  repository: string,
): Promise<FoundCredentials | undefined> {
  const keys = configKeys(registry, repository);
  for (const key of keys) {
    const helper = config.credHelpers?.[key];
    if (helper) {
      return await runCredentialHelper(
        helper,
        DOCKER_HUB_NAMES.has(registry) ? DOCKER_HUB_CONFIG_KEY : key,
      );
    }
  }
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (!entry) continue;
    const source = `${path} (${key})`;
    if (entry.identitytoken) {
      const username = entry.auth ? decodeAuth(entry.auth, path).username : (entry.username ?? "");
      const identityToken = entry.identitytoken;
      return {
        credentials: username === "" ? { identityToken } : { identityToken, username },
        source,
      };
    }
    if (entry.auth) return { credentials: decodeAuth(entry.auth, path), source };
    if (entry.username && entry.password) {
      return { credentials: { username: entry.username, password: entry.password }, source };
    }
  }
  if (config.credsStore) {
    const server = DOCKER_HUB_NAMES.has(registry) ? DOCKER_HUB_CONFIG_KEY : registry;
    return await runCredentialHelper(config.credsStore, server);
  }
  return undefined;
}

/** The config files consulted, in order: docker's, then `REGISTRY_AUTH_FILE`, then podman's. */
export function configFilePaths(env: (name: string) => string | undefined): string[] {
  const home = env("HOME") ?? env("USERPROFILE") ?? ".";
  const paths = [join(env("DOCKER_CONFIG") ?? join(home, ".docker"), "config.json")];
  const authFile = env("REGISTRY_AUTH_FILE");
  if (authFile) paths.push(authFile);
  const runtimeDir = env("XDG_RUNTIME_DIR");
  if (runtimeDir) paths.push(join(runtimeDir, "containers", "auth.json"));
  paths.push(join(env("XDG_CONFIG_HOME") ?? join(home, ".config"), "containers", "auth.json"));
  return paths;
}
