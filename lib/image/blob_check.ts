/**
 * Checks a blob's bytes against its descriptor while they stream past: more bytes than the
 * descriptor's size fail at once (a tar header already promised the size), fewer bytes or a
 * different sha256 fail when the stream ends. Every failure is a `verify` error, so a damaged
 * download never ends as a complete-looking file or archive.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { PusherError } from "../errors.ts";
import type { BlobDescriptor } from "./archive_plan.ts";

/**
 * `bytes` passed through unchanged (chunk objects are forwarded, not copied) but erroring with a
 * `verify` {@link PusherError} as soon as they disagree with `blob`'s size or digest. `what`
 * names the bytes in messages (e.g. `layer sha256:ab…`).
 */
export function checkedBlobStream(
  blob: BlobDescriptor,
  bytes: ReadableStream<Uint8Array>,
  what: string,
): ReadableStream<Uint8Array> {
  const hash = createHash("sha256");
  let seen = 0;
  return bytes.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller): void {
        seen += chunk.byteLength;
        if (seen > blob.size) {
          throw new PusherError(
            "verify",
            `${what} has more than the ${blob.size} bytes its descriptor gives`,
            { hint: "the source served different bytes than the manifest describes" },
          );
        }
        hash.update(chunk);
        controller.enqueue(chunk);
      },
      flush(): void {
        if (seen < blob.size) {
          throw new PusherError(
            "verify",
            `${what} ended after ${seen} of the ${blob.size} bytes its descriptor gives`,
            { hint: "the download was cut short; try again" },
          );
        }
        const digest = `sha256:${hash.digest("hex")}`;
        if (digest !== blob.digest) {
          throw new PusherError(
            "verify",
            `${what}: expected digest ${blob.digest} but the bytes hash to ${digest}`,
            { hint: "the source served different bytes than the manifest describes" },
          );
        }
      },
    }),
  );
}
