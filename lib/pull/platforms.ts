/**
 * `--platform OS/ARCH[/VARIANT]` for a pull: parsing the flag, keeping only the wanted children
 * of a multi-platform index (a new index listing them, so its digest changes while the children
 * keep theirs), and the host's platform for the archive's `manifest.json`.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import {
  arrayField,
  asObject,
  optionalString,
  parseJsonObject,
  platformField,
} from "../image/json_document.ts";
import type { RawDocument } from "../image/types.ts";
import { sha256Digest } from "../bytes/sha256.ts";
import { type Platform, platformName } from "../oci/platform.ts";

/** A child of an index, as a pull needs it. */
export interface IndexChild {
  /** Digest of the child manifest. */
  digest: string;
  /** Its media type. */
  mediaType: string;
  /** Its size in bytes. */
  size: number;
  /** Its platform, when the index gives one. */
  platform?: Platform;
  /** For an attestation manifest: the digest of the image it describes. */
  describes?: string;
}

/** The children kept from an index, and the index listing them. */
export interface KeptPlatforms {
  /** The index: the original bytes when every child is kept, else a new index. */
  index: RawDocument;
  /** The children it lists. */
  children: IndexChild[];
  /** True when a new index was built (its digest differs from the source's). */
  rebuilt: boolean;
}

const PLATFORM_PART = /^[a-z0-9_.-]+$/i;
const ATTESTATION_TYPE = "vnd.docker.reference.type";
const ATTESTATION_SUBJECT = "vnd.docker.reference.digest";
const encoder = new TextEncoder();

/**
 * Parses `OS/ARCH[/VARIANT]` (e.g. `linux/arm64/v8`).
 *
 * @throws {PusherError} kind `usage` naming the value.
 */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split("/");
  if (parts.length < 2 || parts.length > 3 || !parts.every((part) => PLATFORM_PART.test(part))) {
    throw new PusherError("usage", `--platform ${JSON.stringify(text)} is not OS/ARCH[/VARIANT]`, {
      hint: "for example --platform linux/amd64 or --platform linux/arm64/v8",
    });
  }
  const [os = "", architecture = "", variant] = parts;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** Whether `candidate` is what `wanted` asks for (a wanted platform without variant takes any). */
export function platformMatches(wanted: Platform, candidate: Platform | undefined): boolean {
  if (candidate === undefined) return false;
  return candidate.os === wanted.os && candidate.architecture === wanted.architecture &&
    (wanted.variant === undefined || candidate.variant === wanted.variant);
}

/** The platform of this machine, in OCI words (`linux/amd64`, `linux/arm64`). */
export function hostPlatform(): Platform {
  const architectures: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };
  return { os: Deno.build.os, architecture: architectures[Deno.build.arch] ?? Deno.build.arch };
}

/** The children an index lists. */
export function indexChildren(index: RawDocument): IndexChild[] {
  const where = `index ${index.digest}`;
  const json = parseJsonObject(index.bytes, where);
  return arrayField(json, "manifests", where).map((value, i) => {
    const entry = asObject(value, `${where} entry ${i + 1}`);
    const digest = optionalString(entry, "digest", `${where} entry ${i + 1}`);
    const size = entry.size;
    if (digest === undefined || typeof size !== "number" || !Number.isSafeInteger(size)) {
      throw new PusherError("input", `${where} entry ${i + 1} has no digest or size`);
    }
    const child: IndexChild = {
      digest,
      size,
      mediaType: optionalString(entry, "mediaType", `${where} entry ${i + 1}`) ?? "",
    };
    const platform = platformField(entry, `${where} entry ${i + 1}`);
    if (platform !== undefined) child.platform = platform;
    const annotations = entry.annotations as Record<string, unknown> | undefined;
    const subject = annotations?.[ATTESTATION_SUBJECT];
    if (annotations?.[ATTESTATION_TYPE] !== undefined && typeof subject === "string") {
      child.describes = subject;
    }
    return child;
  });
}

/**
 * Keeps the children of `index` that run on one of `wanted` (every child when `wanted` is
 * empty), with the attestations describing them.
 *
 * @throws {PusherError} kind `usage` when a wanted platform is not in the index.
 */
export function keepPlatforms(index: RawDocument, wanted: readonly Platform[]): KeptPlatforms {
  const children = indexChildren(index);
  if (wanted.length === 0) return { index, children, rebuilt: false };
  const images = children.filter((child) => child.describes === undefined);
  for (const platform of wanted) {
    if (!images.some((child) => platformMatches(platform, child.platform))) {
      const available = images.flatMap((child) =>
        child.platform ? [platformName(child.platform)] : []
      );
      throw new PusherError(
        "usage",
        `${index.digest} has no image for ${platformName(platform)} (it has ${
          available.join(", ") || "none"
        })`,
      );
    }
  }
  const keptImages = new Set(
    images.filter((child) => wanted.some((platform) => platformMatches(platform, child.platform)))
      .map((child) => child.digest),
  );
  const keep = (child: IndexChild): boolean =>
    keptImages.has(child.digest) ||
    (child.describes !== undefined && keptImages.has(child.describes));
  const kept = children.filter(keep);
  if (kept.length === children.length) return { index, children, rebuilt: false };
  const json = parseJsonObject(index.bytes, `index ${index.digest}`);
  const entries = arrayField(json, "manifests", `index ${index.digest}`)
    .filter((_, i) => keep(children[i] as IndexChild));
  const bytes = encoder.encode(JSON.stringify({ ...json, manifests: entries }));
  return {
    index: { bytes, digest: sha256Digest(bytes), mediaType: index.mediaType },
    children: kept,
    rebuilt: true,
  };
}

/**
 * The platform `manifest.json` should list for docker load: the host's when one of `children`
 * runs on it, else `undefined` (the archive writer then takes the first runnable child).
 */
export function loadPlatformFor(children: readonly IndexChild[]): string | undefined {
  const host = hostPlatform();
  const match = children.find((child) =>
    child.describes === undefined && platformMatches(host, child.platform)
  );
  return match?.platform === undefined ? undefined : platformName(match.platform);
}
