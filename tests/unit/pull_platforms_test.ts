/**
 * `--platform` for a pull: parsing, keeping the wanted children of an index (with the
 * attestations that describe them) in a new index whose children keep their digests, keeping
 * the index byte for byte when nothing is dropped, and refusing a platform the index lacks.
 */

import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import {
  indexChildren,
  keepPlatforms,
  parsePlatform,
  platformMatches,
} from "../../lib/pull/platforms.ts";
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
  return { amd, arm, attestation, index };
}

Deno.test("parsePlatform reads OS/ARCH[/VARIANT] and refuses anything else as a usage error", () => {
  assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("linux/arm64/v8"), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  for (const bad of ["linux", "linux/", "a/b/c/d", "linux/amd 64", ""]) {
    assert.throws(() => parsePlatform(bad), (error) => {
      assert.ok(error instanceof PusherError);
      assert.equal(error.kind, "usage");
      return true;
    }, bad);
  }
});

Deno.test("a wanted platform without a variant matches any variant; with one, only that", () => {
  const arm = { os: "linux", architecture: "arm64", variant: "v8" };
  assert.ok(platformMatches({ os: "linux", architecture: "arm64" }, arm));
  assert.ok(platformMatches({ os: "linux", architecture: "arm64", variant: "v8" }, arm));
  assert.ok(!platformMatches({ os: "linux", architecture: "arm64", variant: "v7" }, arm));
  assert.ok(!platformMatches({ os: "linux", architecture: "amd64" }, arm));
  assert.ok(!platformMatches({ os: "linux", architecture: "amd64" }, undefined));
});

Deno.test("keeping one platform builds a new index: its children and their digests stay", () => {
  const { amd, attestation, index } = sampleIndex();
  const kept = keepPlatforms(index, [parsePlatform("linux/amd64")]);
  assert.equal(kept.rebuilt, true);
  assert.notEqual(kept.index.digest, index.digest);
  assert.equal(kept.index.mediaType, index.mediaType);
  assert.deepEqual(
    indexChildren(kept.index).map((child) => child.digest),
    [amd.manifest.digest, attestation.manifest.digest],
  );
  const json = JSON.parse(new TextDecoder().decode(kept.index.bytes));
  assert.deepEqual(json.annotations, { "org.example": "kept" });
  assert.equal(json.manifests.length, 2);
});

Deno.test("keeping every platform (or giving none) leaves the index byte for byte", () => {
  const { index } = sampleIndex();
  for (const wanted of [[], [parsePlatform("linux/amd64"), parsePlatform("linux/arm64")]]) {
    const kept = keepPlatforms(index, wanted);
    assert.equal(kept.rebuilt, false);
    assert.equal(kept.index, index);
    assert.equal(kept.children.length, 3);
  }
});

Deno.test("a platform the index lacks is a usage error listing what it has", () => {
  const { index } = sampleIndex();
  assert.throws(() => keepPlatforms(index, [parsePlatform("linux/s390x")]), (error) => {
    assert.ok(error instanceof PusherError);
    assert.equal(error.kind, "usage");
    assert.match(error.message, /linux\/amd64, linux\/arm64\/v8/);
    return true;
  });
});
