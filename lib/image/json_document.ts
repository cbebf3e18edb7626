/**
 * Reading the JSON documents of an archive (manifests, indexes, configs) byte for byte, with
 * digests and field checks that fail with input errors naming the entry.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { normalizeEntryPath } from "./tar_path.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import type { Platform } from "../oci/platform.ts";
import type { EntryView } from "./types.ts";

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/**
 * Normalises a path read from an archive document. Throws an input error naming `where` when it
 * is empty or leaves the archive.
 */
export function documentPath(path: string, where: string): string {
  const normalized = normalizeEntryPath(path);
  if (normalized === undefined || normalized === "") {
    throw new PusherError("input", `${where} names an invalid entry path "${path}"`);
  }
  return normalized;
}

/**
 * Reads an entry named by an archive document. Throws an input error naming `where` (the
 * document and field that named it) when the archive lacks it.
 */
export async function readNamedEntry(
  view: EntryView,
  path: string,
  where: string,
): Promise<Uint8Array> {
  if (!view.has(path)) {
    throw new PusherError("input", `${where} names "${path}", which is not in the archive`, {
      hint: "the archive is incomplete; re-create it",
    });
  }
  return await view.read(path);
}

/** Parses JSON bytes, throwing an input error naming `where` when they are not valid JSON. */
export function parseJson(bytes: Uint8Array, where: string): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new PusherError("input", `${where} is not valid JSON (${reason})`, { cause: error });
  }
}

/** Parses JSON bytes that must hold an object. */
export function parseJsonObject(bytes: Uint8Array, where: string): JsonObject {
  return asObject(parseJson(bytes, where), where);
}

/** Parses docker's `manifest.json`: a non-empty array of image entries. */
export function parseManifestList(bytes: Uint8Array): unknown[] {
  const json = parseJson(bytes, "manifest.json");
  if (!Array.isArray(json)) throw new PusherError("input", "manifest.json is not a JSON array");
  if (json.length === 0) throw new PusherError("input", "manifest.json lists no images");
  return json;
}

/** Checks that a value is a JSON object. */
export function asObject(value: unknown, where: string): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new PusherError("input", `${where} is not a JSON object`);
  }
  return value as JsonObject;
}

/** A field that must be a non-empty string. */
export function requiredString(object: JsonObject, key: string, where: string): string {
  const value = object[key];
  if (typeof value !== "string" || value === "") {
    throw new PusherError("input", `${where} has no "${key}" string`);
  }
  return value;
}

/** A field that may be absent but, when present, must be a string. */
export function optionalString(object: JsonObject, key: string, where: string): string | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    throw new PusherError("input", `${where}: "${key}" is not a string`);
  }
  return value;
}

/** A field that must be an array (`null` and absence count as empty when `optional`). */
export function arrayField(
  object: JsonObject,
  key: string,
  where: string,
  optional = false,
): unknown[] {
  const value = object[key];
  if (optional && (value === undefined || value === null)) return [];
  if (!Array.isArray(value)) throw new PusherError("input", `${where} has no "${key}" array`);
  return value;
}

/** A field that must be an array of strings (`null` and absence count as empty when `optional`). */
export function stringArrayField(
  object: JsonObject,
  key: string,
  where: string,
  optional = false,
): string[] {
  const values = arrayField(object, key, where, optional);
  if (!values.every((value) => typeof value === "string")) {
    throw new PusherError("input", `${where}: "${key}" holds a value that is not a string`);
  }
  return values as string[];
}

/** A string-to-string map such as `annotations`; undefined when absent. */
export function stringMapField(
  object: JsonObject,
  key: string,
  where: string,
): Record<string, string> | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  const map = asObject(value, `${where} "${key}"`);
  if (!Object.values(map).every((item) => typeof item === "string")) {
    throw new PusherError("input", `${where}: "${key}" holds a value that is not a string`);
  }
  return map as Record<string, string>;
}

/** The platform of an index entry; undefined when absent. */
export function platformField(object: JsonObject, where: string): Platform | undefined {
  const value = object.platform;
  if (value === undefined || value === null) return undefined;
  const platform = asObject(value, `${where} platform`);
  const result: Platform = {
    os: requiredString(platform, "os", `${where} platform`),
    architecture: requiredString(platform, "architecture", `${where} platform`),
  };
  const variant = optionalString(platform, "variant", `${where} platform`);
  if (variant !== undefined && variant !== "") result.variant = variant;
  return result;
}

/**
 * The `rootfs.diff_ids` of an image config, or undefined when the config has none. Throws an input
 * error naming `where` when they are malformed.
 */
export function configDiffIds(config: JsonObject, where: string): string[] | undefined {
  if (config.rootfs === undefined || config.rootfs === null) return undefined;
  const rootfs = asObject(config.rootfs, `${where} rootfs`);
  if (rootfs.diff_ids === undefined || rootfs.diff_ids === null) return undefined;
  const diffIds = stringArrayField(rootfs, "diff_ids", `${where} rootfs`);
  for (const diffId of diffIds) {
    if (!/^sha256:[a-f0-9]{64}$/.test(diffId)) {
      throw new PusherError("input", `${where} has a malformed diff_id "${diffId}"`);
    }
  }
  return diffIds;
}

/**
 * A content descriptor of a manifest or index (sha256 digest, size, media type, annotations,
 * platform). Throws an input error naming `where` when it is malformed or not sha256.
 */
export function parseDescriptor(value: unknown, where: string): Descriptor {
  const object = asObject(value, where);
  const digest = requiredString(object, "digest", where);
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) {
    throw new PusherError(
      "input",
      /^[a-z0-9+._-]+:[a-zA-Z0-9=_-]+$/.test(digest)
        ? `${where} uses digest ${digest}; only sha256 digests are supported`
        : `${where} has a malformed digest "${digest}"`,
    );
  }
  const size = object.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new PusherError("input", `${where} has no valid "size"`);
  }
  const descriptor: Descriptor = {
    mediaType: optionalString(object, "mediaType", where) ?? "",
    digest,
    size,
  };
  const annotations = stringMapField(object, "annotations", where);
  if (annotations !== undefined) descriptor.annotations = annotations;
  const platform = platformField(object, where);
  if (platform !== undefined) descriptor.platform = platform;
  return descriptor;
}
