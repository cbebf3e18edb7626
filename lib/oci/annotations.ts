/**
 * Annotation keys this tool reads from OCI indexes and manifests.
 *
 * @module
 */

/** The OCI reference name annotation (a tag, or a full reference). */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
/** The image name annotation containerd, buildx and docker write in `index.json`. */
export const CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name";
/** What a BuildKit index entry is: `attestation-manifest` for an attestation. */
export const DOCKER_REFERENCE_TYPE_ANNOTATION = "vnd.docker.reference.type";
/** The digest of the image manifest a BuildKit attestation describes. */
export const DOCKER_REFERENCE_DIGEST_ANNOTATION = "vnd.docker.reference.digest";
