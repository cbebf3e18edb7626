import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import type { ArchiveImage, ImageSelection, RawDocument } from "../../lib/image/types.ts";
import { sha256Digest } from "../../lib/bytes/sha256.ts";
import type { BlobRef } from "../../lib/oci/descriptor.ts";
import { buildImageManifest, buildIndex } from "../../lib/push/manifest_builder.ts";
import { planManifests } from "../../lib/push/publish.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
const ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd";
const FOREIGN_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
const REFERENCE_TYPE = "vnd.docker.reference.type";
const REFERENCE_DIGEST = "vnd.docker.reference.digest";

function document(value: unknown, mediaType: string): RawDocument {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return { bytes, digest: sha256Digest(bytes), mediaType };
}

function parse(bytes: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(bytes));
}

const digest = (seed: string): string => sha256Digest(new TextEncoder().encode(seed));

/** An OCI image with a zstd layer and a non-distributable gzip layer (with `urls`). */
function ociImage(architecture: string): ArchiveImage {
  const config = document(
    { architecture, os: "linux", rootfs: { diff_ids: ["a", "b"] } },
    OCI_CONFIG,
  );
  const layers = [
    { mediaType: ZSTD_LAYER, digest: digest(`${architecture} zstd`), size: 10 },
    {
      mediaType: FOREIGN_LAYER,
      digest: digest(`${architecture} foreign`),
      size: 20,
      urls: ["https://example.com/base.tar.gz"],
      annotations: { "org.example": "x" },
    },
  ];
  const manifest = document({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
    layers,
    annotations: { "org.opencontainers.image.created": "2024" },
  }, OCI_MANIFEST);
  return {
    names: [],
    platform: { os: "linux", architecture },
    config,
    layers: layers.map((layer, index) => ({
      entry: `${architecture}/${index}`,
      size: layer.size,
      storedDigest: layer.digest,
      compression: index === 0 ? "zstd" : "gzip",
      mediaType: layer.mediaType,
    })),
    sourceManifest: manifest,
  };
}

/** A BuildKit attestation manifest for `subject`. */
function attestation(subject: string): ArchiveImage {
  const statement = digest(`statement of ${subject}`);
  const config = document({
    architecture: "unknown",
    os: "unknown",
    rootfs: { diff_ids: [statement] },
  }, OCI_CONFIG);
  const manifest = document({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
    layers: [{ mediaType: "application/vnd.in-toto+json", digest: statement, size: 5 }],
  }, OCI_MANIFEST);
  return {
    names: [],
    platform: { os: "unknown", architecture: "unknown" },
    config,
    layers: [{
      entry: `statement ${subject}`,
      size: 5,
      storedDigest: statement,
      compression: "none",
      mediaType: "application/vnd.in-toto+json",
    }],
    sourceManifest: manifest,
  };
}

/** Two platforms and an attestation of the first, under an OCI index as BuildKit writes it. */
function buildkitSelection(): ImageSelection {
  const amd = ociImage("amd64");
  const arm = ociImage("arm64");
  const amdDigest = amd.sourceManifest?.digest ?? "";
  const att = attestation(amdDigest);
  const entry = (image: ArchiveImage, annotations?: Record<string, string>) => ({
    mediaType: OCI_MANIFEST,
    digest: image.sourceManifest?.digest,
    size: image.sourceManifest?.bytes.length,
    platform: image.platform,
    ...(annotations ? { annotations } : {}),
  });
  const index = document({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      entry(amd),
      entry(arm),
      entry(att, { [REFERENCE_TYPE]: "attestation-manifest", [REFERENCE_DIGEST]: amdDigest }),
    ],
    annotations: { "org.opencontainers.image.source": "fixture" },
  }, OCI_INDEX);
  return { family: "oci", images: [amd, arm, att], index, skippedPlatforms: [], warnings: [] };
}

/** What the layers became when pushed as they are, or (`gzip`) re-encoded to gzip. */
function outcomes(selection: ImageSelection, gzip: boolean): Map<string, BlobRef> {
  const pushed = new Map<string, BlobRef>();
  for (const image of selection.images) {
    for (const layer of image.layers) {
      const reencode = gzip && layer.compression === "zstd";
      pushed.set(layer.entry, {
        digest: reencode ? digest(`${layer.entry} gzip`) : layer.storedDigest ?? "",
        size: reencode ? 11 : layer.size,
        compression: reencode ? "gzip" : layer.compression,
      });
    }
  }
  return pushed;
}

function layersOf(image: ArchiveImage, pushed: Map<string, BlobRef>): BlobRef[] {
  return image.layers.map((layer) => pushed.get(layer.entry) as BlobRef);
}

Deno.test("manifests: an OCI image converted to Docker keeps only what schema 2 knows", () => {
  const selection = buildkitSelection();
  const image = selection.images[0] as ArchiveImage;
  const pushed = layersOf(image, outcomes(selection, true));
  const converted = buildImageManifest(image, "oci", pushed, "docker");
  assert.equal(converted.mediaType, DOCKER_MANIFEST);
  assert.equal(converted.sourceDigest, image.sourceManifest?.digest);
  assert.deepEqual(converted.platform, image.platform);
  assert.deepEqual(parse(converted.bytes), {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: {
      mediaType: DOCKER_CONFIG,
      digest: image.config.digest,
      size: image.config.bytes.length,
    },
    layers: [
      {
        mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
        digest: pushed[0]?.digest,
        size: 11,
      },
      {
        mediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        digest: pushed[1]?.digest,
        size: 20,
        urls: ["https://example.com/base.tar.gz"],
      },
    ],
  });
  // As-is, the unchanged OCI manifest goes up byte for byte.
  const asIs = buildImageManifest(image, "oci", layersOf(image, outcomes(selection, false)));
  assert.deepEqual(asIs.bytes, image.sourceManifest?.bytes);
});

Deno.test("manifests: Docker conversion refuses what Docker cannot carry", () => {
  const selection = buildkitSelection();
  const image = selection.images[0] as ArchiveImage;
  const zstd = layersOf(image, outcomes(selection, false));
  assert.throws(
    () => buildImageManifest(image, "oci", zstd, "docker"),
    (error: unknown) => error instanceof PusherError && error.kind === "internal",
  );
  const att = selection.images[2] as ArchiveImage;
  assert.throws(
    () => buildImageManifest(att, "oci", layersOf(att, outcomes(selection, true)), "docker"),
    (error: unknown) =>
      error instanceof PusherError && error.kind === "input" &&
      /in-toto\+json blob, which Docker media types cannot carry/.test(error.message) &&
      error.hint === "push it with --format oci",
  );
});

Deno.test("manifests: fewer pushed layers than the image has is an internal error", () => {
  const selection = buildkitSelection();
  const image = selection.images[0] as ArchiveImage;
  const pushed = layersOf(image, outcomes(selection, false)).slice(1);
  assert.throws(
    () => buildImageManifest(image, "oci", pushed),
    (error: unknown) =>
      error instanceof PusherError && error.kind === "internal" &&
      error.message === "image has 2 layers but 1 were pushed",
  );
});

Deno.test("manifests: a rebuilt OCI index keeps annotations and points attestations at new digests", () => {
  const selection = buildkitSelection();
  const pushed = outcomes(selection, false);
  const amd = selection.images[0] as ArchiveImage;
  // The amd64 manifest changes (its zstd layer went up as gzip), the others stay.
  pushed.set("amd64/0", { digest: digest("new"), size: 3, compression: "gzip" });
  const children = selection.images.map((image) =>
    buildImageManifest(image, "oci", layersOf(image, pushed))
  );
  assert.notEqual(children[0]?.digest, amd.sourceManifest?.digest);
  const index = buildIndex(selection, children);
  assert.equal(index.mediaType, OCI_INDEX);
  const parsed = parse(index.bytes) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
    annotations?: Record<string, string>;
  };
  assert.deepEqual(parsed.annotations, { "org.opencontainers.image.source": "fixture" });
  assert.deepEqual(parsed.manifests.map((entry) => entry.digest), children.map((c) => c.digest));
  assert.deepEqual(parsed.manifests[2]?.annotations, {
    [REFERENCE_TYPE]: "attestation-manifest",
    [REFERENCE_DIGEST]: children[0]?.digest,
  });
  // Unchanged children: the source index goes up as it is.
  const same = selection.images.map((image) =>
    buildImageManifest(image, "oci", layersOf(image, outcomes(selection, false)))
  );
  assert.equal(buildIndex(selection, same), selection.index);
});

Deno.test("manifests: the plan leaves attestations out as the shape says and counts them", () => {
  const selection = buildkitSelection();
  const kept = planManifests(selection, outcomes(selection, false));
  assert.equal(kept.children.length, 3);
  assert.equal(kept.attestations, 1);
  assert.equal(kept.droppedAttestations, 0);
  assert.equal(kept.top, selection.index);

  const dropped = planManifests(selection, outcomes(selection, false), {
    family: "as-is",
    dropAttestations: true,
  });
  assert.equal(dropped.children.length, 2);
  assert.equal(dropped.attestations, 0);
  assert.equal(dropped.droppedAttestations, 1);
  assert.equal(dropped.top.mediaType, OCI_INDEX);
  const entries = (parse(dropped.top.bytes) as { manifests: unknown[] }).manifests;
  assert.equal(entries.length, 2);

  const docker = planManifests(selection, outcomes(selection, true), {
    family: "docker",
    dropAttestations: true,
  });
  assert.equal(docker.top.mediaType, DOCKER_LIST);
  assert.deepEqual(docker.children.map((child) => child.mediaType), [
    DOCKER_MANIFEST,
    DOCKER_MANIFEST,
  ]);
  const list = parse(docker.top.bytes) as {
    manifests: Array<Record<string, unknown>>;
    annotations?: unknown;
  };
  assert.equal(list.annotations, undefined);
  assert.ok(list.manifests.every((entry) => entry["annotations"] === undefined));
  assert.deepEqual(list.manifests.map((entry) => entry["platform"]), [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64" },
  ]);
});

Deno.test("manifests: a Docker archive image becomes OCI when --format oci forces it", () => {
  const config = document(
    { architecture: "amd64", os: "linux", rootfs: { diff_ids: ["a"] } },
    DOCKER_CONFIG,
  );
  const image: ArchiveImage = {
    names: ["app:1"],
    config,
    layers: [{ entry: "abc/layer.tar", size: 30, compression: "none", diffId: digest("tar") }],
  };
  const pushed: BlobRef[] = [{ digest: digest("gz"), size: 12, compression: "gzip" }];
  assert.equal(buildImageManifest(image, "docker", pushed).mediaType, DOCKER_MANIFEST);
  const forced = buildImageManifest(image, "docker", pushed, "oci");
  assert.equal(forced.mediaType, OCI_MANIFEST);
  assert.deepEqual(parse(forced.bytes), {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: digest("gz"),
      size: 12,
    }],
  });
});
