/** Which registries are known to refuse uploads in chunks. */

import assert from "node:assert/strict";
import { takesChunkedUploads } from "../../lib/registry/quirks.ts";

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
