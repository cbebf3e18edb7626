/**
 * `--platform OS/ARCH[/VARIANT]` for copy and pull: parsing the values, matching them against the
 * platforms an index names (with containerd's default variants, so `linux/arm64` matches
 * `linux/arm64/v8`), and filtering an index down to the matching children. The children keep
 * their bytes and digests; only the index is rewritten, so its digest changes. Attestation
 * manifests (buildx `attestation-manifest` entries) stay when the image they describe stays.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { platformName } from "../oci/platform.ts";
import type { Platform } from "../oci/platform.ts";

/** A descriptor in an index, as this module reads it; the rest of its fields pass unchanged. */
export interface IndexEntry {
  /** Digest of the child manifest. */
  digest: string;
  /** Its platform, when the index names one. */
  platform?: Platform;
  /** For an attestation manifest: the digest of the manifest it describes. */
  attestationOf?: string;
}

/** Annotation buildx sets on attestation manifests in an index. */
const REFERENCE_TYPE = "vnd.docker.reference.type";
/** Annotation naming the manifest an attestation describes. */
const REFERENCE_DIGEST = "vnd.docker.reference.digest";

/** Spellings of architectures that name the same thing (`uname -m` style → OCI). */
const ARCHITECTURE_ALIASES: Readonly<Record<string, string>> = {
  x86_64: "amd64",
  "x86-64": "amd64",
  aarch64: "arm64",
  armhf: "arm",
  armel: "arm",
  i386: "386",
};

/** Variants an architecture has when none is named (as containerd's platform matcher assumes). */
const DEFAULT_VARIANTS: Readonly<Record<string, string>> = { arm64: "v8", arm: "v7" };

/**
 * Parses one `--platform` value.
 *
 * @throws {PusherError} kind `usage` for a value that is not `OS/ARCH[/VARIANT]`.
 */
export function parsePlatform(value: string): Platform {
  const parts = value.trim().toLowerCase().split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9._-]+$/.test(part))) {
    throw new PusherError("usage", `invalid --platform "${value}"`, {
      hint: "expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8",
    });
  }
  const [os = "", architecture = "", variant] = parts;
  const platform: Platform = { os, architecture };
  if (variant !== undefined) platform.variant = variant;
  return platform;
}

/** The platform with its architecture's usual name and its default variant filled in. */
function normalized(platform: Platform): Platform {
  const architecture = ARCHITECTURE_ALIASES[platform.architecture.toLowerCase()] ??
    platform.architecture.toLowerCase();
  const variant = platform.variant?.toLowerCase() ?? DEFAULT_VARIANTS[architecture];
  const result: Platform = { os: platform.os.toLowerCase(), architecture };
  if (variant !== undefined) result.variant = variant;
  return result;
}

/** Whether `candidate` is the platform `wanted` asks for. */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const a = normalized(wanted);
  const b = normalized(candidate);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/** Reads the entries of an index's `manifests` array for matching. */
export function indexEntries(manifests: readonly unknown[]): IndexEntry[] {
  return manifests.map((value, i) => {
    const record = asRecord(value, `index entry ${i + 1}`);
    const digest = record.digest;
    if (typeof digest !== "string") {
      throw new PusherError("registry", `index entry ${i + 1} has no digest`);
    }
    const entry: IndexEntry = { digest };
    const platform = record.platform;
    if (typeof platform === "object" && platform !== null) {
      const { os, architecture, variant } = platform as Record<string, unknown>;
      if (typeof os === "string" && typeof architecture === "string") {
        entry.platform = { os, architecture };
        if (typeof variant === "string" && variant !== "") entry.platform.variant = variant;
      }
    }
    const annotations = record.annotations;
    if (typeof annotations === "object" && annotations !== null) {
      const notes = annotations as Record<string, unknown>;
      const subject = notes[REFERENCE_DIGEST];
      if (notes[REFERENCE_TYPE] === "attestation-manifest" && typeof subject === "string") {
        entry.attestationOf = subject;
      }
    }
    return entry;
  });
}

/**
 * The positions of the entries to keep for `wanted`: every entry whose platform matches one of
 * them, and the attestations of those.
 */
export function matchingEntries(
  entries: readonly IndexEntry[],
  wanted: readonly Platform[],
): number[] {
  const kept = new Set<string>();
  entries.forEach((entry) => {
    if (entry.attestationOf !== undefined || entry.platform === undefined) return;
    const platform = entry.platform;
    if (wanted.some((w) => platformMatches(w, platform))) kept.add(entry.digest);
  });
  const positions: number[] = [];
  entries.forEach((entry, i) => {
    const subject = entry.attestationOf;
    if (kept.has(entry.digest) || (subject !== undefined && kept.has(subject))) positions.push(i);
  });
  return positions;
}

/** What {@link filterIndex} made of an index. */
export interface FilteredIndex {
  /** The index bytes: the original ones when every entry was kept, else a new JSON document. */
  bytes: Uint8Array;
  /** Digests of the kept children, in index order. */
  children: string[];
  /** Whether entries were dropped (the index is new and has another digest). */
  changed: boolean;
}

/**
 * Keeps the entries of an index that match `wanted` (all when `wanted` is empty). `index` is the
 * parsed JSON of `bytes`.
 *
 * @throws {PusherError} kind `input` when no entry matches, naming the platforms there are.
 */
export function filterIndex(
  bytes: Uint8Array,
  index: Readonly<Record<string, unknown>>,
  wanted: readonly Platform[],
  where: string,
): FilteredIndex {
  const manifests = index.manifests;
  if (!Array.isArray(manifests)) {
    throw new PusherError("registry", `${where} has no "manifests" array`);
  }
  const entries = indexEntries(manifests);
  if (wanted.length === 0) {
    return { bytes, children: entries.map((entry) => entry.digest), changed: false };
  }
  const positions = matchingEntries(entries, wanted);
  if (positions.length === 0) {
    const available = entries.flatMap((entry) =>
      entry.platform !== undefined && entry.attestationOf === undefined
        ? [platformName(entry.platform)]
        : []
    );
    throw new PusherError(
      "input",
      `${where} has no image for ${wanted.map(platformName).join(", ")}`,
      { hint: `it has ${available.length > 0 ? available.join(", ") : "no named platform"}` },
    );
  }
  const children = positions.map((i) => (entries[i] as IndexEntry).digest);
  if (positions.length === entries.length) return { bytes, children, changed: false };
  const filtered = { ...index, manifests: positions.map((i) => manifests[i]) };
  return {
    bytes: new TextEncoder().encode(JSON.stringify(filtered)),
    children,
    changed: true,
  };
}

function asRecord(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new PusherError("registry", `${where} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
