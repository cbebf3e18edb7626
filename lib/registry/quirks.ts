/**
 * What particular registries are known to do, where it can't be learnt from their answers in
 * time.
 *
 * @module
 */

const MiB = 1024 * 1024;

/** The host of a registry name, lower-case and without a port. */
function hostOf(registry: string): string {
  return registry.toLowerCase().replace(/:\d+$/, "");
}

/**
 * Whether a registry takes a blob in several PATCHes. Google Artifact Registry
 * (`<region>-docker.pkg.dev`, and the `gcr.io` hosts it serves) does not: Google's documentation
 * asks for monolithic uploads. Other registries that refuse chunks say so in their answer to one,
 * and the upload then goes on in one request.
 */
export function takesChunkedUploads(registry: string): boolean {
  const host = hostOf(registry);
  return !(host.endsWith(".pkg.dev") || host === "gcr.io" || host.endsWith(".gcr.io"));
}

/** Chunk sizes a registry is known to insist on, in bytes. */
export interface KnownChunkLimits {
  /** The smallest chunk it takes, except the last one. */
  min?: number;
  /** The largest request body it takes. */
  max?: number;
}

/**
 * The chunk sizes a registry host is known to insist on, beyond what it says in an
 * `OCI-Chunk-Min-Length` header: Amazon ECR (`<account>.dkr.ecr.<region>.amazonaws.com`, `.cn`
 * in China) refuses chunks under 5 MiB but the last; GitHub's registry (`ghcr.io`) refuses request
 * bodies over 4 MiB (with a 416 that says so).
 */
export function knownChunkLimits(registry: string): KnownChunkLimits {
  const host = hostOf(registry);
  if (/\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$/.test(host)) return { min: 5 * MiB };
  if (host === "ghcr.io") return { max: 4 * MiB };
  return {};
}
