/**
 * Tells an archive's layout from its entries and resolves what to push: OCI metadata
 * (`index.json`) when present, docker's `manifest.json` otherwise.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { resolveDockerLayout } from "./layout_docker.ts";
import { resolveOciLayout } from "./layout_oci.ts";
import type { EntryView, ImageSelection } from "./types.ts";

/** Options of {@link resolveLayout}. */
export interface LayoutOptions {
  /** Which image of a multi-image archive (`name:tag`, a bare tag, or a digest). */
  image?: string | undefined;
}

/**
 * Resolves the image (or multi-platform index) to push from an archive's entries. Works for
 * docker save (before and since v25, and from the containerd store), skopeo/podman
 * docker-archive and OCI layout archives. Throws a usage error when the archive holds several
 * images and `options.image` does not pick one, input errors for malformed or incomplete
 * metadata, and verify errors when a document's bytes do not match its digest.
 */
export async function resolveLayout(
  view: EntryView,
  options: LayoutOptions = {},
): Promise<ImageSelection> {
  if (view.has("index.json")) {
    const selection = await resolveOciLayout(view, options);
    if (selection !== undefined) return selection;
  }
  if (view.has("manifest.json")) return await resolveDockerLayout(view, options);
  if (view.has("repositories")) {
    throw new PusherError(
      "input",
      "the archive has a repositories file but no manifest.json: a docker save from before " +
        "Docker 1.10, which this tool does not read",
      { hint: "docker load it, then docker save it again with a current docker" },
    );
  }
  throw new PusherError(
    "input",
    "the archive has neither manifest.json nor index.json, so it is not an image archive",
    { hint: "expected the output of docker save, skopeo/podman copy, or buildx --output type=oci" },
  );
}
