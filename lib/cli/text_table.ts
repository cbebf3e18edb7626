/**
 * Aligned plain-text tables for the commands that print one (`ls`, `sync`): columns padded to
 * their widest cell, three spaces apart, no trailing blanks.
 *
 * @module
 */

/** The width of each column: its widest cell, heading included. */
export function columnWidths(
  headings: readonly string[],
  rows: readonly (readonly string[])[],
): number[] {
  return headings.map((heading, column) =>
    Math.max(heading.length, ...rows.map((row) => row[column]?.length ?? 0))
  );
}

/** One row with its cells padded to `widths`, ending in `\n`. */
export function alignedRow(row: readonly string[], widths: readonly number[]): string {
  return row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("   ").trimEnd() + "\n";
}
