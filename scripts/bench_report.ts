/**
 * The pure half of the benchmark: statistics over timed samples, number formatting, target checks
 * and the markdown tables `deno task bench` prints.
 *
 * @module
 */

/** One timed run of a command. */
export interface Sample {
  /** Wall time, process start to exit. */
  seconds: number;
  /** Peak resident set size in bytes (0 when unknown). */
  peakRss: number;
  /** User + system CPU time of the process. */
  cpuSeconds: number;
  /** CPU time the registry spent meanwhile. */
  registryCpuSeconds: number;
  /** Bytes the process (and its children) wrote to storage (0 when unknown). */
  writtenBytes: number;
}

/** Median, minimum and maximum of some numbers. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  count: number;
}

/** The median of `values` (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle] as number
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Median, min, max and count of `values`. */
export function summarize(values: readonly number[]): Summary {
  return {
    median: median(values),
    min: values.length > 0 ? Math.min(...values) : Number.NaN,
    max: values.length > 0 ? Math.max(...values) : Number.NaN,
    count: values.length,
  };
}

/** Seconds for a table: `0.13 s`, `4.52 s`, `12.3 s`; `–` when unknown. */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "–";
  return seconds >= 10 ? `${seconds.toFixed(1)} s` : `${seconds.toFixed(2)} s`;
}

/** A median with its spread when there is more than one sample: `4.52 s (4.40–4.71)`. */
export function formatSummary(summary: Summary): string {
  const main = formatSeconds(summary.median);
  if (summary.count < 2 || !Number.isFinite(summary.median)) return main;
  const digits = summary.max >= 10 ? 1 : 2;
  return `${main} (${summary.min.toFixed(digits)}–${summary.max.toFixed(digits)})`;
}

/** `ours / theirs` as `0.62×`; `–` when either is unknown or `theirs` is 0. */
export function formatRatio(ours: number, theirs: number): string {
  const ratio = ours / theirs;
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "–";
}

/** Bytes in decimal units: `518 MB`, `1.02 GB`, `10 kB`, `155 B`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "–";
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(bytes >= 1e8 ? 0 : 1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} kB`;
  return `${bytes} B`;
}

/** A goal a row is checked against. */
export type Target =
  | { kind: "ratio"; max: number }
  | { kind: "seconds"; max: number }
  | { kind: "bytes"; max: number };

/** How a target reads in the table: `≤ 0.6×`, `≤ 0.5 s`, `≤ 150 MB`. */
export function formatTarget(target: Target): string {
  switch (target.kind) {
    case "ratio":
      return `≤ ${target.max}×`;
    case "seconds":
      return `≤ ${target.max} s`;
    case "bytes":
      return `≤ ${formatBytes(target.max)}`;
  }
}

/** Whether `value` (a ratio, seconds or bytes, as the target says) meets `target`. */
export function meets(target: Target, value: number): boolean {
  return Number.isFinite(value) && value <= target.max;
}

/** A markdown table; cells are used as they are (pipes escaped). */
export function markdownTable(headers: readonly string[], rows: readonly string[][]): string {
  const escape = (cell: string): string => cell.replaceAll("|", "\\|");
  const line = (cells: readonly string[]): string => `| ${cells.map(escape).join(" | ")} |`;
  return [line(headers), line(headers.map(() => "---")), ...rows.map(line)].join("\n");
}

/** One scenario of the results table. */
export interface ScenarioRow {
  /** What was timed. */
  label: string;
  /** Our samples. */
  ours: readonly Sample[];
  /** skopeo's samples for the same scenario, if it was timed. */
  skopeo?: readonly Sample[];
  /** The goal; ratios compare our median with skopeo's. */
  target?: Target;
}

/** Headers of {@link scenarioTable}. */
export const SCENARIO_HEADERS: readonly string[] = [
  "scenario",
  "ours",
  "skopeo",
  "ours / skopeo",
  "target",
  "met",
  "ours peak RSS",
  "skopeo peak RSS",
];

/** The value a target checks for a row: the time ratio, or our median time. */
function checkedValue(row: ScenarioRow): number {
  const ours = median(row.ours.map((sample) => sample.seconds));
  if (row.target?.kind === "ratio") {
    return ours / median((row.skopeo ?? []).map((sample) => sample.seconds));
  }
  return ours;
}

/** The peak of the peak RSS samples, formatted; `–` when none was measured. */
function peakRss(samples: readonly Sample[] | undefined): string {
  const peaks = (samples ?? []).map((sample) => sample.peakRss).filter((rss) => rss > 0);
  return peaks.length > 0 ? formatBytes(Math.max(...peaks)) : "–";
}

/** The results table: medians (with min–max), ratio, target, whether it was met, peak RSS. */
export function scenarioTable(rows: readonly ScenarioRow[]): string {
  return markdownTable(
    SCENARIO_HEADERS,
    rows.map((row) => {
      const ours = summarize(row.ours.map((sample) => sample.seconds));
      const skopeo = row.skopeo ? summarize(row.skopeo.map((sample) => sample.seconds)) : undefined;
      return [
        row.label,
        formatSummary(ours),
        skopeo ? formatSummary(skopeo) : "–",
        skopeo ? formatRatio(ours.median, skopeo.median) : "–",
        row.target ? formatTarget(row.target) : "–",
        row.target ? (meets(row.target, checkedValue(row)) ? "yes" : "**no**") : "–",
        peakRss(row.ours),
        peakRss(row.skopeo),
      ];
    }),
  );
}

/** Peak RSS against a byte target, for the memory table. */
export function rssVerdict(samples: readonly Sample[], target: Target): string {
  const peaks = samples.map((sample) => sample.peakRss).filter((rss) => rss > 0);
  if (peaks.length === 0) return "–";
  return meets(target, Math.max(...peaks)) ? "yes" : "**no**";
}
