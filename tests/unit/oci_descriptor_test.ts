import assert from "node:assert/strict";
import { isBlobRef } from "../../lib/oci/descriptor.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

Deno.test("blob ref: a stored blob reference is accepted only when every field is valid", () => {
  assert.equal(isBlobRef({ digest: DIGEST, size: 0, compression: "none" }), true);
  assert.equal(isBlobRef({ digest: DIGEST, size: 123, compression: "zstd", extra: 1 }), true);
  const invalid: unknown[] = [
    null,
    "sha256:ab",
    { digest: DIGEST, size: 1 },
    { digest: DIGEST, size: 1, compression: "xz" },
    { digest: DIGEST, size: -1, compression: "gzip" },
    { digest: DIGEST, size: 1.5, compression: "gzip" },
    { digest: DIGEST, size: "1", compression: "gzip" },
    { digest: `sha512:${"ab".repeat(64)}`, size: 1, compression: "gzip" },
    { digest: DIGEST.toUpperCase(), size: 1, compression: "gzip" },
  ];
  for (const value of invalid) assert.equal(isBlobRef(value), false, JSON.stringify(value));
});
