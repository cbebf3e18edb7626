/**
 * Checks on a manifest read from a registry, before anything trusts it: the body fits the size
 * registries allow, its digest is the one asked for (or the one the registry reported), and it is
 * not a Docker schema 1 manifest, which carries no config or layer descriptors and is refused
 * with a note on how to convert it.
 *
 * @module
 */

import { concatBytes } from "../bytes/peek.ts";
import { digestAlgorithm, digestOf } from "../bytes/sha256.ts";
import { PusherError } from "../errors.ts";
import { RegistryError } from "./errors.ts";

/** The largest manifest read (registries refuse bigger ones on push: 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Media types of Docker image manifest schema 1 (unsigned and signed). */
export const SCHEMA1_MEDIA_TYPES: readonly string[] = [
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

const DIGEST = /^(sha256|sha512):[a-f0-9]+$/;

/** True when `reference` is a digest (`sha256:…`) rather than a tag. */
export function isDigestReference(reference: string): boolean {
  return DIGEST.test(reference);
}

/**
 * Reads a manifest body, refusing one longer than {@link MAX_MANIFEST_BYTES} without reading it
 * all.
 *
 * @throws {RegistryError} kind `registry` for an oversized body.
 */
export async function readManifestBody(
  body: ReadableStream<Uint8Array> | null,
  what: string,
): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > MAX_MANIFEST_BYTES) {
      await body.cancel().catch(() => {});
      throw new RegistryError(
        "registry",
        `${what}: the manifest is larger than ${MAX_MANIFEST_BYTES} bytes`,
      );
    }
    chunks.push(chunk);
  }
  return concatBytes(chunks, size);
}

/**
 * The digest of manifest `bytes`, checked against the digest asked for (when `reference` is one)
 * and against `Docker-Content-Digest` (`reported`, when present).
 *
 * @throws {RegistryError} kind `verify` on a mismatch.
 */
export function verifiedManifestDigest(
  bytes: Uint8Array,
  reference: string,
  reported: string | null,
  what: string,
): string {
  const asked = isDigestReference(reference) ? reference : undefined;
  const header = reported === null || reported.trim() === "" ? undefined : reported.trim();
  for (const [expected, source] of [[asked, "asked for"], [header, "reported by the registry"]]) {
    if (expected === undefined) continue;
    const actual = digestOf(bytes, digestAlgorithm(expected));
    if (actual !== expected) {
      throw new RegistryError(
        "verify",
        `${what}: the manifest's digest is ${actual}, not ${expected} as ${source}`,
        { hint: "a proxy or cache between here and the registry may have changed the manifest" },
      );
    }
  }
  return asked ?? digestOf(bytes, digestAlgorithm(header ?? ""));
}

/**
 * Refuses a Docker schema 1 manifest, recognised by its media type or, for registries that label
 * it loosely, by `"schemaVersion": 1` in the JSON body (when `bytes` are given).
 *
 * @throws {PusherError} kind `input` for schema 1.
 */
export function refuseSchema1(
  mediaType: string,
  bytes: Uint8Array | undefined,
  what: string,
): void {
  const bare = mediaType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (SCHEMA1_MEDIA_TYPES.includes(bare) || (bytes !== undefined && schemaVersionOf(bytes) === 1)) {
    throw new PusherError(
      "input",
      `${what}: the image is a Docker schema 1 manifest, a format from before 2017 that this ` +
        "tool does not read",
      {
        hint: "push the image again with a current docker, or convert it in place with " +
          "`skopeo copy --format v2s2 docker://<image> docker://<image>`",
      },
    );
  }
}

/** `schemaVersion` of a JSON manifest, or `undefined` when the bytes say nothing readable. */
function schemaVersionOf(bytes: Uint8Array): unknown {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof parsed === "object" && parsed !== null
      ? (parsed as Record<string, unknown>).schemaVersion
      : undefined;
  } catch {
    return undefined;
  }
}
