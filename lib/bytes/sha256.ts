/**
 * Digests of bytes in the `<algorithm>:<hex>` form registries and OCI documents use: of bytes in
 * memory at once ({@link sha256Digest}, {@link digestOf}) or of bytes that arrive piece by piece
 * ({@link Hasher}). sha256 is what this tool writes; sha512 is read because the OCI spec allows
 * it in references and descriptors a registry may serve.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";

/** The digest algorithms this tool computes. */
export type DigestAlgorithm = "sha256" | "sha512";

/** The algorithm of a digest such as `sha512:…`; sha256 for anything else. */
export function digestAlgorithm(digest: string): DigestAlgorithm {
  return digest.startsWith("sha512:") ? "sha512" : "sha256";
}

/** `<algorithm>:<hex>` of `bytes`. */
export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** `sha256:<hex>` of `bytes`. */
export function sha256Digest(bytes: Uint8Array): string {
  return digestOf(bytes, "sha256");
}

/** A running digest of bytes that arrive in pieces; it can be read at any point and go on. */
export class Hasher {
  /** The algorithm it computes. */
  readonly algorithm: DigestAlgorithm;
  #hash: Hash;

  /** A hasher that has seen no bytes yet. */
  constructor(algorithm: DigestAlgorithm = "sha256") {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  /** Adds `bytes` (a string counts as its UTF-8 bytes). */
  update(bytes: Uint8Array | string): this {
    this.#hash.update(bytes);
    return this;
  }

  /** `<algorithm>:<hex>` of every byte added so far; more may be added after. */
  digest(): string {
    return `${this.algorithm}:${this.#hash.copy().digest("hex")}`;
  }

  /** Forgets every byte added, as a new hasher. */
  reset(): void {
    this.#hash = createHash(this.algorithm);
  }
}
