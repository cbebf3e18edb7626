/**
 * What particular registries are known to do, where it can't be learnt from their answers in
 * time.
 *
 * @module
 */

/**
 * Whether a registry takes a blob in several PATCHes. Google Artifact Registry
 * (`<region>-docker.pkg.dev`, and the `gcr.io` hosts it serves) does not: Google's documentation
 * asks for monolithic uploads. Other registries that refuse chunks say so in their answer to one,
 * and the upload then goes on in one request.
 */
export function takesChunkedUploads(registry: string): boolean {
  const host = registry.toLowerCase().replace(/:\d+$/, "");
  return !(host.endsWith(".pkg.dev") || host === "gcr.io" || host.endsWith(".gcr.io"));
}
