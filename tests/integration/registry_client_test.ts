import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { RegistryClient, type RegistryClientOptions } from "../../lib/registry/client.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import type { RequestLog } from "../../lib/registry/http.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const PASSWORD = "correct horse battery";
const encoder = new TextEncoder();

interface Blob {
  bytes: Uint8Array;
  digest: string;
}

function blob(text: string): Blob {
  const bytes = encoder.encode(text);
  return { bytes, digest: sha256(bytes) };
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function manifestFor(config: Blob, layers: Blob[]): Uint8Array {
  return encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: config.digest,
      size: config.bytes.byteLength,
    },
    layers: layers.map((layer) => ({
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: layer.digest,
      size: layer.bytes.byteLength,
    })),
  }));
}

function client(
  registry: TestRegistry,
  repository: string,
  extra: Partial<RegistryClientOptions> = {},
): RegistryClient {
  return new RegistryClient({
    reference: { registry: registry.host, apiBase: new URL(registry.url), repository },
    ...extra,
  });
}

/** A stream of `bytes` in `parts` chunks, optionally pausing `delayMs` before each chunk. */
function chunked(bytes: Uint8Array, parts: number, delayMs = 0): ReadableStream<Uint8Array> {
  const size = Math.ceil(bytes.byteLength / parts);
  let at = 0;
  return new ReadableStream({
    async pull(controller): Promise<void> {
      if (at >= bytes.byteLength) {
        controller.close();
        return;
      }
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

async function upload(registryClient: RegistryClient, item: Blob): Promise<void> {
  const session = await registryClient.startUpload();
  const sent = await registryClient.patchStream(session, chunked(item.bytes, 3));
  assert.equal(sent.offset, item.bytes.byteLength);
  assert.equal(await registryClient.completeUpload(sent, item.digest), item.digest);
}

/** Uploads a config and a layer and tags a manifest; returns the manifest digest. */
async function pushImage(
  registryClient: RegistryClient,
  tag: string,
  seed: string,
): Promise<string> {
  const config = blob(`{"architecture":"amd64","os":"linux","seed":"${seed}"}`);
  const layer = blob(`layer bytes for ${seed} `.repeat(1000));
  await upload(registryClient, config);
  await upload(registryClient, layer);
  const manifest = manifestFor(config, [layer]);
  const digest = await registryClient.putManifest(tag, manifest, OCI_MANIFEST);
  assert.equal(digest, sha256(manifest));
  assert.equal(await registryClient.getManifestDigest(tag), digest);
  return digest;
}

function assertNoSecrets(error: unknown, ...secrets: string[]): void {
  assert.ok(error instanceof Error);
  const text = [error.message, (error as RegistryError).hint ?? "", String(error.stack)].join("\n");
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), `error text leaks a secret: ${error.message}`);
  }
}

Deno.test("anonymous: ping, streamed upload, blobExists, manifests by tag and digest", async () => {
  const registry = await startRegistry();
  const logs: RequestLog[] = [];
  const app = client(registry, "team/app", { onRequest: (log) => logs.push(log) });
  try {
    await app.ping();
    assert.equal(app.authScheme, "unknown");
    const layer = blob("0123456789".repeat(10_000));
    assert.deepEqual(await app.blobExists(layer.digest), { exists: false });

    const progress: number[] = [];
    const session = await app.startUpload();
    assert.equal(session.offset, 0);
    const sent = await app.patchStream(
      session,
      chunked(layer.bytes, 4),
      (bytes) => progress.push(bytes),
    );
    assert.equal(sent.offset, 100_000);
    assert.equal(progress.at(-1), 100_000);
    assert.ok(progress.length >= 4);
    assert.notEqual(sent.location.href, session.location.href, "the newest Location is kept");
    await app.completeUpload(sent, layer.digest);
    assert.deepEqual(await app.blobExists(layer.digest), { exists: true, size: 100_000 });
    const patch = logs.find((log) => log.method === "PATCH");
    assert.equal(patch?.bytes, 100_000);
    assert.match(patch?.url ?? "", /_state=…/);

    const config = blob('{"os":"linux"}');
    await upload(app, config);
    const manifest = manifestFor(config, [layer]);
    const digest = await app.putManifest("v1", manifest, OCI_MANIFEST);
    assert.equal(digest, sha256(manifest));
    assert.equal(await app.putManifest(digest, manifest, OCI_MANIFEST), digest);
    assert.equal(await app.getManifestDigest("v1"), digest);
    assert.equal(await app.getManifestDigest(digest), digest);
    assert.equal(await app.getManifestDigest("missing"), undefined);

    const stored = await fetch(`${registry.url}/v2/team/app/manifests/v1`, {
      headers: { accept: OCI_MANIFEST },
    });
    assert.equal(stored.headers.get("content-type"), OCI_MANIFEST);
    assert.deepEqual(
      new Uint8Array(await stored.arrayBuffer()),
      manifest,
      "the exact bytes are stored",
    );
  } finally {
    app.close();
    await registry.stop();
  }
});

Deno.test("chunked upload: Content-Range chunks, status, final bytes on the PUT", async () => {
  const registry = await startRegistry();
  const app = client(registry, "chunks");
  try {
    const item = blob("abcdefghij".repeat(3000));
    let session = await app.startUpload();
    session = await app.patchChunk(session, item.bytes.subarray(0, 10_000));
    session = await app.patchChunk(session, item.bytes.subarray(10_000, 20_000));
    assert.equal(session.offset, 20_000);
    const status = await app.uploadStatus(session);
    assert.equal(status.offset, 20_000);
    assert.equal(status.session.offset, 20_000);
    session = await app.patchChunk(status.session, item.bytes.subarray(20_000, 25_000));
    await app.completeUpload(session, item.digest, item.bytes.subarray(25_000));
    const stored = await fetch(`${registry.url}/v2/chunks/blobs/${item.digest}`);
    assert.deepEqual(new Uint8Array(await stored.arrayBuffer()), item.bytes);
  } finally {
    app.close();
    await registry.stop();
  }
});

Deno.test("cross-repository mount: 201 mounts, 202 is cancelled and reported as false", async () => {
  const registry = await startRegistry();
  const logs: RequestLog[] = [];
  const source = client(registry, "team/base");
  const target = client(registry, "team/app", { onRequest: (log) => logs.push(log) });
  try {
    const layer = blob("shared layer ".repeat(500));
    await upload(source, layer);
    assert.equal(await target.mountBlob(layer.digest, "team/base"), true);
    assert.deepEqual(await target.blobExists(layer.digest), {
      exists: true,
      size: layer.bytes.byteLength,
    });
    const absent = blob("never uploaded");
    assert.equal(await target.mountBlob(absent.digest, "team/base"), false);
    const last = logs.at(-1);
    assert.equal(last?.method, "DELETE", "the session a failed mount opened is cancelled");
    assert.equal(last?.status, 204);
  } finally {
    source.close();
    target.close();
    await registry.stop();
  }
});

Deno.test("registry errors carry kind, status and codes", async () => {
  const registry = await startRegistry();
  const app = client(registry, "errors");
  try {
    const config = blob("{}");
    const missing = blob("missing layer");
    await upload(app, config);
    await assert.rejects(
      app.putManifest("v1", manifestFor(config, [missing]), OCI_MANIFEST),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.kind, "registry");
        assert.equal(error.status, 400);
        assert.ok(error.codes.includes("MANIFEST_BLOB_UNKNOWN"), error.codes.join());
        assert.equal(error.retryable, false);
        assert.match(
          error.message,
          /pushing manifest .*errors:v1 failed with HTTP 400: MANIFEST_BLOB_UNKNOWN/,
        );
        return true;
      },
    );
    const session = await app.patchStream(
      await app.startUpload(),
      chunked(encoder.encode("abc"), 1),
    );
    await assert.rejects(app.completeUpload(session, blob("abd").digest), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.kind, "verify");
      assert.ok(error.codes.includes("DIGEST_INVALID"));
      return true;
    });
    const abandoned = await app.startUpload();
    await app.cancelUpload(abandoned);
    await app.cancelUpload(abandoned);
    await assert.rejects(app.uploadStatus(abandoned), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 404);
      assert.ok(error.codes.includes("BLOB_UPLOAD_UNKNOWN"));
      return true;
    });
  } finally {
    app.close();
    await registry.stop();
  }
});

Deno.test("htpasswd Basic auth: push with credentials; wrong or missing ones are refused", async () => {
  const registry = await startRegistry({ htpasswd: { alice: PASSWORD } });
  const good = client(registry, "basic/app", {
    credentials: { username: "alice", password: PASSWORD },
  });
  const wrong = client(registry, "basic/app", {
    credentials: { username: "alice", password: "wrong-pass" },
  });
  const anonymous = client(registry, "basic/app");
  try {
    await good.ping();
    assert.equal(good.authScheme, "basic");
    await pushImage(good, "v1", "basic");
    await assert.rejects(wrong.ping(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.kind, "auth");
      assert.match(error.message, /credentials of alice were refused/);
      assertNoSecrets(error, "wrong-pass", PASSWORD, btoa("alice:wrong-pass"));
      return true;
    });
    await assert.rejects(anonymous.startUpload(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.kind, "auth");
      assert.match(error.message, /requires credentials/);
      return true;
    });
  } finally {
    good.close();
    wrong.close();
    anonymous.close();
    await registry.stop();
  }
});

Deno.test("token auth, GET grant: Basic to the token service, scoped tokens, refusals", async () => {
  const registry = await startRegistry({ token: { users: { alice: PASSWORD } } });
  const app = client(registry, "tok/app", {
    credentials: { username: "alice", password: PASSWORD },
  });
  const wrong = client(registry, "tok/app", {
    credentials: { username: "alice", password: "bad-secret" },
  });
  const anonymous = client(registry, "tok/app");
  try {
    await app.ping();
    assert.equal(app.authScheme, "bearer");
    await pushImage(app, "latest", "get-grant");
    assert.deepEqual(registry.tokenRequests, [{
      method: "GET",
      user: "alice",
      scopes: ["repository:tok/app:pull,push"],
      status: 200,
    }], "one token served the whole push");

    await assert.rejects(wrong.ping(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.kind, "auth");
      assert.match(error.message, /credentials of alice were refused by the token service/);
      assertNoSecrets(error, "bad-secret", PASSWORD);
      return true;
    });
    await anonymous.ping();
    await assert.rejects(anonymous.startUpload(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.kind, "auth");
      assert.match(error.message, /registry 127\.0\.0\.1:\d+ requires credentials/);
      return true;
    });
  } finally {
    app.close();
    wrong.close();
    anonymous.close();
    await registry.stop();
  }
});

Deno.test("token auth, POST grants: password, then the refresh token as an identity token", async () => {
  const registry = await startRegistry({ token: { users: { alice: PASSWORD } } });
  const oauth = client(registry, "post/app", {
    credentials: { username: "alice", password: PASSWORD },
    preferOAuth: true,
  });
  try {
    await pushImage(oauth, "v1", "post-password");
    assert.deepEqual(registry.tokenRequests.map((r) => [r.method, r.grantType, r.status]), [
      ["POST", "password", 200],
    ]);
    const refresh = registry.refreshTokens.get("alice");
    assert.ok(refresh !== undefined);
    const identity = client(registry, "post/app", { credentials: { identityToken: refresh } });
    try {
      await pushImage(identity, "v2", "post-refresh");
      assert.deepEqual(registry.tokenRequests.at(-1), {
        method: "POST",
        grantType: "refresh_token",
        user: "alice",
        scopes: ["repository:post/app:pull,push"],
        status: 200,
      });
    } finally {
      identity.close();
    }
    const stale = client(registry, "post/app", { credentials: { identityToken: "stale-token" } });
    try {
      await assert.rejects(stale.ping(), (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.kind, "auth");
        assertNoSecrets(error, "stale-token");
        return true;
      });
    } finally {
      stale.close();
    }
  } finally {
    oauth.close();
    await registry.stop();
  }
});

Deno.test("token auth: a token service without POST gets GET after a 404", async () => {
  const registry = await startRegistry({ token: { users: { alice: PASSWORD }, allowPost: false } });
  registry.refreshTokens.set("acr-user", "identity-123");
  const oauth = client(registry, "nopost/app", {
    credentials: { username: "alice", password: PASSWORD },
    preferOAuth: true,
  });
  const identity = client(registry, "nopost/app", {
    credentials: { identityToken: "identity-123", username: "acr-user" },
  });
  try {
    await oauth.ping();
    await identity.ping();
    await pushImage(identity, "v1", "no-post");
    assert.deepEqual(registry.tokenRequests.map((r) => [r.method, r.status, r.user]), [
      ["POST", 404, undefined],
      ["GET", 200, "alice"],
      ["POST", 404, undefined],
      ["GET", 200, "acr-user"],
    ]);
  } finally {
    oauth.close();
    identity.close();
    await registry.stop();
  }
});

Deno.test("2-second tokens: a slow upload outlives its token and the push carries on", async () => {
  const registry = await startRegistry({
    token: { users: { alice: PASSWORD }, lifetimeSeconds: 2 },
  });
  const logs: RequestLog[] = [];
  const app = client(registry, "slow/app", {
    credentials: { username: "alice", password: PASSWORD },
    onRequest: (log) => logs.push(log),
  });
  try {
    await app.ping();
    const config = blob('{"slow":true}');
    await upload(app, config);
    const layer = blob("slow ".repeat(2000));
    const session = await app.startUpload();
    const started = Date.now();
    const sent = await app.patchStream(session, chunked(layer.bytes, 6, 500));
    assert.ok(Date.now() - started >= 2500, "the upload took longer than a token lives");
    await app.completeUpload(sent, layer.digest);
    await app.putManifest("v1", manifestFor(config, [layer]), OCI_MANIFEST);
    assert.ok(registry.tokenRequests.length >= 2, "tokens were refreshed before they expired");
    assert.deepEqual(
      logs.filter((log) => log.status === 401).map((log) => log.method),
      ["GET"],
      "only the first ping was challenged",
    );
  } finally {
    app.close();
    await registry.stop();
  }
});

Deno.test("tokens that die early: a 401 mid-push gets a fresh token and one retry", async () => {
  const registry = await startRegistry({
    token: { users: { alice: PASSWORD }, lifetimeSeconds: 2, advertisedSeconds: 300 },
  });
  const logs: RequestLog[] = [];
  const app = client(registry, "early/app", {
    credentials: { username: "alice", password: PASSWORD },
    onRequest: (log) => logs.push(log),
  });
  try {
    await app.ping();
    const config = blob('{"early":true}');
    const layer = blob("early ".repeat(1000));
    await upload(app, config);
    const streamed = await app.startUpload();
    const ready = await app.patchStream(await app.startUpload(), chunked(layer.bytes, 2));
    // Tokens live 2-3 s at the registry (JWT times are whole seconds); wait past that.
    await new Promise((resolve) => setTimeout(resolve, 3100));
    const [patch, put] = await Promise.allSettled([
      app.patchStream(streamed, chunked(layer.bytes, 2)),
      app.completeUpload(ready, layer.digest),
    ]);
    assert.equal(patch.status, "rejected");
    const patchError = (patch as PromiseRejectedResult).reason;
    assert.ok(patchError instanceof RegistryError);
    assert.equal(
      patchError.retryable,
      true,
      "a streamed body can't be replayed: the caller retries",
    );
    assert.equal(patchError.status, 401);
    assert.deepEqual(put, { status: "fulfilled", value: layer.digest }, "a byte body is replayed");
    assert.deepEqual(
      logs.filter((log) => log.method === "PUT").map((log) => log.status),
      [201, 401, 201],
      "config PUT, then the expired layer PUT and its one retry",
    );
    assert.equal(registry.tokenRequests.length, 2, "both 401s share one fresh token");
    await app.putManifest("v1", manifestFor(config, [layer]), OCI_MANIFEST);
    assert.equal(logs.at(-1)?.status, 201);
  } finally {
    app.close();
    await registry.stop();
  }
});

Deno.test("TLS: refused by default with a certificate message; skipTlsVerify and caCerts work", async () => {
  const registry = await startRegistry({ tls: true, token: { users: { alice: PASSWORD } } });
  const credentials = { username: "alice", password: PASSWORD };
  const verifying = client(registry, "tls/app", { credentials });
  const skipping = client(registry, "tls/app", { credentials, skipTlsVerify: true });
  const trusting = client(registry, "tls/app", { credentials, caCerts: [registry.caCert ?? ""] });
  try {
    await assert.rejects(verifying.ping(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.kind, "network");
      assert.equal(error.retryable, false);
      assert.match(error.message, /TLS certificate of 127\.0\.0\.1:\d+ was rejected/);
      assert.match(error.hint ?? "", /--ca-cert/);
      assert.match(error.hint ?? "", /--skip-tls/);
      return true;
    });
    await pushImage(skipping, "skip", "skip-tls");
    await pushImage(trusting, "ca", "ca-cert");
    assert.equal(
      await trusting.getManifestDigest("skip"),
      await skipping.getManifestDigest("skip"),
    );
  } finally {
    verifying.close();
    skipping.close();
    trusting.close();
    await registry.stop();
  }
});

Deno.test("plain http:// against a TLS registry says to use https://", async () => {
  const registry = await startRegistry({ tls: true });
  const app = new RegistryClient({
    reference: {
      registry: registry.host,
      apiBase: new URL(registry.url.replace("https:", "http:")),
      repository: "x",
    },
  });
  try {
    await assert.rejects(app.ping(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 400);
      assert.match(error.hint ?? "", /https:\/\//);
      return true;
    });
  } finally {
    app.close();
    await registry.stop();
  }
});
