/**
 * The one stream that checks bytes against a digest as they flow by: a pass-through that
 * computes their digest and count, and, given the descriptor the bytes should match, errors with
 * a `verify` {@link PusherError} as soon as they disagree (more bytes than the size at once;
 * fewer bytes or another digest when the input ends). It copies no chunk; it forwards the chunk
 * object it received.
 *
 * @module
 */

import { digestAlgorithm, Hasher } from "../bytes/sha256.ts";
import { PusherError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";

/** What the bytes should be, for a {@link DigestStream} that checks them. */
export interface ExpectedBytes extends Pick<Descriptor, "digest" | "size"> {
  /** Names the bytes in messages (e.g. `blob sha256:ab…`). */
  what: string;
  /** What the user could try when the bytes differ. */
  hint: string;
}

/** Options of a {@link DigestStream}. */
export interface DigestStreamOptions {
  /** The digest and size the bytes must have; any difference errors the stream. */
  expected?: ExpectedBytes;
  /**
   * Runs once the input ends, before the stream closes; throwing errors the stream instead of
   * closing it (so a consumer such as an upload fails rather than completes).
   */
  check?: (result: Pick<Descriptor, "digest" | "size">) => void;
}

const ARCHIVE_HINT = "the archive is corrupt or was changed after it was written";

/**
 * Throws a verify error when `actual` differs from `expected`; `what` names the bytes
 * (e.g. `layer blobs/sha256/ab…`), `hint` what to try (by default: re-create the archive).
 */
export function verifyDigest(
  what: string,
  expected: string,
  actual: string,
  hint: string = ARCHIVE_HINT,
): void {
  if (expected === actual) return;
  throw new PusherError(
    "verify",
    `${what}: expected digest ${expected} but the bytes hash to ${actual}`,
    { hint },
  );
}

/** Throws a verify error when `size` bytes cannot be the `expected` ones by their count. */
function verifySize(expected: ExpectedBytes, size: number, ended: boolean): void {
  if (size > expected.size) {
    throw new PusherError(
      "verify",
      `${expected.what} has more than the ${expected.size} bytes its descriptor gives`,
      { hint: expected.hint },
    );
  }
  if (ended && size < expected.size) {
    throw new PusherError(
      "verify",
      `${expected.what} ended after ${size} of the ${expected.size} bytes its descriptor gives`,
      { hint: expected.hint },
    );
  }
}

/** A pass-through stream computing the digest and byte count of everything it forwards. */
export class DigestStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Settles when the input ends: the digest and size, or the error that ended the stream. */
  readonly result: Promise<Pick<Descriptor, "digest" | "size">>;

  /**
   * Creates a digesting stream (sha256, or the algorithm of the expected digest); see
   * {@link DigestStreamOptions} for verification.
   */
  constructor(options: DigestStreamOptions = {}) {
    const { expected } = options;
    const hasher = new Hasher(expected === undefined ? "sha256" : digestAlgorithm(expected.digest));
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
        size += chunk.byteLength;
        try {
          if (expected !== undefined) verifySize(expected, size, false);
        } catch (error) {
          fail(error);
          throw error;
        }
        hasher.update(chunk);
        controller.enqueue(chunk);
      },
      flush(): void {
        const done: Pick<Descriptor, "digest" | "size"> = { digest: hasher.digest(), size };
        try {
          if (expected !== undefined) {
            verifySize(expected, size, true);
            verifyDigest(expected.what, expected.digest, done.digest, expected.hint);
          }
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

/**
 * `bytes` passed through unchanged but erroring with a `verify` {@link PusherError} as soon as
 * they disagree with `blob`'s size or digest; `what` names the bytes in messages.
 */
export function checkedBlobStream(
  blob: Pick<Descriptor, "digest" | "size">,
  bytes: ReadableStream<Uint8Array>,
  what: string,
): ReadableStream<Uint8Array> {
  const hint = "the source served different bytes than the manifest describes";
  return bytes.pipeThrough(new DigestStream({ expected: { ...blob, what, hint } }));
}
