/**
 * Human formatting of sizes, speeds, durations and digests.
 *
 * @module
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** Formats a byte count with a binary unit, e.g. `12.3 MiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${UNITS[unit]}`;
}

/** Formats a duration in milliseconds as `1h02m`, `3m05s` or `4.2s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, "0")}m`;
  return `${minutes}m${String(rest).padStart(2, "0")}s`;
}

/** The first 12 hex digits of a digest (or the id as it is when it is not a digest). */
export function shortDigest(id: string): string {
  const match = id.match(/^sha256:([0-9a-f]{12})/);
  return match?.[1] ?? id.slice(0, 24);
}
