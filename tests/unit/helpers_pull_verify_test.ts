import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { PusherError } from "../../lib/errors.ts";
import { startFaultProxy } from "../helpers/fault_proxy.ts";
import { type MemoryRegistry, startMemoryRegistry } from "../helpers/memory_registry.ts";
import { pullAndVerify, skopeoInspect } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const encoder = new TextEncoder();

function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function skopeoCopy(source: string, destination: string): Promise<void> {
  const output = await new Deno.Command("skopeo", {
    args: ["--insecure-policy", "copy", "--dest-tls-verify=false", source, destination],
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
}

async function pushBlob(
  registry: MemoryRegistry,
  repository: string,
  data: Uint8Array,
): Promise<{ digest: string; size: number }> {
  const digest = digestOf(data);
  const response = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    body: data.slice(),
  });
  await response.body?.cancel();
  assert.equal(response.status, 201);
  return { digest, size: data.length };
}

async function putManifest(
  registry: MemoryRegistry,
  repository: string,
  reference: string,
  manifest: unknown,
): Promise<{ digest: string; size: number }> {
  const bytes = encoder.encode(JSON.stringify(manifest));
  const mediaType = (manifest as { mediaType: string }).mediaType;
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${reference}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: bytes,
  });
  assert.equal(response.status, 201, await response.text());
  return { digest: digestOf(bytes), size: bytes.length };
}

/** A one-file layer tar (enough for digests; skopeo does not unpack it). */
function layerTar(text: string): Uint8Array {
  const block = new Uint8Array(1536);
  block.set(encoder.encode(text));
  return block;
}

/** Pushes an OCI image whose layers are zstd, uncompressed and gzip, optionally with bad diff_ids. */
async function pushOciImage(
  registry: MemoryRegistry,
  repository: string,
  tag: string,
  options: { variant: string; corruptDiffIds?: boolean },
): Promise<
  { manifest: { digest: string; size: number }; configDigest: string; diffIds: string[] }
> {
  const tars = ["a", "b", "c"].map((name) => layerTar(`${name} ${options.variant}`));
  const diffIds = tars.map(digestOf);
  const blobs = [zstdCompressSync(tars[0] ?? new Uint8Array()), tars[1], gzipSync(tars[2] ?? "")];
  const types = ["tar+zstd", "tar", "tar+gzip"].map((t) =>
    `application/vnd.oci.image.layer.v1.${t}`
  );
  const config = encoder.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    variant: options.variant,
    rootfs: { type: "layers", diff_ids: options.corruptDiffIds ? diffIds.toReversed() : diffIds },
  }));
  const configDescriptor = await pushBlob(registry, repository, config);
  const layers = [];
  for (const [i, blob] of blobs.entries()) {
    const descriptor = await pushBlob(registry, repository, blob ?? new Uint8Array());
    layers.push({ mediaType: types[i] ?? "", ...descriptor });
  }
  const manifest = await putManifest(registry, repository, tag, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...configDescriptor },
    layers,
  });
  return { manifest, configDigest: configDescriptor.digest, diffIds };
}

Deno.test({
  name: "pullAndVerify: a skopeo push into the memory registry and into Distribution (via proxy)",
  async fn() {
    await using temp = await tempDir("pull_verify_test_");
    const dir = temp.path;
    const sample = await writeSampleDockerArchive(`${dir}/sample.tar`, { randomBytes: 300_000 });
    await using memory = startMemoryRegistry();
    const distribution = await startRegistry();
    await using _stopDistribution = { [Symbol.asyncDispose]: () => distribution.stop() };
    await using proxy = startFaultProxy({ upstream: distribution.url, seed: 1 });

    await skopeoCopy(`docker-archive:${sample.path}`, `docker://${memory.host}/x:1`);
    await skopeoCopy(`docker-archive:${sample.path}`, `docker://${proxy.host}/x:1`);
    assert.ok((proxy.stats.bytesForwarded["upload-patch"] ?? 0) > 300_000);
    assert.equal(proxy.stats.requests["manifest-put"], 1);

    const expected = {
      expectedConfigDigest: sample.configDigest,
      expectedDiffIds: sample.diffIds,
    };
    for (const host of [memory.host, distribution.host]) {
      const found = await pullAndVerify(`${host}/x:1`, expected);
      assert.equal(found.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
      assert.equal(found.images.length, 1);
      const image = found.images[0];
      assert.equal(image?.configDigest, sample.configDigest);
      assert.equal(image?.platform, "linux/amd64");
      assert.deepEqual(image?.layers.map((layer) => layer.compression), ["gzip", "gzip", "gzip"]);
      assert.deepEqual(image?.layers.map((layer) => layer.diffId), sample.diffIds);
      const raw = await skopeoInspect(`${host}/x:1`);
      assert.equal(raw.digest, found.manifestDigest);
      assert.equal(raw.digest, digestOf(raw.raw));
      assert.equal(raw.mediaType, found.mediaType);
      assert.deepEqual(
        (raw.manifest.layers as { digest: string }[]).map((layer) => layer.digest),
        image?.layers.map((layer) => layer.digest),
      );
    }
  },
});

Deno.test("pullAndVerify: zstd, uncompressed and gzip layers; an index with --all", async () => {
  await using registry = startMemoryRegistry();
  const amd = await pushOciImage(registry, "multi", "amd", { variant: "v2" });
  const other = await pushOciImage(registry, "multi", "other", { variant: "v3" });
  const found = await pullAndVerify(`${registry.host}/multi:amd`, {
    expectedManifestDigest: amd.manifest.digest,
    expectedConfigDigest: amd.configDigest,
    expectedDiffIds: amd.diffIds,
  });
  assert.equal(found.mediaType, OCI_MANIFEST);
  assert.deepEqual(found.images[0]?.layers.map((layer) => layer.compression), [
    "zstd",
    "none",
    "gzip",
  ]);
  assert.equal(found.images[0]?.platform, "linux/amd64/v2");

  const index = await putManifest(registry, "multi", "all", {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [amd, other].map(({ manifest }, i) => ({
      mediaType: OCI_MANIFEST,
      ...manifest,
      platform: { os: "linux", architecture: i === 0 ? "amd64" : "arm64" },
    })),
  });
  const all = await pullAndVerify(`${registry.host}/multi:all`, {
    all: true,
    expectedManifestDigest: index.digest,
    expectedConfigDigest: other.configDigest,
    expectedDiffIds: other.diffIds,
  });
  assert.equal(all.mediaType, OCI_INDEX);
  assert.deepEqual(all.images.map((image) => image.manifestDigest), [
    amd.manifest.digest,
    other.manifest.digest,
  ]);
});

/** Pushes an artifact manifest: config `{}`, one JSON blob (optionally typed as a tar layer). */
async function pushArtifact(
  registry: MemoryRegistry,
  repository: string,
  tag: string,
  blobType: string,
): Promise<{ digest: string; size: number; blob: string }> {
  const config = await pushBlob(registry, repository, encoder.encode("{}"));
  const blob = await pushBlob(registry, repository, encoder.encode('{"built":"by hand"}'));
  const manifest = await putManifest(registry, repository, tag, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: blobType, ...blob }],
  });
  return { ...manifest, blob: blob.digest };
}

Deno.test("pullAndVerify: an artifact child (no diff_ids, no tar layers) is checked blob by blob", async () => {
  await using registry = startMemoryRegistry();
  const image = await pushOciImage(registry, "art", "image", { variant: "v1" });
  const artifact = await pushArtifact(registry, "art", "artifact", "application/vnd.example+json");
  const index = await putManifest(registry, "art", "all", {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      {
        mediaType: OCI_MANIFEST,
        ...image.manifest,
        platform: { os: "linux", architecture: "amd64" },
      },
      { mediaType: OCI_MANIFEST, digest: artifact.digest, size: artifact.size },
    ],
  });
  const found = await pullAndVerify(`${registry.host}/art:all`, {
    all: true,
    expectedManifestDigest: index.digest,
    expectedConfigDigest: image.configDigest,
    expectedDiffIds: image.diffIds,
  });
  assert.deepEqual(found.images.map((child) => child.manifestDigest), [
    image.manifest.digest,
    artifact.digest,
  ]);
  assert.deepEqual(found.images[1]?.layers.map((blob) => blob.digest), [artifact.blob]);

  // A tar layer type still needs its diff_id: without one the manifest is not an artifact.
  await pushArtifact(registry, "art", "untrue", "application/vnd.oci.image.layer.v1.tar+gzip");
  await assert.rejects(
    pullAndVerify(`${registry.host}/art:untrue`),
    (error: unknown) =>
      error instanceof PusherError && /lists no diff_ids for 1 layers/.test(error.message),
  );
});

Deno.test("pullAndVerify: mismatches throw verify errors naming the value", async () => {
  await using registry = startMemoryRegistry();
  const good = await pushOciImage(registry, "app", "good", { variant: "v1" });
  await pushOciImage(registry, "app", "bad", { variant: "v1", corruptDiffIds: true });
  const isVerify = (pattern: RegExp) => (error: unknown) =>
    error instanceof PusherError && error.kind === "verify" && pattern.test(error.message);

  await assert.rejects(
    pullAndVerify(`${registry.host}/app:bad`),
    isVerify(/layer 0 sha256:[a-f0-9]+ \(zstd\) uncompresses to sha256:.*diff_id is sha256:/),
  );
  await assert.rejects(
    pullAndVerify(`${registry.host}/app:good`, { expectedConfigDigest: good.diffIds[0] ?? "" }),
    isVerify(new RegExp(`config digest is ${good.configDigest}, expected`)),
  );
  await assert.rejects(
    pullAndVerify(`${registry.host}/app:good`, { expectedDiffIds: good.diffIds.slice(1) }),
    isVerify(/diff_ids are \[/),
  );
  await assert.rejects(
    pullAndVerify(`${registry.host}/app:good`, { expectedManifestDigest: good.configDigest }),
    isVerify(/manifest digest is sha256:/),
  );
  await assert.rejects(
    pullAndVerify(`${registry.host}/app:missing`),
    isVerify(/skopeo copy failed/),
  );
  await assert.rejects(skopeoInspect(`${registry.host}/app:missing`), isVerify(/skopeo inspect/));
});

Deno.test("skopeo authenticates against the memory registry (Basic and Bearer)", async () => {
  await using temp = await tempDir("pull_verify_test_");
  const dir = temp.path;
  const sample = await writeSampleDockerArchive(`${dir}/s.tar`, { layers: 1, randomBytes: 0 });
  for (const scheme of ["basic", "bearer"] as const) {
    await using registry = startMemoryRegistry({
      auth: { username: "user", password: "secret", scheme },
    });
    const output = await new Deno.Command("skopeo", {
      args: [
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "user:secret",
        `docker-archive:${sample.path}`,
        `docker://${registry.host}/auth/app:1`,
      ],
    }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    const found = await pullAndVerify(`${registry.host}/auth/app:1`, {
      creds: "user:secret",
      expectedConfigDigest: sample.configDigest,
    });
    const raw = await skopeoInspect(`${registry.host}/auth/app:1`, { creds: "user:secret" });
    assert.equal(raw.digest, found.manifestDigest);
    await assert.rejects(
      pullAndVerify(`${registry.host}/auth/app:1`, { creds: "user:wrong" }),
      (error: unknown) => error instanceof PusherError && !error.message.includes("wrong"),
    );
    if (scheme === "bearer") {
      assert.ok(
        (registry.stats.requests["GET token"] ?? 0) > 0,
        "skopeo fetched tokens from the token endpoint",
      );
    }
  }
});
