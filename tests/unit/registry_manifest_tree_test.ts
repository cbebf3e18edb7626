/**
 * The manifest tree of a source image, read with a fake source: children before the index, every
 * blob once, foreign layers apart, nested indexes walked, `--platform` on an index (a new index,
 * dropped children never read) and on a single image (its config checked, bytes verified).
 */

import assert from "node:assert/strict";
import { sha256Digest } from "../../lib/bytes/sha256.ts";
import { PusherError } from "../../lib/errors.ts";
import type { RawDocument } from "../../lib/oci/descriptor.ts";
import { parsePlatform } from "../../lib/oci/platform.ts";
import { type ManifestSource, readManifestTree } from "../../lib/registry/manifest_tree.ts";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const encoder = new TextEncoder();

function digestOf(text: string): string {
  return sha256Digest(encoder.encode(text));
}

function document(value: unknown, mediaType: string): RawDocument {
  const bytes = encoder.encode(JSON.stringify(value, null, 2));
  return { bytes, digest: sha256Digest(bytes), mediaType };
}

/** An image manifest and its config (for `platform`, linux/amd64 by default). */
function image(
  name: string,
  layers: string[],
  options: { foreign?: string[]; platform?: string } = {},
): { manifest: RawDocument; config: Uint8Array } {
  const [os, architecture] = (options.platform ?? "linux/amd64").split("/");
  const config = encoder.encode(JSON.stringify({ name, os, architecture }));
  const manifest = document({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: sha256Digest(config),
      size: config.length,
    },
    layers: [
      ...layers.map((layer) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: digestOf(layer),
        size: layer.length,
      })),
      ...(options.foreign ?? []).map((layer) => ({
        mediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        digest: digestOf(layer),
        size: 5,
        urls: ["https://example.com/x"],
      })),
    ],
  }, OCI_MANIFEST);
  return { manifest, config };
}

function entry(manifest: RawDocument, platform?: string): unknown {
  const [os, architecture, variant] = platform?.split("/") ?? [];
  return {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.bytes.byteLength,
    ...(platform === undefined
      ? {}
      : { platform: { os, architecture, ...(variant ? { variant } : {}) } }),
  };
}

/** A source holding `documents` by digest and `tags` by name, and `configs` as blobs. */
function fakeSource(
  documents: RawDocument[],
  tags: Record<string, RawDocument>,
  configs: Uint8Array[] = [],
): ManifestSource & { asked: string[] } {
  const byDigest = new Map(documents.map((doc) => [doc.digest, doc]));
  const blobs = new Map(configs.map((bytes) => [sha256Digest(bytes), bytes]));
  const asked: string[] = [];
  return {
    label: "registry.test/app:v1",
    asked,
    manifest: (reference) => {
      asked.push(reference);
      const found = tags[reference] ?? byDigest.get(reference);
      if (found === undefined) return Promise.reject(new Error(`no manifest ${reference}`));
      return Promise.resolve(found);
    },
    blob: (digest) => {
      asked.push(digest);
      const found = blobs.get(digest);
      return found === undefined
        ? Promise.reject(new Error(`no blob ${digest}`))
        : Promise.resolve(found);
    },
  };
}

Deno.test("manifest tree: children before the index, blobs once, foreign layers apart, nested indexes walked", async () => {
  const amd = image("amd", ["shared", "amd-only"], { foreign: ["windows-base"] });
  const arm = image("arm", ["shared", "arm-only"], { platform: "linux/arm64" });
  const nested = document({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [entry(arm.manifest, "linux/arm64")],
  }, OCI_INDEX);
  const top = document({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      entry(amd.manifest, "linux/amd64"),
      { mediaType: OCI_INDEX, digest: nested.digest, size: nested.bytes.byteLength },
    ],
  }, OCI_INDEX);
  const source = fakeSource([amd.manifest, arm.manifest, nested], { v1: top });
  const tree = await readManifestTree(source, "v1", []);
  assert.equal(tree.sourceDigest, top.digest);
  assert.equal(tree.top, top);
  assert.equal(tree.filtered, false);
  assert.deepEqual(tree.entries.map((child) => child.digest), [amd.manifest.digest, nested.digest]);
  assert.deepEqual(tree.children.map((child) => child.digest), [
    amd.manifest.digest,
    arm.manifest.digest,
    nested.digest,
  ]);
  assert.deepEqual(tree.blobs.map((blob) => [blob.digest, blob.role]), [
    [digestOf("shared"), "layer"],
    [digestOf("amd-only"), "layer"],
    [sha256Digest(amd.config), "config"],
    [digestOf("arm-only"), "layer"],
    [sha256Digest(arm.config), "config"],
  ]);
  assert.deepEqual(tree.foreignLayers, [digestOf("windows-base")]);
  assert.ok(!source.asked.some((asked) => asked === sha256Digest(amd.config)), "no config read");
});

Deno.test("manifest tree: a filtered index is new (its digest is of its own bytes); dropped children are not read", async () => {
  const amd = image("amd", ["a"]);
  const arm = image("arm", ["b"], { platform: "linux/arm64" });
  const top = document({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [entry(amd.manifest, "linux/amd64"), entry(arm.manifest, "linux/arm64/v8")],
  }, OCI_INDEX);
  const source = fakeSource([amd.manifest, arm.manifest], { v1: top });
  const tree = await readManifestTree(source, "v1", [parsePlatform("linux/arm64")]);
  assert.equal(tree.filtered, true);
  assert.notEqual(tree.top.digest, top.digest);
  assert.equal(tree.top.digest, sha256Digest(tree.top.bytes));
  assert.equal(tree.top.mediaType, OCI_INDEX);
  assert.deepEqual(tree.entries.map((child) => child.digest), [arm.manifest.digest]);
  assert.deepEqual(tree.children.map((child) => child.digest), [arm.manifest.digest]);
  assert.deepEqual(source.asked, ["v1", arm.manifest.digest]);
});

Deno.test("manifest tree: --platform on a single image checks its config's platform", async () => {
  const amd = image("amd", ["a"]);
  const source = () => fakeSource([amd.manifest], { v1: amd.manifest }, [amd.config]);
  const tree = await readManifestTree(source(), "v1", [parsePlatform("linux/amd64")]);
  assert.equal(tree.top, amd.manifest);
  assert.deepEqual(tree.entries, []);
  await assert.rejects(
    readManifestTree(source(), "v1", [parsePlatform("linux/arm64")]),
    (error) =>
      error instanceof PusherError && error.kind === "usage" &&
      error.message ===
        "registry.test/app:v1 is a single-platform image for linux/amd64, not linux/arm64",
  );
});

Deno.test("manifest tree: a config whose bytes are not its digest is a verify error", async () => {
  const amd = image("amd", ["a"]);
  const other = encoder.encode(JSON.stringify({ os: "linux", architecture: "amd64", x: 1 }));
  const source = fakeSource([amd.manifest], { v1: amd.manifest });
  source.blob = () => Promise.resolve(other);
  await assert.rejects(
    readManifestTree(source, "v1", [parsePlatform("linux/amd64")]),
    (error) => error instanceof PusherError && error.kind === "verify",
  );
});
