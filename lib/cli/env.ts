/**
 * Environment-variable defaults for command-line flags: `--max-concurrent` reads
 * `DOCKER_PUSHER_MAX_CONCURRENT`, and so on. A flag on the command line wins.
 *
 * @module
 */

import { PusherError } from "../errors.ts";

/** The environment variable that holds the default for a long flag name. */
export function envNameFor(flag: string): string {
  return `DOCKER_PUSHER_${flag.replace(/^--/, "").replaceAll("-", "_").toUpperCase()}`;
}

const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);
const FALSE_WORDS = new Set(["false", "0", "no", "off", ""]);

/** Parses an environment boolean (true/false/1/0/yes/no/on/off), or throws a usage error. */
export function parseEnvBoolean(name: string, value: string): boolean {
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new PusherError("usage", `${name}=${JSON.stringify(value)} is not a boolean`, {
    hint: "use true/false, 1/0 or yes/no",
  });
}

/** Parses a whole number of at least `min` for a flag or variable, or throws a usage error. */
export function parseWholeNumber(label: string, value: string, min: number): number {
  const text = value.trim();
  if (!/^\d+$/.test(text)) {
    throw new PusherError("usage", `${label} must be a whole number, got ${JSON.stringify(value)}`);
  }
  const number = Number(text);
  if (!Number.isSafeInteger(number) || number < min) {
    throw new PusherError("usage", `${label} must be at least ${min}, got ${text}`);
  }
  return number;
}
