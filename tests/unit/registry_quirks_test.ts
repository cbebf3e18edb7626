/** Which registries are known to refuse uploads in chunks, and which chunk sizes some insist on. */

import assert from "node:assert/strict";
import { knownChunkLimits, takesChunkedUploads } from "../../lib/registry/quirks.ts";

Deno.test("quirks: Artifact Registry and gcr.io take no chunks; other registries may", () => {
  for (
    const host of ["us-docker.pkg.dev", "europe-west1-docker.pkg.dev:443", "gcr.io", "EU.GCR.IO"]
  ) {
    assert.equal(takesChunkedUploads(host), false, host);
  }
  for (const host of ["ghcr.io", "registry-1.docker.io", "127.0.0.1:5000", "pkg.dev.example.com"]) {
    assert.equal(takesChunkedUploads(host), true, host);
  }
});

Deno.test("quirks: ECR wants chunks of 5 MiB or more, GHCR takes at most 4 MiB, others say", () => {
  const MiB = 1024 * 1024;
  const cases: ReadonlyArray<[string, ReturnType<typeof knownChunkLimits>]> = [
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com", { min: 5 * MiB }],
    ["123456789012.DKR.ECR.eu-central-1.amazonaws.com:443", { min: 5 * MiB }],
    ["123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", { min: 5 * MiB }],
    ["ghcr.io", { max: 4 * MiB }],
    ["ghcr.io:443", { max: 4 * MiB }],
    ["public.ecr.aws", {}],
    ["registry-1.docker.io", {}],
    ["dkr.ecr.us-east-1.amazonaws.com.example.com", {}],
    ["127.0.0.1:5000", {}],
  ];
  for (const [host, limits] of cases) assert.deepEqual(knownChunkLimits(host), limits, host);
});
