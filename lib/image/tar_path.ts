/**
 * Archive-relative path handling: entry names are normalised to `a/b/c` form (no leading `./`,
 * no trailing `/`, no `.` or `..` segments), and names that would leave the archive are refused.
 *
 * @module
 */

/**
 * Normalises an entry name or an archive-relative path.
 *
 * Returns `""` for the archive root (`./`, `.`) and `undefined` when the name escapes the archive
 * (an absolute path, or `..` reaching above the top).
 */
export function normalizeEntryPath(name: string): string | undefined {
  if (name.startsWith("/")) return undefined;
  const parts: string[] = [];
  for (const segment of name.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (parts.length === 0) return undefined;
      parts.pop();
      continue;
    }
    parts.push(segment);
  }
  return parts.join("/");
}

/**
 * Resolves a symlink target against the directory holding the link, giving an archive-relative
 * path, or `undefined` when the target is absolute or leads out of the archive.
 */
export function resolveSymlinkTarget(linkPath: string, target: string): string | undefined {
  if (target.startsWith("/")) return undefined;
  const slash = linkPath.lastIndexOf("/");
  const directory = slash < 0 ? "" : linkPath.slice(0, slash);
  return normalizeEntryPath(directory === "" ? target : `${directory}/${target}`);
}
