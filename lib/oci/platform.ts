/**
 * The platform an image runs on, as OCI index entries and image configs name it: its type, the
 * `OS/ARCH[/VARIANT]` form users write (parsing and printing), and matching a wanted platform
 * against an image's the way containerd does (architecture aliases such as `x86_64` = `amd64`,
 * default variants such as `arm64` = `arm64/v8`).
 *
 * @module
 */

import { PusherError } from "../errors.ts";

/** A platform as the OCI image spec writes it. */
export interface Platform {
  /** Operating system, e.g. `linux`. */
  os: string;
  /** CPU architecture, e.g. `amd64`. */
  architecture: string;
  /** CPU variant, e.g. `v8`. */
  variant?: string;
  /** Operating system version, e.g. `10.0.17763.1234` (Windows images). */
  "os.version"?: string;
  /** Required operating system features, e.g. `win32k`. */
  "os.features"?: string[];
}

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

const PLATFORM_PART = /^[a-z0-9._-]+$/;

/** `os/architecture[/variant]`, as users write platforms. */
export function platformName(platform: Platform): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant === undefined ? base : `${base}/${platform.variant}`;
}

/**
 * Parses `OS/ARCH[/VARIANT]` (e.g. `linux/arm64/v8`), lower-cased.
 *
 * @throws {PusherError} kind `usage` naming the value.
 */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split("/");
  if (parts.length < 2 || parts.length > 3 || !parts.every((part) => PLATFORM_PART.test(part))) {
    throw new PusherError("usage", `--platform ${JSON.stringify(text)} is not OS/ARCH[/VARIANT]`, {
      hint: "for example --platform linux/amd64 or --platform linux/arm64/v8",
    });
  }
  const [os = "", architecture = "", variant] = parts;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** The platform with its architecture's usual name and its default variant filled in. */
function normalized(platform: Platform): Platform {
  const lower = platform.architecture.toLowerCase();
  const architecture = ARCHITECTURE_ALIASES[lower] ?? lower;
  const variant = platform.variant?.toLowerCase() ?? DEFAULT_VARIANTS[architecture];
  const result: Platform = { os: platform.os.toLowerCase(), architecture };
  if (variant !== undefined) result.variant = variant;
  return result;
}

/**
 * Whether `candidate` (an image's platform, when it names one) is the platform `wanted` asks
 * for: the same OS and architecture, and the same variant once default variants are filled in.
 */
export function platformMatches(wanted: Platform, candidate: Platform | undefined): boolean {
  if (candidate === undefined) return false;
  const a = normalized(wanted);
  const b = normalized(candidate);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}
