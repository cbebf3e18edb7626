/**
 * Splits one command's part of the command line into flag values and operands, by the flag table
 * of {@link ./flags.ts}: `--name value`, `--name=value`, `-x value`, `-xvalue`, booleans without
 * a value, repeatable lists, `--` before operands that look like flags, and `-h`/`--help`. A flag
 * that takes a value takes the next word whatever it looks like (a password may start with `-`).
 * Our own few lines instead of a parsing library: loading one (and the `node:` modules it pulls
 * in) cost every run more CPU time than a whole sync of unchanged images spends on its requests.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { type FlagSpec, longName } from "./flags.ts";

/** A flag's value as typed: text, the words of a repeated flag, or `true` for a boolean. */
export type TypedValue = string | string[] | true;

/** What one command's words gave. */
export interface ParsedWords {
  /** The flags typed, by long name (`max-concurrent`). */
  values: Map<string, TypedValue>;
  /** The words that are not flags, in order. */
  operands: string[];
  /** `-h` or `--help` was given. */
  help: boolean;
  /** `--version` was given (only where `version` is allowed). */
  version: boolean;
  /** The words after the first operand, left unread when `stopAtOperand` was set. */
  rest: string[];
}

/** How {@link parseWords} reads. */
export interface ParseSettings {
  /** Stop at the first operand and leave it and what follows in `rest` (a subcommand's name). */
  stopAtOperand?: boolean;
  /** Accept `--version`. */
  version?: boolean;
}

/** A flag's short form (`-f`), if it has one. */
export function shortName(spec: FlagSpec): string | undefined {
  return spec.flags.match(/^-(\w),/)?.[1];
}

/** Whether a flag takes a value (its table text names one, `<path>`). */
export function takesValue(spec: FlagSpec): boolean {
  return spec.flags.includes("<");
}

/** A usage error that points at the help. */
export function usageError(message: string): PusherError {
  return new PusherError("usage", message, { hint: "run with --help to see the flags" });
}

/** Records one flag's value: a list grows, anything else keeps the last one given. */
function record(values: Map<string, TypedValue>, spec: FlagSpec, value: string | true): void {
  const long = longName(spec);
  if (spec.kind === "list" && typeof value === "string") {
    const earlier = values.get(long);
    values.set(long, [...(Array.isArray(earlier) ? earlier : []), value]);
    return;
  }
  values.set(long, value);
}

/** Whether `-h` or `--help` comes among `words` before a `--`. */
function asksForHelp(words: readonly string[]): boolean {
  const end = words.indexOf("--");
  return (end < 0 ? words : words.slice(0, end)).some((word) => word === "-h" || word === "--help");
}

/**
 * Reads `words` against `specs`. A help request wins over a mistake in the other words: the
 * result then only says `help`.
 *
 * @throws {PusherError} kind `usage` for an unknown flag, a missing value, or a value given to a
 * flag that takes none.
 */
export function parseWords(
  words: readonly string[],
  specs: readonly FlagSpec[],
  settings: ParseSettings = {},
): ParsedWords {
  try {
    return readWords(words, specs, settings);
  } catch (error) {
    if (!asksForHelp(words)) throw error;
    return { values: new Map(), operands: [], help: true, version: false, rest: [] };
  }
}

/** {@link parseWords} without the help rule. */
function readWords(
  words: readonly string[],
  specs: readonly FlagSpec[],
  settings: ParseSettings,
): ParsedWords {
  const byLong = new Map(specs.map((spec) => [longName(spec), spec]));
  const byShort = new Map<string, FlagSpec>();
  for (const spec of specs) {
    const short = shortName(spec);
    if (short !== undefined) byShort.set(short, spec);
  }
  const parsed: ParsedWords = {
    values: new Map(),
    operands: [],
    help: false,
    version: false,
    rest: [],
  };
  for (let index = 0; index < words.length; index++) {
    const word = words[index] as string;
    const valueAfter = (spec: FlagSpec): string => {
      const next = words[index + 1];
      if (next === undefined) throw usageError(`option '${spec.flags}' argument missing`);
      index++;
      return next;
    };
    if (word === "--") {
      const after = words.slice(index + 1);
      if (settings.stopAtOperand && after.length > 0) parsed.rest = after;
      else parsed.operands.push(...after);
      break;
    }
    if (word === "-h" || word === "--help") {
      parsed.help = true;
      continue;
    }
    if (word === "--version" && settings.version) {
      parsed.version = true;
      continue;
    }
    if (word.startsWith("--")) {
      const equals = word.indexOf("=");
      const name = word.slice(2, equals < 0 ? undefined : equals);
      const spec = byLong.get(name);
      if (spec === undefined || (equals >= 0 && !takesValue(spec))) {
        throw usageError(`unknown option '${word}'`);
      }
      if (!takesValue(spec)) record(parsed.values, spec, true);
      else record(parsed.values, spec, equals >= 0 ? word.slice(equals + 1) : valueAfter(spec));
      continue;
    }
    if (word.startsWith("-") && word.length > 1) {
      const spec = byShort.get(word.charAt(1));
      if (spec === undefined || (word.length > 2 && !takesValue(spec))) {
        throw usageError(`unknown option '${word}'`);
      }
      if (!takesValue(spec)) record(parsed.values, spec, true);
      else record(parsed.values, spec, word.length > 2 ? word.slice(2) : valueAfter(spec));
      continue;
    }
    if (settings.stopAtOperand) {
      parsed.rest = words.slice(index);
      break;
    }
    parsed.operands.push(word);
  }
  return parsed;
}
