/**
 * The sha256 digest of bytes in memory, in the `sha256:<hex>` form registries and OCI documents
 * use. Streams are hashed by the byte pipeline's digest stream instead.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** `sha256:<hex>` of `bytes`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
