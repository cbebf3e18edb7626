/**
 * The extra CA certificates a registry connection trusts: PEM files named with `--ca-cert`, and
 * the `*.crt` files of the registry's directory in a `certs.d` tree, looked up the way podman,
 * skopeo and buildah do (containers-certs.d(5)), with docker's `/etc/docker/certs.d` last:
 *
 * 1. `$XDG_CONFIG_HOME/containers/certs.d/<host[:port]>/` (or `$HOME/.config/containers/…`)
 * 2. `/etc/containers/certs.d/<host[:port]>/`
 * 3. `/etc/docker/certs.d/<host[:port]>/`
 *
 * The first directory that exists wins; the host is written as in the image reference (with the
 * port when the reference has one).
 *
 * @module
 */

import { join } from "node:path";
import { PusherError } from "../errors.ts";
import { type EnvReader, processEnv } from "./proxy.ts";

/** Trusted CA certificates and where they came from. */
export interface CaCertificates {
  /** PEM texts, one per file. */
  pems: string[];
  /** The files read, in order (for `--verbose`). */
  sources: string[];
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The `certs.d` base directories, highest priority first. */
export function certsDirectories(env: EnvReader = processEnv): string[] {
  const home = env("HOME");
  const configHome = env("XDG_CONFIG_HOME") ?? (home ? join(home, ".config") : undefined);
  const directories = configHome ? [join(configHome, "containers", "certs.d")] : [];
  directories.push("/etc/containers/certs.d", "/etc/docker/certs.d");
  return directories;
}

/**
 * Reads the `--ca-cert` files and the `*.crt` files of the first `certs.d` directory named after
 * one of `hosts` (e.g. the registry name and its API host).
 *
 * @throws {PusherError} kind `usage` naming the file when a file can't be read or holds no PEM
 * certificate.
 */
export async function loadCaCertificates(
  caCertFiles: readonly string[],
  hosts: readonly string[],
  env: EnvReader = processEnv,
): Promise<CaCertificates> {
  const result: CaCertificates = { pems: [], sources: [] };
  for (const file of caCertFiles) {
    result.pems.push(await readPem(file, "--ca-cert"));
    result.sources.push(file);
  }
  const directory = await firstHostDirectory(certsDirectories(env), [...new Set(hosts)]);
  if (directory !== undefined) {
    for (const file of await crtFiles(directory)) {
      result.pems.push(await readPem(file, "certs.d"));
      result.sources.push(file);
    }
  }
  return result;
}

async function firstHostDirectory(
  bases: readonly string[],
  hosts: readonly string[],
): Promise<string | undefined> {
  for (const base of bases) {
    for (const host of hosts) {
      const directory = join(base, host);
      try {
        if ((await Deno.stat(directory)).isDirectory) return directory;
      } catch {
        // absent or not readable: look further
      }
    }
  }
  return undefined;
}

async function crtFiles(directory: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(directory)) {
      if (entry.name.endsWith(".crt") && !entry.isDirectory) names.push(entry.name);
    }
  } catch (error) {
    throw new PusherError(
      "usage",
      `cannot list CA certificates in ${directory}: ${(error as Error).message}`,
    );
  }
  return names.sort().map((name) => join(directory, name));
}

async function readPem(path: string, origin: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new PusherError(
      "usage",
      `cannot read CA certificate ${path} (${origin}): ${(error as Error).message}`,
    );
  }
  if (!PEM_CERTIFICATE.test(text)) {
    throw new PusherError(
      "usage",
      `CA certificate ${path} (${origin}) holds no PEM certificate`,
      {
        hint: "it must contain a -----BEGIN CERTIFICATE----- block (convert DER with openssl x509)",
      },
    );
  }
  return text;
}
