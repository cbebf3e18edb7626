/**
 * The shape of the manifests a push writes: their media-type family (the archive's own, or one
 * forced on all of them) and whether BuildKit attestation manifests stay in the index. The shape
 * starts from `--format` and `--attestations` and changes when a registry refuses a manifest.
 *
 * @module
 */

import type { ImageSelection } from "../image/types.ts";
import type { PushOptions } from "../options.ts";
import type { FamilyChoice } from "./manifest_builder.ts";

/** How the manifests of a push are built. */
export interface ManifestShape {
  /** Each image's own family (`as-is`), or one forced on every manifest. */
  family: FamilyChoice;
  /** Leave attestation manifests out of the index (always so for Docker manifest lists). */
  dropAttestations: boolean;
}

/** The annotation BuildKit puts on an index entry to say what the entry is. */
const REFERENCE_TYPE_ANNOTATION = "vnd.docker.reference.type";
/** Its value for an attestation manifest. */
const ATTESTATION_MANIFEST = "attestation-manifest";

/** The shape `--format` and `--attestations` ask for before any registry said anything. */
export function initialShape(options: Pick<PushOptions, "format" | "attestations">): ManifestShape {
  const format = options.format ?? "auto";
  return {
    family: format === "auto" ? "as-is" : format,
    dropAttestations: format === "docker" || options.attestations === "drop",
  };
}

/** Digests of the manifests the selection's source index marks as attestation manifests. */
export function attestationDigests(selection: ImageSelection): Set<string> {
  const digests = new Set<string>();
  if (!selection.index) return digests;
  const parsed: unknown = JSON.parse(new TextDecoder().decode(selection.index.bytes));
  const manifests = typeof parsed === "object" && parsed !== null &&
      Array.isArray((parsed as Record<string, unknown>)["manifests"])
    ? (parsed as { manifests: unknown[] }).manifests
    : [];
  for (const entry of manifests) {
    if (typeof entry !== "object" || entry === null) continue;
    const { digest, annotations } = entry as { digest?: unknown; annotations?: unknown };
    const type = typeof annotations === "object" && annotations !== null
      ? (annotations as Record<string, unknown>)[REFERENCE_TYPE_ANNOTATION]
      : undefined;
    if (typeof digest === "string" && type === ATTESTATION_MANIFEST) digests.add(digest);
  }
  return digests;
}

/** The images a shape pushes, and how many attestation manifests it leaves out. */
export function shapedSelection(
  selection: ImageSelection,
  shape: ManifestShape,
): { selection: ImageSelection; dropped: number } {
  if (!shape.dropAttestations) return { selection, dropped: 0 };
  const attestations = attestationDigests(selection);
  const images = selection.images.filter((image) =>
    !attestations.has(image.sourceManifest?.digest ?? "")
  );
  return {
    selection: { ...selection, images },
    dropped: selection.images.length - images.length,
  };
}
