/**
 * Lays out a `--help` text: the usage line, the description, then aligned tables of arguments,
 * options and commands whose descriptions wrap at 80 columns under their own column.
 *
 * @module
 */

/** The width help text is wrapped to. */
const HELP_WIDTH = 80;
/** Spaces before each table row. */
const INDENT = 2;
/** Spaces between a term and its description. */
const SPACER = 2;
/** Below this many columns for descriptions, they are not wrapped at all. */
const MIN_WRAP_WIDTH = 40;

/** One row of a help table: a term (`-f, --file <path>`) and what it means. */
export interface HelpRow {
  /** The flag, argument or command as it is typed. */
  term: string;
  /** What it does. */
  description: string;
}

/** What a help text shows. */
export interface HelpPage {
  /** After `Usage: `. */
  usage: string;
  /** One paragraph. */
  description: string;
  /** The operands, if the command takes any. */
  arguments: readonly HelpRow[];
  /** The flags. */
  options: readonly HelpRow[];
  /** The subcommands, on the main help only. */
  commands: readonly HelpRow[];
}

/** `text` as lines of at most `width` columns, broken between words. */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((part) => part !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** A table under `title`, its descriptions starting in one column. */
function table(title: string, rows: readonly HelpRow[], termWidth: number): string {
  const column = INDENT + termWidth + SPACER;
  const descriptionWidth = HELP_WIDTH - column;
  const lines = rows.map((row) => {
    const description = descriptionWidth < MIN_WRAP_WIDTH
      ? [row.description]
      : wrapText(row.description, descriptionWidth);
    const head = `${" ".repeat(INDENT)}${row.term.padEnd(termWidth + SPACER)}${
      description[0] ?? ""
    }`;
    return [head.trimEnd(), ...description.slice(1).map((part) => " ".repeat(column) + part)]
      .join("\n");
  });
  return `${title}:\n${lines.join("\n")}\n`;
}

/** The help text of `page`, ending in a newline. */
export function formatHelp(page: HelpPage): string {
  const sections = [
    `Usage: ${page.usage}\n`,
    `${wrapText(page.description, HELP_WIDTH).join("\n")}\n`,
  ];
  const termWidth = Math.max(
    0,
    ...[...page.arguments, ...page.options, ...page.commands].map((row) => row.term.length),
  );
  if (page.arguments.length > 0) sections.push(table("Arguments", page.arguments, termWidth));
  if (page.options.length > 0) sections.push(table("Options", page.options, termWidth));
  if (page.commands.length > 0) sections.push(table("Commands", page.commands, termWidth));
  return sections.join("\n");
}
