/**
 * Docker Hub's pull quota as its answers report it: `ratelimit-limit: 100;w=21600` and
 * `ratelimit-remaining: 76;w=21600` (pulls allowed and left in a window of `w` seconds). The
 * transport puts it in the request log, so `--verbose` shows how much of the quota a run used.
 *
 * @module
 */

/** A pull quota read from one answer. */
export interface RateLimit {
  /** Requests allowed in the window. */
  limit: number;
  /** Requests left in the window. */
  remaining: number;
  /** Length of the window in seconds, when the registry said. */
  windowSeconds?: number;
}

/** Reads `ratelimit-limit` and `ratelimit-remaining`; `undefined` unless both are readable. */
export function parseRateLimit(headers: Headers): RateLimit | undefined {
  const limit = quotaValue(headers.get("ratelimit-limit"));
  const remaining = quotaValue(headers.get("ratelimit-remaining"));
  if (limit === undefined || remaining === undefined) return undefined;
  const result: RateLimit = { limit: limit.count, remaining: remaining.count };
  const window = limit.windowSeconds ?? remaining.windowSeconds;
  if (window !== undefined) result.windowSeconds = window;
  return result;
}

/** Formats a quota for a log line, e.g. `76/100 left per 21600 s`. */
export function describeRateLimit(rateLimit: RateLimit): string {
  const window = rateLimit.windowSeconds === undefined ? "" : ` per ${rateLimit.windowSeconds} s`;
  return `${rateLimit.remaining}/${rateLimit.limit} left${window}`;
}

/** `<count>[;w=<seconds>]`, the form Docker Hub sends. */
function quotaValue(
  value: string | null,
): { count: number; windowSeconds?: number } | undefined {
  if (value === null) return undefined;
  const match = /^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+)\s*)?$/.exec(value);
  if (match === null) return undefined;
  const count = Number(match[1]);
  return match[2] === undefined ? { count } : { count, windowSeconds: Number(match[2]) };
}
