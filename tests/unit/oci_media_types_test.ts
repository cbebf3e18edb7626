import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import {
  configMediaType,
  familyOf,
  indexMediaType,
  isTarLayerType,
  layerCompression,
  layerMediaType,
  MANIFEST_ACCEPT,
  manifestMediaType,
} from "../../lib/oci/media_types.ts";

// The strings are spelled out here, not taken from the table, so a typo there fails a test.
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

Deno.test("media types: each family names its manifest, index, config and layer types", () => {
  assert.equal(manifestMediaType("oci"), OCI_MANIFEST);
  assert.equal(manifestMediaType("docker"), DOCKER_MANIFEST);
  assert.equal(indexMediaType("oci"), OCI_INDEX);
  assert.equal(indexMediaType("docker"), DOCKER_LIST);
  assert.equal(configMediaType("oci"), "application/vnd.oci.image.config.v1+json");
  assert.equal(configMediaType("docker"), "application/vnd.docker.container.image.v1+json");
  assert.equal(layerMediaType("oci", "none"), "application/vnd.oci.image.layer.v1.tar");
  assert.equal(layerMediaType("oci", "gzip"), "application/vnd.oci.image.layer.v1.tar+gzip");
  assert.equal(layerMediaType("oci", "zstd"), "application/vnd.oci.image.layer.v1.tar+zstd");
  assert.equal(
    layerMediaType("docker", "gzip"),
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
  );
  for (const compression of ["none", "zstd"] as const) {
    assert.throws(
      () => layerMediaType("docker", compression),
      (error: unknown) => error instanceof PusherError && error.kind === "internal",
    );
  }
});

Deno.test("media types: familyOf tells Docker manifests and lists from OCI ones", () => {
  assert.equal(familyOf(DOCKER_MANIFEST), "docker");
  assert.equal(familyOf(DOCKER_LIST), "docker");
  assert.equal(familyOf(OCI_MANIFEST), "oci");
  assert.equal(familyOf(OCI_INDEX), "oci");
  for (const family of ["docker", "oci"] as const) {
    assert.equal(familyOf(manifestMediaType(family)), family);
    assert.equal(familyOf(indexMediaType(family)), family);
  }
});

Deno.test("media types: the compression every layer type declares", () => {
  const cases: Array<[string, string | undefined]> = [
    ["application/vnd.oci.image.layer.v1.tar", "none"],
    ["application/vnd.oci.image.layer.v1.tar+gzip", "gzip"],
    ["application/vnd.oci.image.layer.v1.tar+zstd", "zstd"],
    ["application/vnd.oci.image.layer.nondistributable.v1.tar", "none"],
    ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"],
    ["application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "zstd"],
    ["application/vnd.docker.image.rootfs.diff.tar", "none"],
    ["application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"],
    ["application/vnd.docker.image.rootfs.diff.tar.zstd", "zstd"],
    ["application/vnd.docker.image.rootfs.foreign.diff.tar", "none"],
    ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "gzip"],
  ];
  for (const [mediaType, compression] of cases) {
    assert.equal(layerCompression(mediaType), compression, mediaType);
    assert.equal(isTarLayerType(mediaType), true, mediaType);
  }
  // Artifact blobs: JSON documents are uncompressed but not tar layers.
  assert.equal(layerCompression("application/vnd.in-toto+json"), "none");
  assert.equal(isTarLayerType("application/vnd.in-toto+json"), false);
  assert.equal(layerCompression("application/vnd.oci.image.layer.v1.tar+lz4"), undefined);
  assert.equal(isTarLayerType("application/octet-stream"), false);
});

Deno.test("media types: a manifest lookup accepts every manifest and index type", () => {
  assert.deepEqual(
    MANIFEST_ACCEPT.split(", ").sort(),
    [DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST].sort(),
  );
});
