/**
 * Keeping some platforms of an index: the matching children and the attestations that describe
 * them stay, in a new index with the other fields unchanged; keeping everything (or asking for
 * nothing) keeps the index byte for byte; a platform the index lacks is a usage error naming what
 * it has.
 */

import assert from "node:assert/strict";
import { sha256Digest } from "../../lib/bytes/sha256.ts";
import { PusherError } from "../../lib/errors.ts";
import { filterIndex, indexChildren } from "../../lib/oci/index_filter.ts";
import { parsePlatform } from "../../lib/oci/platform.ts";
import { buildImage, jsonDocument } from "../helpers/memory_images.ts";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

/** An index of amd64, arm64/v8 and an attestation describing amd64. */
function sampleIndex() {
  const amd = buildImage({ layers: 1, layerSize: 1024 });
  const arm = buildImage({
    layers: 1,
    layerSize: 1024,
    platform: { os: "linux", architecture: "arm64", variant: "v8" },
  });
  const attestation = buildImage({
    layers: 1,
    layerSize: 64,
    platform: { os: "unknown", architecture: "unknown" },
  });
  const entry = (image: typeof amd, extra: Record<string, unknown> = {}) => ({
    mediaType: image.manifest.mediaType,
    digest: image.manifest.digest,
    size: image.manifest.bytes.length,
    platform: image.platform,
    ...extra,
  });
  const index = jsonDocument({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      entry(amd),
      entry(arm),
      entry(attestation, {
        annotations: {
          "vnd.docker.reference.type": "attestation-manifest",
          "vnd.docker.reference.digest": amd.manifest.digest,
        },
      }),
    ],
    annotations: { "org.example": "kept" },
  }, OCI_INDEX);
  const json = JSON.parse(new TextDecoder().decode(index.bytes));
  return { amd, arm, attestation, index, json };
}

Deno.test("indexChildren reads digests, sizes, platforms and which image an attestation describes", () => {
  const { amd, arm, attestation, json } = sampleIndex();
  const children = indexChildren(json, "index");
  assert.deepEqual(children.map((child) => child.digest), [
    amd.manifest.digest,
    arm.manifest.digest,
    attestation.manifest.digest,
  ]);
  assert.deepEqual(children[1]?.platform, { os: "linux", architecture: "arm64", variant: "v8" });
  assert.equal(children[0]?.describes, undefined);
  assert.equal(children[2]?.describes, amd.manifest.digest);
  assert.throws(
    () => indexChildren({ manifests: [{ digest: amd.manifest.digest }] }, "index x"),
    (error) =>
      error instanceof PusherError && error.kind === "input" &&
      /index x entry 1/.test(error.message),
  );
});

Deno.test("keeping one platform builds a new index: its children (and their attestations) keep their digests", () => {
  const { amd, arm, attestation, index, json } = sampleIndex();
  const kept = filterIndex(index, json, [parsePlatform("linux/amd64")]);
  assert.equal(kept.rebuilt, true);
  assert.notEqual(kept.index.digest, index.digest);
  assert.equal(kept.index.digest, sha256Digest(kept.index.bytes));
  assert.equal(kept.index.mediaType, index.mediaType);
  assert.deepEqual(kept.children.map((child) => child.digest), [
    amd.manifest.digest,
    attestation.manifest.digest,
  ]);
  const rewritten = JSON.parse(new TextDecoder().decode(kept.index.bytes));
  assert.deepEqual(rewritten.annotations, { "org.example": "kept" });
  assert.deepEqual(rewritten.manifests, [json.manifests[0], json.manifests[2]]);

  const armOnly = filterIndex(index, json, [parsePlatform("linux/arm64")]);
  assert.deepEqual(armOnly.children.map((child) => child.digest), [arm.manifest.digest]);
});

Deno.test("keeping every platform (or giving none) leaves the index byte for byte", () => {
  const { index, json } = sampleIndex();
  for (const wanted of [[], [parsePlatform("linux/amd64"), parsePlatform("linux/arm64")]]) {
    const kept = filterIndex(index, json, wanted);
    assert.equal(kept.rebuilt, false);
    assert.equal(kept.index, index);
    assert.equal(kept.children.length, 3);
  }
});

Deno.test("a platform the index lacks is a usage error listing what it has, also next to one it has", () => {
  const { index, json } = sampleIndex();
  for (const wanted of [["linux/s390x"], ["linux/amd64", "linux/s390x"]]) {
    assert.throws(() => filterIndex(index, json, wanted.map(parsePlatform)), (error) => {
      assert.ok(error instanceof PusherError);
      assert.equal(error.kind, "usage");
      assert.match(
        error.message,
        /no image for linux\/s390x \(it has linux\/amd64, linux\/arm64\/v8\)/,
      );
      return true;
    });
  }
});
