/**
 * A parsed command's flag values with their environment-variable defaults applied: the command
 * line wins, then `DOCKER_PUSHER_<NAME>`, and messages name whichever gave the value.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { TypedValue } from "./argv.ts";
import { envNameFor, parseEnvBoolean, parseWholeNumber } from "./env.ts";
import { type FlagSpec, longName } from "./flags.ts";

type RawValue = string | string[] | boolean | undefined;

/** One flag's effective value and where it came from. */
interface Setting {
  spec: FlagSpec;
  /** The value, from the command line or the environment; undefined when neither gives one. */
  value: RawValue;
  /** How messages name it: `--max-concurrent`, or `DOCKER_PUSHER_MAX_CONCURRENT` from the env. */
  label: string;
}

/** Reads one flag's value: the command line first, then its environment variable. */
function effectiveSetting(
  spec: FlagSpec,
  typed: ReadonlyMap<string, TypedValue>,
  env: Readonly<Record<string, string>>,
): Setting {
  const long = longName(spec);
  const flagLabel = `--${long}`;
  const value = typed.get(long);
  if (value !== undefined) return { spec, value, label: flagLabel };
  const envName = envNameFor(flagLabel);
  const fromEnv = env[envName];
  if (fromEnv === undefined) return { spec, value: undefined, label: flagLabel };
  if (spec.kind === "boolean") {
    return { spec, value: parseEnvBoolean(envName, fromEnv), label: envName };
  }
  if (spec.kind === "list") {
    const items = fromEnv.split(",").map((item) => item.trim()).filter(Boolean);
    return { spec, value: items, label: envName };
  }
  return { spec, value: fromEnv, label: envName };
}

/** The effective flag values of one parsed command. */
export class FlagReader {
  #settings = new Map<string, Setting>();
  #typed: ReadonlyMap<string, TypedValue>;

  /** Reads every flag of `specs` from the values `typed` on the command line and `env`. */
  constructor(
    specs: readonly FlagSpec[],
    typed: ReadonlyMap<string, TypedValue>,
    env: Readonly<Record<string, string>>,
  ) {
    this.#typed = typed;
    for (const spec of specs) {
      this.#settings.set(longName(spec), effectiveSetting(spec, typed, env));
    }
  }

  #setting(name: string): Setting {
    const found = this.#settings.get(name);
    if (!found) throw new PusherError("internal", `unknown flag --${name}`);
    return found;
  }

  /** A string value; undefined when unset or empty. */
  text(name: string): string | undefined {
    const value = this.#setting(name).value;
    return typeof value === "string" && value !== "" ? value : undefined;
  }

  /** Whether a boolean flag is on. */
  flag(name: string): boolean {
    return this.#setting(name).value === true;
  }

  /** A repeatable flag's values (empty when unset). */
  list(name: string): string[] {
    const value = this.#setting(name).value;
    return Array.isArray(value) ? value : [];
  }

  /** A whole number, or `fallback` when unset; a usage error names the flag or variable. */
  number(name: string, fallback: number): number {
    const setting = this.#setting(name);
    if (typeof setting.value !== "string") return fallback;
    return parseWholeNumber(setting.label, setting.value, setting.spec.min ?? 0);
  }

  /** How messages name the flag: its long form, or the variable that gave its value. */
  label(name: string): string {
    return this.#setting(name).label;
  }

  /** Whether the flag was typed on the command line (not taken from the environment). */
  fromCommandLine(name: string): boolean {
    return this.#typed.has(name);
  }

  /** A usage error for two flags that exclude each other. */
  together(first: string, second: string): PusherError {
    return new PusherError(
      "usage",
      `${this.label(first)} and ${this.label(second)} cannot be used together`,
    );
  }
}
