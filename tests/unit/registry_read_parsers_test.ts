import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PusherError } from "../../lib/errors.ts";
import { checkPartialAnswer, parseContentRange } from "../../lib/registry/blob_read.ts";
import { readManifestBody, verifiedManifestDigest } from "../../lib/registry/manifest_read.ts";
import { describeRateLimit, parseRateLimit } from "../../lib/registry/rate_limit.ts";
import { chunkedStream } from "../helpers/byte_streams.ts";

Deno.test("parseRateLimit reads Docker Hub's headers, with and without a window", () => {
  const cases: [Record<string, string>, ReturnType<typeof parseRateLimit>][] = [
    [{ "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600" }, {
      limit: 100,
      remaining: 76,
      windowSeconds: 21600,
    }],
    [{ "ratelimit-limit": "200", "ratelimit-remaining": "0" }, { limit: 200, remaining: 0 }],
    [{ "ratelimit-limit": "100;w=21600" }, undefined],
    [{ "ratelimit-limit": "lots", "ratelimit-remaining": "1" }, undefined],
    [{}, undefined],
  ];
  for (const [headers, expected] of cases) {
    assert.deepEqual(parseRateLimit(new Headers(headers)), expected, JSON.stringify(headers));
  }
  assert.equal(
    describeRateLimit({ limit: 100, remaining: 76, windowSeconds: 21600 }),
    "76/100 left per 21600 s",
  );
});

Deno.test("parseContentRange reads bytes first-last/total and rejects the rest", () => {
  assert.deepEqual(parseContentRange("bytes 100-199/200"), { first: 100, last: 199, total: 200 });
  assert.deepEqual(parseContentRange("bytes 5-9/*"), { first: 5, last: 9 });
  for (const bad of [null, "", "bytes */200", "100-199/200", "bytes 9-5/10", "items 1-2/3"]) {
    assert.equal(parseContentRange(bad), undefined, String(bad));
  }
});

Deno.test("checkPartialAnswer refuses a 206 that doesn't start at the offset asked for", () => {
  assert.deepEqual(checkPartialAnswer("bytes 10-19/20", 10, "GET"), {
    first: 10,
    last: 19,
    total: 20,
  });
  for (const header of ["bytes 0-19/20", null]) {
    assert.throws(
      () => checkPartialAnswer(header, 10, "GET"),
      (error) => error instanceof PusherError && error.kind === "registry",
    );
  }
});

Deno.test("verifiedManifestDigest checks the asked and the reported digest, sha512 included", () => {
  const bytes = new TextEncoder().encode('{"schemaVersion":2}');
  const sha256 = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const sha512 = `sha512:${createHash("sha512").update(bytes).digest("hex")}`;
  assert.equal(verifiedManifestDigest(bytes, "v1", null, "reading"), sha256);
  assert.equal(verifiedManifestDigest(bytes, sha256, sha256, "reading"), sha256);
  assert.equal(verifiedManifestDigest(bytes, "v1", sha512, "reading"), sha512);
  const other = `sha256:${"0".repeat(64)}`;
  for (const [reference, reported] of [[other, null], ["v1", other]] as const) {
    assert.throws(
      () => verifiedManifestDigest(bytes, reference, reported, "reading"),
      (error) => error instanceof PusherError && error.exitCode === 7,
    );
  }
});

Deno.test("readManifestBody refuses a body over 4 MiB", async () => {
  const big = new Uint8Array(4 * 1024 * 1024 + 1);
  await assert.rejects(
    readManifestBody(chunkedStream(big, 1024 * 1024), "reading"),
    (error) => error instanceof PusherError && /larger than/.test(error.message),
  );
  const small = new Uint8Array([1, 2, 3]);
  assert.deepEqual(await readManifestBody(chunkedStream(small, 2), "reading"), small);
});
