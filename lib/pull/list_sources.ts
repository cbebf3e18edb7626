/**
 * The images a pull fetches: the SOURCE arguments (with `--platform`), then the lines of a LIST
 * (`pull --from LIST`, the sync list format read by `lib/sync/list_file.ts`). A line's own
 * `--platform=` options apply to it; a line without them takes `--platform`. A pull reads
 * registries only, so a line naming an archive or a `=> TARGET` is refused with its place.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { isArchivePath, parseListText } from "../sync/list_file.ts";

/** One image to pull. */
export interface PullSource {
  /** The reference as written. */
  reference: string;
  /** `OS/ARCH[/VARIANT]` to keep; empty keeps every platform. */
  platforms: string[];
  /** Where it was named, for messages: `images.txt:7`; absent for a SOURCE argument. */
  location?: string;
}

/**
 * The sources of a pull, arguments first, then the LIST's lines in order.
 *
 * @throws {PusherError} kind `input` when the LIST can't be read; `usage` naming the line for a
 * syntax error, an archive path or a `=> TARGET`, or when there is nothing to pull.
 */
export async function pullSources(
  sources: readonly string[],
  platforms: readonly string[],
  listPath: string | undefined,
): Promise<PullSource[]> {
  const all: PullSource[] = sources.map((reference) => ({
    reference,
    platforms: [...platforms],
  }));
  if (listPath !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(listPath);
    } catch (error) {
      throw new PusherError(
        "input",
        `cannot read the list ${listPath}: ${(error as Error).message}`,
      );
    }
    for (const entry of parseListText(text, listPath)) {
      const location = `${listPath}:${entry.line}`;
      if (isArchivePath(entry.source)) {
        throw new PusherError(
          "usage",
          `${location}: ${entry.source} is an archive; pull --from reads registry sources only`,
        );
      }
      if (entry.target !== undefined) {
        throw new PusherError(
          "usage",
          `${location}: "=> ${entry.target}" names a target; a pull writes every image under ` +
            "its source name (push --all -r PREFIX names the targets)",
        );
      }
      all.push({
        reference: entry.source,
        platforms: entry.platforms.length > 0 ? entry.platforms : [...platforms],
        location,
      });
    }
  }
  if (all.length === 0) {
    throw new PusherError("usage", "no image to pull", {
      hint: "name at least one SOURCE, or a list with --from",
    });
  }
  return all;
}
