/**
 * A pass-through stream that observes the bytes flowing by: their sha256 digest and count. It
 * copies no chunk; it forwards the chunk object it received.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { PusherError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";

/** Options of a {@link DigestStream}. */
export interface DigestStreamOptions {
  /**
   * Runs once the input ends, before the stream closes; throwing errors the stream instead of
   * closing it (so a consumer such as an upload fails rather than completes).
   */
  check?: (result: Pick<Descriptor, "digest" | "size">) => void;
}

/**
 * Throws a verify error when `actual` differs from `expected`; `what` names the bytes
 * (e.g. `layer blobs/sha256/ab…`).
 */
export function verifyDigest(what: string, expected: string, actual: string): void {
  if (expected === actual) return;
  throw new PusherError(
    "verify",
    `${what}: expected digest ${expected} but the bytes hash to ${actual}`,
    {
      hint: "the archive is corrupt or was changed after it was written",
    },
  );
}

/** A pass-through stream computing the sha256 digest and byte count of everything it forwards. */
export class DigestStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Settles when the input ends: the digest and size, or the error that ended the stream. */
  readonly result: Promise<Pick<Descriptor, "digest" | "size">>;

  /** Creates a digesting stream; see {@link DigestStreamOptions.check} for verification. */
  constructor(options: DigestStreamOptions = {}) {
    const hash = createHash("sha256");
    let size = 0;
    let settle!: (result: Pick<Descriptor, "digest" | "size">) => void;
    let fail!: (error: unknown) => void;
    const result = new Promise<Pick<Descriptor, "digest" | "size">>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    // Marked handled here; the rejection still reaches whoever awaits `result`.
    result.catch(() => {});
    super({
      transform(chunk, controller): void {
        hash.update(chunk);
        size += chunk.byteLength;
        controller.enqueue(chunk);
      },
      flush(): void {
        const done: Pick<Descriptor, "digest" | "size"> = {
          digest: `sha256:${hash.digest("hex")}`,
          size,
        };
        try {
          options.check?.(done);
        } catch (error) {
          fail(error);
          throw error;
        }
        settle(done);
      },
      cancel(reason): void {
        fail(reason);
      },
    });
    this.result = result;
  }
}
