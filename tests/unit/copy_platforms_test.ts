/**
 * `--platform` parsing and matching, index filtering (attestations follow their image; an index
 * that keeps everything keeps its bytes), and the manifest walk of a copy with a fake source.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PusherError } from "../../lib/errors.ts";
import { readImageTree, type TreeReader } from "../../lib/copy/manifest_tree.ts";
import { filterIndex, parsePlatform, platformMatches } from "../../lib/copy/platforms.ts";
import type { FetchedManifest } from "../../lib/registry/client.ts";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function digestOf(text: string): string {
  return sha256(new TextEncoder().encode(text));
}

function document(value: unknown, mediaType: string): FetchedManifest {
  const bytes = new TextEncoder().encode(JSON.stringify(value, null, 2));
  return { bytes, digest: sha256(bytes), mediaType };
}

function image(name: string, layers: string[], foreign: string[] = []): FetchedManifest {
  return document({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: digestOf(`${name}-config`),
      size: 10,
    },
    layers: [
      ...layers.map((layer) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: digestOf(layer),
        size: layer.length,
      })),
      ...foreign.map((layer) => ({
        mediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        digest: digestOf(layer),
        size: 5,
        urls: ["https://example.com/x"],
      })),
    ],
  }, OCI_MANIFEST);
}

function entry(manifest: FetchedManifest, platform?: string, attestationOf?: string): unknown {
  const [os, architecture, variant] = platform?.split("/") ?? [];
  return {
    mediaType: OCI_MANIFEST,
    digest: manifest.digest,
    size: manifest.bytes.byteLength,
    ...(platform === undefined
      ? {}
      : { platform: { os, architecture, ...(variant ? { variant } : {}) } }),
    ...(attestationOf === undefined ? {} : {
      annotations: {
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": attestationOf,
      },
    }),
  };
}

function fakeSource(
  documents: FetchedManifest[],
  tags: Record<string, FetchedManifest> = {},
): TreeReader & { asked: string[] } {
  const byDigest = new Map(documents.map((doc) => [doc.digest, doc]));
  const asked: string[] = [];
  return {
    asked,
    manifest: (reference) => {
      asked.push(reference);
      const found = tags[reference] ?? byDigest.get(reference);
      if (found === undefined) return Promise.reject(new Error(`no manifest ${reference}`));
      return Promise.resolve(found);
    },
    blob: () =>
      Promise.resolve(
        new TextEncoder().encode(JSON.stringify({ os: "linux", architecture: "amd64" })),
      ),
  };
}

Deno.test("parsePlatform: OS/ARCH[/VARIANT], lower-cased; anything else is a usage error", () => {
  assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("Linux/ARM64/v8"), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  for (const bad of ["linux", "linux/", "a/b/c/d", "linux/am d64", ""]) {
    assert.throws(
      () => parsePlatform(bad),
      (error) => error instanceof PusherError && error.kind === "usage",
      bad,
    );
  }
});

Deno.test("platformMatches: default variants and architecture aliases, variants otherwise exact", () => {
  const p = parsePlatform;
  assert.ok(
    platformMatches(p("linux/arm64"), { os: "linux", architecture: "arm64", variant: "v8" }),
  );
  assert.ok(platformMatches(p("linux/arm64/v8"), { os: "linux", architecture: "arm64" }));
  assert.ok(platformMatches(p("linux/arm"), { os: "linux", architecture: "arm", variant: "v7" }));
  assert.ok(!platformMatches(p("linux/arm"), { os: "linux", architecture: "arm", variant: "v6" }));
  assert.ok(platformMatches(p("linux/x86_64"), { os: "linux", architecture: "amd64" }));
  assert.ok(!platformMatches(p("linux/amd64"), { os: "windows", architecture: "amd64" }));
  assert.ok(!platformMatches(p("linux/amd64/v3"), { os: "linux", architecture: "amd64" }));
});

Deno.test("filterIndex: keeps matching children and their attestations; all kept means the same bytes", () => {
  const amd = image("amd", ["a"]);
  const arm = image("arm", ["b"]);
  const att = image("att", ["c"]);
  const index = document({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    annotations: { keep: "me" },
    manifests: [
      entry(amd, "linux/amd64"),
      entry(arm, "linux/arm64/v8"),
      entry(att, "unknown/unknown", amd.digest),
    ],
  }, OCI_INDEX);
  const json = JSON.parse(new TextDecoder().decode(index.bytes));

  const whole = filterIndex(index.bytes, json, [], "index");
  assert.equal(whole.changed, false);
  assert.equal(whole.bytes, index.bytes);
  assert.deepEqual(whole.children, [amd.digest, arm.digest, att.digest]);

  const amdOnly = filterIndex(index.bytes, json, [parsePlatform("linux/amd64")], "index");
  assert.equal(amdOnly.changed, true);
  assert.deepEqual(amdOnly.children, [amd.digest, att.digest]);
  const rewritten = JSON.parse(new TextDecoder().decode(amdOnly.bytes));
  assert.equal(rewritten.annotations.keep, "me");
  assert.deepEqual(rewritten.manifests, [json.manifests[0], json.manifests[2]]);

  const armOnly = filterIndex(index.bytes, json, [parsePlatform("linux/arm64")], "index");
  assert.deepEqual(armOnly.children, [arm.digest]);

  const both = filterIndex(index.bytes, json, [
    parsePlatform("linux/arm64"),
    parsePlatform("linux/amd64"),
  ], "index");
  assert.equal(both.changed, false);
  assert.equal(both.bytes, index.bytes);

  assert.throws(
    () => filterIndex(index.bytes, json, [parsePlatform("linux/s390x")], "index"),
    (error) =>
      error instanceof PusherError && error.kind === "input" &&
      /linux\/amd64, linux\/arm64\/v8/.test(error.hint ?? ""),
  );
});

Deno.test("readImageTree: children before the index, blobs once, foreign layers left out, nested indexes walked", async () => {
  const amd = image("amd", ["shared", "amd-only"], ["windows-base"]);
  const arm = image("arm", ["shared", "arm-only"]);
  const nested = document({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [entry(arm, "linux/arm64")],
  }, OCI_INDEX);
  const top = document({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      entry(amd, "linux/amd64"),
      { mediaType: OCI_INDEX, digest: nested.digest, size: nested.bytes.byteLength },
    ],
  }, OCI_INDEX);
  const source = fakeSource([amd, arm, nested], { v1: top });
  const tree = await readImageTree(source, "v1", []);
  assert.equal(tree.sourceDigest, top.digest);
  assert.equal(tree.top, top);
  assert.equal(tree.filtered, false);
  assert.deepEqual(tree.children.map((child) => child.digest), [
    amd.digest,
    arm.digest,
    nested.digest,
  ]);
  assert.deepEqual(tree.blobs.map((blob) => blob.digest), [
    digestOf("shared"),
    digestOf("amd-only"),
    digestOf("amd-config"),
    digestOf("arm-only"),
    digestOf("arm-config"),
  ]);
  assert.deepEqual(tree.blobs.map((blob) => blob.role), [
    "layer",
    "layer",
    "config",
    "layer",
    "config",
  ]);
  assert.deepEqual(tree.foreignLayers, [digestOf("windows-base")]);
});

Deno.test("readImageTree: a filtered index is new (its digest is of its own bytes); dropped children are not read", async () => {
  const amd = image("amd", ["a"]);
  const arm = image("arm", ["b"]);
  const top = document({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [entry(amd, "linux/amd64"), entry(arm, "linux/arm64")],
  }, OCI_INDEX);
  const source = fakeSource([amd, arm], { v1: top });
  const tree = await readImageTree(source, "v1", [parsePlatform("linux/arm64")]);
  assert.equal(tree.filtered, true);
  assert.notEqual(tree.top.digest, top.digest);
  assert.equal(tree.top.digest, sha256(tree.top.bytes));
  assert.equal(tree.top.mediaType, OCI_INDEX);
  assert.deepEqual(tree.children.map((child) => child.digest), [arm.digest]);
  assert.deepEqual(source.asked, ["v1", arm.digest]);
});

Deno.test("readImageTree: --platform on a single image checks its config's platform", async () => {
  const amd = image("amd", ["a"]);
  const tree = await readImageTree(fakeSource([amd], { v1: amd }), "v1", [
    parsePlatform("linux/amd64"),
  ]);
  assert.equal(tree.top, amd);
  await assert.rejects(
    readImageTree(fakeSource([amd], { v1: amd }), "v1", [parsePlatform("linux/arm64")]),
    (error) =>
      error instanceof PusherError && error.kind === "input" &&
      error.message.includes("linux/amd64 only"),
  );
});
