/**
 * Tells an archive's layout from its entries and resolves what to push: OCI metadata
 * (`index.json`) when present, docker's `manifest.json` otherwise. Lists every image it holds
 * the same way, for `ls`.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { listDockerLayout, resolveDockerLayout } from "./layout_docker.ts";
import { listOciLayout, resolveOciLayout } from "./layout_oci.ts";
import type { LayoutImage, LayoutOptions } from "./layout_choice.ts";
import type { EntryView, ImageSelection } from "./types.ts";

export type { LayoutImage, LayoutOptions } from "./layout_choice.ts";

/** Why an archive with neither usable `index.json` nor `manifest.json` is no image archive. */
function notAnImageArchive(view: EntryView): PusherError {
  if (view.has("repositories")) {
    return new PusherError(
      "input",
      "the archive has a repositories file but no manifest.json: a docker save from before " +
        "Docker 1.10, which this tool does not read",
      { hint: "docker load it, then docker save it again with a current docker" },
    );
  }
  return new PusherError(
    "input",
    "the archive has neither manifest.json nor index.json, so it is not an image archive",
    { hint: "expected the output of docker save, skopeo/podman copy, or buildx --output type=oci" },
  );
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
  throw notAnImageArchive(view);
}

/**
 * Every image an archive holds, in the order its metadata lists them, each resolved as a push
 * choosing it would resolve it (an image that push would refuse carries the error). Throws what
 * {@link resolveLayout} throws when the archive's metadata as a whole is unusable.
 */
export async function listLayout(view: EntryView): Promise<LayoutImage[]> {
  if (view.has("index.json")) {
    const listed = await listOciLayout(view);
    if (listed !== undefined) return listed;
  }
  if (view.has("manifest.json")) return await listDockerLayout(view);
  throw notAnImageArchive(view);
}
