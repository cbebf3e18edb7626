/**
 * Manifests a registry refuses for their shape, not their content, and what to do about it:
 * Huawei SWR refuses every OCI media type (`400 Invalid image, fail to parse 'manifest.json'`),
 * Aliyun ACR's personal edition refuses BuildKit attestation manifests (`400 unknown manifest
 * class for …`). {@link refusalOf} recognises them; {@link decideOnRefusal} is the pure table of
 * what comes next: push again in another shape, or fail with a hint.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import type { ManifestFormat } from "../options.ts";
import { RegistryError } from "../registry/errors.ts";
import type { ManifestShape } from "./manifest_shape.ts";

/** Why a registry refused a manifest: its OCI media types, or it is an attestation manifest. */
export type Refusal = "oci-media-types" | "attestation-manifest";

/** The registry's words for each refusal (the body is JSON or plain text; both end up here). */
const SWR_OCI_REFUSAL = /fail to parse 'manifest\.json'/i;
const ACR_CLASS_REFUSAL = /unknown manifest class/i;

/**
 * The refusal a failed manifest `PUT` (of a manifest of `mediaType`) shows, or undefined for any
 * other failure. A 415 to an OCI manifest counts as refusing OCI media types too.
 */
export function refusalOf(error: unknown, mediaType: string): Refusal | undefined {
  if (!(error instanceof RegistryError)) return undefined;
  if (error.status !== 400 && error.status !== 415) return undefined;
  if (ACR_CLASS_REFUSAL.test(error.message)) return "attestation-manifest";
  const oci = mediaType.startsWith("application/vnd.oci.");
  if (oci && (error.status === 415 || SWR_OCI_REFUSAL.test(error.message))) {
    return "oci-media-types";
  }
  return undefined;
}

/** A manifest `PUT` refused for the manifest's shape; {@link decideOnRefusal} says what next. */
export class ManifestRefused extends PusherError {
  /** Why. */
  readonly refusal: Refusal;
  /** Digest of the refused manifest. */
  readonly digest: string;
  /** The registry's answer. */
  readonly answer: RegistryError;

  /** Wraps the registry's answer to the `PUT` of the manifest `digest`. */
  constructor(refusal: Refusal, digest: string, answer: RegistryError) {
    super("registry", answer.message, {
      cause: answer,
      hint: refusal === "oci-media-types"
        ? "push with --format docker"
        : "push with --attestations drop",
    });
    this.name = "ManifestRefused";
    this.refusal = refusal;
    this.digest = digest;
    this.answer = answer;
  }
}

/** What to do after a refusal: push the manifests again in a new shape, or fail. */
export type RefusalDecision =
  | { action: "retry"; shape: ManifestShape }
  | { action: "fail"; error: PusherError };

/**
 * Decides what follows a refused manifest, given the shape that was refused, the `--format` the
 * user asked for and how many attestation manifests that shape pushed:
 *
 * | refusal              | situation                         | decision                          |
 * | -------------------- | --------------------------------- | --------------------------------- |
 * | oci-media-types      | `--format oci`                    | fail: suggest `--format docker`   |
 * | oci-media-types      | already Docker                    | fail with the registry's answer   |
 * | oci-media-types      | otherwise                         | retry as Docker, no attestations  |
 * | attestation-manifest | attestations already left out, or none pushed | fail with the answer  |
 * | attestation-manifest | otherwise                         | retry without attestations        |
 */
export function decideOnRefusal(
  refused: ManifestRefused,
  shape: ManifestShape,
  format: ManifestFormat,
  attestationsPushed: number,
): RefusalDecision {
  if (refused.refusal === "oci-media-types") {
    if (format === "oci") {
      return {
        action: "fail",
        error: new PusherError(
          "registry",
          `${refused.answer.message}: the registry refuses OCI media types, and --format oci keeps them`,
          { cause: refused.answer, hint: "push with --format docker" },
        ),
      };
    }
    if (shape.family === "docker") return { action: "fail", error: refused.answer };
    return { action: "retry", shape: { family: "docker", dropAttestations: true } };
  }
  if (shape.dropAttestations || attestationsPushed === 0) {
    return { action: "fail", error: refused.answer };
  }
  return { action: "retry", shape: { ...shape, dropAttestations: true } };
}
