/**
 * The platform an image runs on, as OCI index entries and image configs name it.
 *
 * @module
 */

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

/** `os/architecture[/variant]`, as users write platforms. */
export function platformName(platform: Platform): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant === undefined ? base : `${base}/${platform.variant}`;
}
