import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PusherError } from "../../lib/errors.ts";
import { RegistryClient, type RegistryClientOptions } from "../../lib/registry/client.ts";
import type { RequestLog } from "../../lib/registry/http.ts";
import { collectBytes } from "../helpers/byte_streams.ts";
import { type MemoryRegistry, startMemoryRegistry } from "../helpers/memory_registry.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const REPO = "team/app";
const USER = { username: "reader", password: "s3cret-pass" };
const encoder = new TextEncoder();

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function bytesOf(size: number, seed = 7): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 131 + seed) % 253);
}

function client(
  registry: MemoryRegistry,
  extra: Partial<RegistryClientOptions> = {},
): RegistryClient {
  return new RegistryClient({
    reference: { registry: registry.host, apiBase: new URL(registry.url), repository: REPO },
    ...extra,
  });
}

function manifestBytes(text: string): Uint8Array {
  return encoder.encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, text }));
}

/** Runs `body`, expecting a PusherError of `kind`; returns it. */
async function rejects(body: () => Promise<unknown>, kind: string): Promise<PusherError> {
  try {
    await body();
  } catch (error) {
    assert.ok(error instanceof PusherError, `expected a PusherError, got ${error}`);
    assert.equal(error.kind, kind, error.message);
    return error;
  }
  assert.fail("expected a failure");
}

Deno.test("getManifest by tag returns the stored bytes, media type and digest", async () => {
  await using registry = startMemoryRegistry();
  const bytes = manifestBytes("tagged");
  const digest = registry.seedManifest(REPO, "v1", { bytes, mediaType: OCI_MANIFEST });
  const reader = client(registry, { access: "pull" });
  try {
    const manifest = await reader.getManifest("v1");
    assert.deepEqual(manifest.bytes, bytes);
    assert.equal(manifest.mediaType, OCI_MANIFEST);
    assert.equal(manifest.digest, digest);
    assert.equal(manifest.digest, sha256(bytes));
  } finally {
    reader.close();
  }
});

Deno.test("getManifest by digest refuses bytes that hash to another digest (exit 7)", async () => {
  await using registry = startMemoryRegistry();
  const asked = sha256(encoder.encode("the manifest that was asked for"));
  registry.seedManifest(REPO, asked, {
    bytes: manifestBytes("something else"),
    mediaType: OCI_MANIFEST,
    digest: asked,
  });
  const reader = client(registry);
  try {
    const error = await rejects(() => reader.getManifest(asked), "verify");
    assert.equal(error.exitCode, 7);
    assert.match(error.message, new RegExp(`not ${asked}`));
  } finally {
    reader.close();
  }
});

Deno.test("getManifest by tag checks Docker-Content-Digest", async () => {
  await using registry = startMemoryRegistry();
  const reported = sha256(encoder.encode("another manifest"));
  registry.seedManifest(REPO, "v1", {
    bytes: manifestBytes("served"),
    mediaType: OCI_MANIFEST,
    digest: reported,
  });
  const reader = client(registry);
  try {
    const error = await rejects(() => reader.getManifest("v1"), "verify");
    assert.match(error.message, /reported by the registry/);
  } finally {
    reader.close();
  }
});

Deno.test("schema 1 manifests are refused by media type and by schemaVersion", async () => {
  await using registry = startMemoryRegistry();
  const schema1 = (tag: string): Uint8Array =>
    encoder.encode(JSON.stringify({ schemaVersion: 1, name: REPO, tag }));
  registry.seedManifest(REPO, "signed", { bytes: schema1("signed"), mediaType: SCHEMA1_SIGNED });
  registry.seedManifest(REPO, "loose", { bytes: schema1("loose"), mediaType: "application/json" });
  const reader = client(registry);
  try {
    for (const tag of ["signed", "loose"]) {
      const error = await rejects(() => reader.getManifest(tag), "input");
      assert.match(error.message, /schema 1/);
      assert.match(error.hint ?? "", /skopeo copy --format v2s2/);
    }
    const head = await rejects(() => reader.headManifest("signed"), "input");
    assert.match(head.message, /schema 1/);
  } finally {
    reader.close();
  }
});

Deno.test("headManifest answers from a HEAD alone, and undefined for a missing tag", async () => {
  await using registry = startMemoryRegistry();
  const bytes = manifestBytes("headed");
  const digest = registry.seedManifest(REPO, "v1", { bytes, mediaType: OCI_MANIFEST });
  const reader = client(registry);
  try {
    assert.deepEqual(await reader.headManifest("v1"), {
      digest,
      mediaType: OCI_MANIFEST,
      size: bytes.byteLength,
    });
    assert.equal(await reader.headManifest("missing"), undefined);
    const kinds = registry.log.map((record) => `${record.method} ${record.kind}`);
    assert.deepEqual(kinds, ["HEAD manifest-head", "HEAD manifest-head"]);
  } finally {
    reader.close();
  }
});

Deno.test("getBlob sends Range from an offset and reports a 206 as ranged", async () => {
  await using registry = startMemoryRegistry();
  const data = bytesOf(10_000);
  const digest = registry.seedBlob(REPO, data);
  const reader = client(registry);
  try {
    const whole = await reader.getBlob(digest);
    assert.equal(whole.ranged, false);
    assert.equal(whole.start, 0);
    assert.equal(whole.size, data.byteLength);
    assert.deepEqual(await collectBytes(whole.body), data);

    const rest = await reader.getBlob(digest, { offset: 4_000 });
    assert.equal(rest.ranged, true);
    assert.equal(rest.start, 4_000);
    assert.equal(rest.size, data.byteLength);
    assert.deepEqual(await collectBytes(rest.body), data.slice(4_000));
    assert.deepEqual(registry.log.map((record) => record.range), [undefined, "bytes=4000-"]);
  } finally {
    reader.close();
  }
});

Deno.test("getBlob says so when the registry ignores Range and sends the whole blob", async () => {
  await using registry = startMemoryRegistry({ ignoreRange: true });
  const data = bytesOf(5_000);
  const digest = registry.seedBlob(REPO, data);
  const reader = client(registry);
  try {
    const download = await reader.getBlob(digest, { offset: 1_000 });
    assert.equal(registry.log[0]?.range, "bytes=1000-");
    assert.equal(download.ranged, false);
    assert.equal(download.start, 0);
    assert.deepEqual(await collectBytes(download.body), data);
  } finally {
    reader.close();
  }
});

Deno.test("a blob redirect to another origin is followed without Authorization", async () => {
  await using registry = startMemoryRegistry({
    auth: { ...USER, scheme: "basic" },
    redirect: { blobs: true },
  });
  const data = bytesOf(3_000);
  const digest = registry.seedBlob(REPO, data);
  const reader = client(registry, { credentials: USER, access: "pull" });
  try {
    await reader.ping();
    registry.resetStats();
    const download = await reader.getBlob(digest, { offset: 1_000 });
    assert.deepEqual(await collectBytes(download.body), data.slice(1_000));
    const hops = registry.log.map((record) => ({
      origin: record.origin,
      authorization: record.authorization,
      range: record.range,
    }));
    assert.deepEqual(hops, [
      { origin: "primary", authorization: true, range: "bytes=1000-" },
      { origin: "redirect", authorization: false, range: "bytes=1000-" },
    ]);
  } finally {
    reader.close();
  }
});

Deno.test("a pull-only client gets an anonymous pull token; a push client asks pull,push", async () => {
  await using registry = startMemoryRegistry({
    auth: { ...USER, scheme: "bearer", anonymousPull: true },
  });
  const data = bytesOf(2_000);
  const digest = registry.seedBlob(REPO, data);
  registry.seedManifest(REPO, "v1", { bytes: manifestBytes("anon"), mediaType: OCI_MANIFEST });
  const reader = client(registry, { access: "pull" });
  try {
    await reader.getManifest("v1");
    assert.deepEqual(await collectBytes((await reader.getBlob(digest)).body), data);
  } finally {
    reader.close();
  }
  const scopes = (kind: string): string[] =>
    registry.log.filter((record) => record.kind === kind).flatMap((record) =>
      new URL(record.path, registry.url).searchParams.getAll("scope")
    );
  const tokenRequests = registry.log.filter((record) => record.kind === "token");
  assert.equal(tokenRequests.length, 1);
  assert.equal(tokenRequests[0]?.authorization, false);
  assert.deepEqual(scopes("token"), [`repository:${REPO}:pull`]);

  registry.resetStats();
  const pusher = client(registry, { credentials: USER });
  try {
    await pusher.ping();
    await pusher.blobExists(digest);
  } finally {
    pusher.close();
  }
  assert.deepEqual(scopes("token"), [`repository:${REPO}:pull,push`]);
});

Deno.test("the request log carries the pull quota from ratelimit headers", async () => {
  await using registry = startMemoryRegistry({
    responseHeaders: { "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600" },
  });
  registry.seedManifest(REPO, "v1", { bytes: manifestBytes("quota"), mediaType: OCI_MANIFEST });
  const logs: RequestLog[] = [];
  const reader = client(registry, { onRequest: (entry) => logs.push(entry) });
  try {
    await reader.headManifest("v1");
  } finally {
    reader.close();
  }
  assert.equal(logs.length, 1);
  assert.deepEqual(logs[0]?.rateLimit, { limit: 100, remaining: 76, windowSeconds: 21600 });
});
