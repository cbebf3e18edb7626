/**
 * Logger set-up (LogTape): one sink, configured once at start-up, that redacts every line with the
 * run's {@link Redactor} and prints through the active display so log lines never garble the
 * progress lines.
 *
 * @module
 */

import {
  configure,
  getLogger,
  type Logger,
  type LogLevel,
  type LogRecord,
  reset,
} from "@logtape/logtape";
import type { Redactor } from "./redact.ts";

/** The root category of every logger of this tool. */
export const ROOT_CATEGORY = "docker-image-pusher";

/** A logger for one module, e.g. `moduleLogger("http")`. */
export function moduleLogger(name: string): Logger {
  return getLogger([ROOT_CATEGORY, name]);
}

function renderMessage(record: LogRecord): string {
  return record.message.map((part) => typeof part === "string" ? part : JSON.stringify(part)).join(
    "",
  );
}

/** Formats a record as one redacted line: `warning: …`, `error: …`, or the bare message. */
export function formatRecord(record: LogRecord, redactor: Redactor): string {
  const text = redactor.redact(renderMessage(record));
  if (record.level === "warning") return `warning: ${text}`;
  if (record.level === "error" || record.level === "fatal") return `error: ${text}`;
  return text;
}

/**
 * Configures LogTape for the process: `verbose` shows debug lines, `quiet` only errors.
 * `print` receives each finished line, already redacted by `redactor`.
 */
export async function setupLogging(
  settings: { verbose: boolean; quiet: boolean },
  print: (line: string) => void,
  redactor: Redactor,
): Promise<void> {
  const level: LogLevel = settings.quiet ? "error" : settings.verbose ? "debug" : "info";
  await configure({
    reset: true,
    sinks: { display: (record: LogRecord) => print(formatRecord(record, redactor)) },
    loggers: [
      { category: [ROOT_CATEGORY], lowestLevel: level, sinks: ["display"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["display"] },
    ],
  });
}

/** Removes the logging configuration (end of a run, tests). */
export async function teardownLogging(): Promise<void> {
  await reset();
}
