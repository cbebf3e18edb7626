/**
 * The images of a multi-image archive and where each goes under a prefix: every name the archive
 * gives an image (`RepoTags`, `io.containerd.image.name`, a `ref.name` holding a whole reference)
 * becomes `PREFIX/<repository path>:<tag>` (see `lib/sync/target_name.ts`), so an image with two
 * names lands under both. An image without a name that holds a repository cannot be placed: it
 * is reported as a failure naming its digest, and the others still go. Two images landing on one
 * target are refused before anything is pushed.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { familiarName } from "../image/image_select.ts";
import type { LayoutImage } from "../image/layout_choice.ts";
import type { ImageSelection } from "../image/types.ts";
import { formatReference, parseReference } from "../registry/reference.ts";
import { mirrorTarget, type TargetNaming } from "../sync/target_name.ts";

/** One image of the archive, placed under the prefix (or why it can't be). */
export interface BundleImage {
  /** 1-based place in the archive's own listing. */
  number: number;
  /** How messages show it: its first name, or its digest. */
  label: string;
  /** What push's `image` option takes to choose it: its manifest or config digest, or a name. */
  selector: string;
  /** Target references, the first being where its blobs go; empty when it can't be placed. */
  targets: string[];
  /** What a push of it pushes; absent when the archive can't give it. */
  selection?: ImageSelection;
  /** Why it can't be pushed. */
  problem?: PusherError;
}

/** The digest an image can be chosen by: its index or manifest, else its config's. */
function digestOf(listed: LayoutImage): string | undefined {
  if (listed.descriptor !== undefined) return listed.descriptor.digest;
  if (listed.resolved instanceof PusherError) return undefined;
  return listed.resolved.images[0]?.config.digest;
}

/** The names that hold a repository, parsed; bare tags (`v1`) and junk are passed over. */
function repositoryNames(names: readonly string[]) {
  return names.flatMap((name) => {
    if (!/[/:@]/.test(name)) return [];
    try {
      return [parseReference(name)];
    } catch {
      return [];
    }
  });
}

/** Places one listed image under the prefix. */
function place(listed: LayoutImage, number: number, naming: TargetNaming): BundleImage {
  const digest = digestOf(listed);
  const label = listed.names[0] !== undefined
    ? familiarName(listed.names[0])
    : digest ?? `image ${number}`;
  const image: BundleImage = {
    number,
    label,
    selector: digest ?? listed.names[0] ?? "",
    targets: [],
  };
  if (listed.resolved instanceof PusherError) {
    image.problem = listed.resolved;
    return image;
  }
  image.selection = listed.resolved;
  const references = repositoryNames(listed.names);
  if (references.length === 0) {
    image.problem = new PusherError(
      "usage",
      `the image ${digest ?? label} has no name with a repository in the archive${
        listed.names.length > 0 ? ` (only ${listed.names.join(", ")})` : ""
      }, so push --all cannot name its target`,
      {
        hint: `push it on its own: push -f FILE --image ${digest ?? label} -r REGISTRY/REPO:TAG`,
      },
    );
    return image;
  }
  const targets = references.map((reference) => mirrorTarget(reference, naming));
  image.targets = [...new Set(targets)];
  return image;
}

/**
 * Places every image the archive lists under the prefix.
 *
 * @throws {PusherError} kind `usage` when two images would land on the same target (with
 * `flatten`, `a/app:1` and `b/app:1` do).
 */
export function placeImages(listed: readonly LayoutImage[], naming: TargetNaming): BundleImage[] {
  const images = listed.map((image, index) => place(image, index + 1, naming));
  const owners = new Map<string, BundleImage>();
  for (const image of images) {
    for (const target of image.targets) {
      const key = formatReference(parseReference(target));
      const owner = owners.get(key);
      if (owner !== undefined && owner !== image) {
        throw new PusherError(
          "usage",
          `${owner.label} and ${image.label} would both be pushed to ${target}`,
          {
            hint: naming.flatten
              ? "their repositories end alike: push without --flatten, or push one on its own"
              : "give every image its own name:tag",
          },
        );
      }
      owners.set(key, image);
    }
  }
  return images;
}
