/**
 * The name an image archive gives its image (`RepoTags`, the containerd image name, or an OCI
 * `ref.name` that holds a whole `name:tag`), read with the archive readers of lib/image: a plain
 * tar file through its index, a compressed one in one streaming pass (its layers are read past,
 * not kept). `sync` names the target of an archive line with it when the line names none.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { readArchiveEntries } from "../image/archive_listing.ts";
import { resolveLayout } from "../image/layout.ts";
import { parseReference, type Reference } from "../registry/reference.ts";

/**
 * The image's first name that is a whole reference (`app:v1`, `docker.io/library/app:v1`), parsed;
 * a bare tag (an OCI `ref.name` of `v1`) names no repository and is passed over.
 *
 * @throws {PusherError} kind `usage` when the archive holds several images or names none with a
 * repository; `input` when it can't be read.
 */
export async function archiveImageName(path: string): Promise<Reference> {
  const view = await readArchiveEntries(path);
  const selection = await resolveLayout(view, {});
  const names = selection.images.flatMap((image) => image.names);
  for (const name of names) {
    if (!/[/:]/.test(name)) continue;
    try {
      return parseReference(name);
    } catch {
      // not a reference; try the next name
    }
  }
  throw new PusherError(
    "usage",
    `${path} names no repository for its image${
      names.length > 0 ? ` (only ${names.join(", ")})` : ""
    }: write the target with "=> TARGET"`,
  );
}
