import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  classifyRequest,
  type MemoryRegistry,
  startMemoryRegistry,
} from "../helpers/memory_registry.ts";
import { chunkedStream } from "../helpers/byte_streams.ts";

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const encoder = new TextEncoder();

function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function bytesOf(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) % 251);
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** fetch without connection reuse (so Deno never silently re-sends), body read to the end. */
async function call(
  registry: MemoryRegistry,
  path: string,
  init: RequestInit = {},
  base: string = registry.url,
): Promise<Answer> {
  using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const response = await fetch(new URL(path, base), { ...init, client });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Like {@link call}, but expects fetch to reject with a network error and returns it. */
async function callFails(
  registry: MemoryRegistry,
  path: string,
  init: RequestInit = {},
): Promise<TypeError> {
  using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const response = await fetch(new URL(path, registry.url), { ...init, client });
    await response.body?.cancel();
  } catch (error) {
    assert.ok(error instanceof TypeError, `expected a network error, got ${error}`);
    return error;
  }
  assert.fail(`${init.method ?? "GET"} ${path} answered instead of failing`);
}

function errorCode(answer: Answer): string | undefined {
  return (JSON.parse(answer.text) as { errors: { code: string }[] }).errors[0]?.code;
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes("?") ? "&" : "?"}digest=${digest}`;
}

async function startUpload(registry: MemoryRegistry, repository: string): Promise<string> {
  const answer = await call(registry, `/v2/${repository}/blobs/uploads/`, { method: "POST" });
  assert.equal(answer.status, 202);
  return answer.headers.get("Location") ?? "";
}

async function pushBlob(
  registry: MemoryRegistry,
  repository: string,
  data: Uint8Array<ArrayBuffer>,
): Promise<{ digest: string; size: number }> {
  const digest = digestOf(data);
  const answer = await call(registry, `/v2/${repository}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    body: data,
  });
  assert.equal(answer.status, 201);
  return { digest, size: data.length };
}

Deno.test("classifyRequest maps methods and paths to kinds", () => {
  assert.deepEqual(classifyRequest("GET", "/v2/"), { kind: "ping" });
  assert.deepEqual(classifyRequest("POST", "/v2/a/b/blobs/uploads/"), {
    kind: "upload-start",
    repository: "a/b",
  });
  assert.deepEqual(classifyRequest("PATCH", "/v2/a/blobs/uploads/u1"), {
    kind: "upload-patch",
    repository: "a",
    reference: "u1",
  });
  assert.equal(classifyRequest("HEAD", "/v2/a/blobs/sha256:00").kind, "blob-head");
  assert.equal(classifyRequest("PUT", "/v2/a/manifests/1").kind, "manifest-put");
  assert.equal(classifyRequest("GET", "/v2/a/tags/list").kind, "tags-list");
  assert.equal(classifyRequest("DELETE", "/v2/a/manifests/1").kind, "other");
});

Deno.test("memory registry: ping, monolithic upload, HEAD and GET", async () => {
  await using registry = startMemoryRegistry();
  const ping = await call(registry, "/v2/");
  assert.equal(ping.status, 200);
  assert.equal(ping.headers.get("Docker-Distribution-API-Version"), "registry/2.0");

  const data = bytesOf(5000);
  const digest = digestOf(data);
  const missing = await call(registry, `/v2/app/blobs/${digest}`, { method: "HEAD" });
  assert.equal(missing.status, 404);

  const wrong = await call(registry, `/v2/app/blobs/uploads/?digest=${digestOf(bytesOf(3))}`, {
    method: "POST",
    body: data,
  });
  assert.equal(wrong.status, 400);
  assert.equal(errorCode(wrong), "DIGEST_INVALID");

  const created = await call(registry, `/v2/app/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    body: data,
  });
  assert.equal(created.status, 201);
  assert.equal(created.headers.get("Location"), `/v2/app/blobs/${digest}`);

  const head = await call(registry, `/v2/app/blobs/${digest}`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("Content-Length"), "5000");
  assert.equal(head.headers.get("Docker-Content-Digest"), digest);
  const get = await fetch(`${registry.url}/v2/app/blobs/${digest}`);
  assert.deepEqual(new Uint8Array(await get.arrayBuffer()), data);
  assert.equal((await call(registry, `/v2/other/blobs/${digest}`, { method: "HEAD" })).status, 404);
  assert.equal(registry.stats.bytesReceived["upload-start"], 10000);
});

Deno.test("memory registry: streamed PATCH, newest Location only, digest checked", async () => {
  await using registry = startMemoryRegistry();
  const data = bytesOf(100_000);
  const digest = digestOf(data);
  const first = await startUpload(registry, "app");
  assert.match(first, /^\/v2\/app\/blobs\/uploads\/[^?]+\?_state=/);

  const patched = await call(registry, first, { method: "PATCH", body: chunkedStream(data, 4096) });
  assert.equal(patched.status, 202);
  assert.equal(patched.headers.get("Range"), "0-99999");
  const second = patched.headers.get("Location") ?? "";
  assert.notEqual(second, first, "every answer carries a new _state");
  assert.equal(second.split("?")[0], first.split("?")[0]);

  const stale = await call(registry, withDigest(first, digest), { method: "PUT" });
  assert.equal(stale.status, 400);
  assert.equal(errorCode(stale), "BLOB_UPLOAD_INVALID");

  const bad = await call(registry, withDigest(second, digestOf(bytesOf(7))), { method: "PUT" });
  assert.equal(bad.status, 400);
  assert.equal(errorCode(bad), "DIGEST_INVALID");
  assert.equal(registry.sessions()[0]?.state, "failed");
  assert.equal((await call(registry, second, { method: "GET" })).status, 404);

  const again = await startUpload(registry, "app");
  const next = await call(registry, again, { method: "PATCH", body: chunkedStream(data, 4096) });
  const done = await call(registry, withDigest(next.headers.get("Location") ?? "", digest), {
    method: "PUT",
  });
  assert.equal(done.status, 201);
  assert.equal(done.headers.get("Docker-Content-Digest"), digest);
  assert.ok(registry.hasBlob("app", digest));
  assert.deepEqual(registry.blob(digest), data);
  assert.deepEqual(registry.sessions().map((s) => [s.state, s.size, s.patches]), [
    ["failed", 100_000, 1],
    ["completed", 100_000, 1],
  ]);
  assert.equal(registry.stats.requests["PATCH upload-patch"], 2);
  assert.equal(registry.stats.bytesReceived["upload-patch"], 200_000);
});

Deno.test("memory registry: chunked PATCH, 416 on a wrong offset, status GET, DELETE", async () => {
  await using registry = startMemoryRegistry();
  const data = bytesOf(3000);
  const digest = digestOf(data);
  let location = await startUpload(registry, "app");

  const chunk1 = await call(registry, location, {
    method: "PATCH",
    headers: { "Content-Range": "0-999" },
    body: data.slice(0, 1000),
  });
  assert.equal(chunk1.status, 202);
  assert.equal(chunk1.headers.get("Range"), "0-999");
  location = chunk1.headers.get("Location") ?? "";

  const gap = await call(registry, location, {
    method: "PATCH",
    headers: { "Content-Range": "1500-1999" },
    body: data.slice(1500, 2000),
  });
  assert.equal(gap.status, 416);
  assert.equal(gap.headers.get("Range"), "0-999");

  const status = await call(registry, location, { method: "GET" });
  assert.equal(status.status, 204);
  assert.equal(status.headers.get("Range"), "0-999");
  assert.equal(status.headers.get("Docker-Upload-UUID"), registry.sessions()[0]?.id);
  const fresh = status.headers.get("Location") ?? "";
  assert.notEqual(fresh, location);

  const chunk2 = await call(registry, fresh, {
    method: "PATCH",
    headers: { "Content-Range": "1000-1999" },
    body: data.slice(1000, 2000),
  });
  assert.equal(chunk2.status, 202);
  assert.equal(chunk2.headers.get("Range"), "0-1999");
  const final = await call(registry, withDigest(chunk2.headers.get("Location") ?? "", digest), {
    method: "PUT",
    headers: { "Content-Range": "2000-2999" },
    body: data.slice(2000),
  });
  assert.equal(final.status, 201);
  assert.deepEqual(registry.blob(digest), data);

  const abandoned = await startUpload(registry, "app");
  assert.equal((await call(registry, abandoned, { method: "DELETE" })).status, 204);
  const gone = await call(registry, abandoned, { method: "PATCH", body: data });
  assert.equal(gone.status, 404);
  assert.equal(errorCode(gone), "BLOB_UPLOAD_UNKNOWN");
  assert.equal(registry.sessions()[1]?.state, "cancelled");
});

Deno.test("memory registry: cross-repo mount answers 201 or falls back to a session", async () => {
  await using registry = startMemoryRegistry();
  const digest = registry.seedBlob("base", bytesOf(1234));
  const mounted = await call(registry, `/v2/app/blobs/uploads/?mount=${digest}&from=base`, {
    method: "POST",
  });
  assert.equal(mounted.status, 201);
  assert.equal(mounted.headers.get("Docker-Content-Digest"), digest);
  assert.ok(registry.hasBlob("app", digest));

  const other = digestOf(bytesOf(99));
  const fallback = await call(registry, `/v2/app/blobs/uploads/?mount=${other}&from=base`, {
    method: "POST",
  });
  assert.equal(fallback.status, 202);
  assert.match(fallback.headers.get("Location") ?? "", /\/v2\/app\/blobs\/uploads\/.+_state=/);
  assert.equal(registry.sessions().length, 1);
});

Deno.test("memory registry: manifests are validated, stored and served", async () => {
  await using registry = startMemoryRegistry();
  const config = await pushBlob(registry, "app", encoder.encode('{"rootfs":{}}'));
  const layer = await pushBlob(registry, "app", bytesOf(800));
  const manifestOf = (layers: unknown[], mediaType = DOCKER_MANIFEST) =>
    encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: "application/vnd.docker.container.image.v1+json", ...config },
      layers,
    }));
  const dockerLayer = { mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", ...layer };
  const put = (reference: string, body: Uint8Array<ArrayBuffer>, type = DOCKER_MANIFEST) =>
    call(registry, `/v2/app/manifests/${reference}`, {
      method: "PUT",
      headers: { "Content-Type": type },
      body,
    });

  const unknownLayer = { ...dockerLayer, digest: digestOf(bytesOf(5)), size: 5 };
  const missing = await put("1", manifestOf([unknownLayer]));
  assert.equal(missing.status, 400);
  assert.equal(errorCode(missing), "MANIFEST_BLOB_UNKNOWN");
  assert.match(missing.text, new RegExp(unknownLayer.digest));

  const good = manifestOf([dockerLayer]);
  assert.equal(errorCode(await put("1", good, "application/json")), "MANIFEST_INVALID");
  assert.equal(errorCode(await put("1", good, OCI_MANIFEST)), "MANIFEST_INVALID");
  const ociLayer = { ...dockerLayer, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" };
  assert.equal(errorCode(await put("1", manifestOf([ociLayer]))), "MANIFEST_INVALID");
  assert.equal(
    errorCode(await put("1", manifestOf([{ ...dockerLayer, size: 1 }]))),
    "MANIFEST_INVALID",
  );
  assert.equal(errorCode(await put(digestOf(bytesOf(1)), good)), "DIGEST_INVALID");

  const created = await put("1", good);
  assert.equal(created.status, 201);
  const digest = digestOf(good);
  assert.equal(created.headers.get("Docker-Content-Digest"), digest);
  assert.equal((await put(digest, good)).status, 201);

  for (const reference of ["1", digest]) {
    const head = await call(registry, `/v2/app/manifests/${reference}`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("Content-Type"), DOCKER_MANIFEST);
    assert.equal(head.headers.get("Docker-Content-Digest"), digest);
    assert.equal(head.headers.get("Content-Length"), String(good.length));
  }
  const get = await fetch(`${registry.url}/v2/app/manifests/1`);
  assert.deepEqual(new Uint8Array(await get.arrayBuffer()), good);
  assert.equal((await call(registry, "/v2/app/manifests/2")).status, 404);

  const index = (child: string) =>
    encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: DOCKER_MANIFEST, digest: child, size: good.length }],
    }));
  const orphan = await put("multi", index(digestOf(bytesOf(2))), OCI_INDEX);
  assert.equal(errorCode(orphan), "MANIFEST_BLOB_UNKNOWN");
  assert.equal((await put("multi", index(digest), OCI_INDEX)).status, 201);

  const tags = await call(registry, "/v2/app/tags/list");
  assert.deepEqual(JSON.parse(tags.text), { name: "app", tags: ["1", "multi"] });
  const page = await call(registry, "/v2/app/tags/list?n=1");
  assert.deepEqual(JSON.parse(page.text).tags, ["1"]);
  assert.match(page.headers.get("Link") ?? "", /last=1>; rel="next"/);
  assert.equal((await call(registry, "/v2/nothing/tags/list")).status, 404);
  assert.equal(registry.manifest("app", "multi")?.mediaType, OCI_INDEX);
});

Deno.test("memory registry fault: a status with Retry-After, counted", async () => {
  await using registry = startMemoryRegistry({
    faults: ({ kind, attempt }) =>
      kind === "ping" && attempt === 1
        ? { type: "status", status: 429, headers: { "Retry-After": "3" } }
        : undefined,
  });
  const throttled = await call(registry, "/v2/");
  assert.equal(throttled.status, 429);
  assert.equal(throttled.headers.get("Retry-After"), "3");
  assert.equal(errorCode(throttled), "TOOMANYREQUESTS");
  assert.equal((await call(registry, "/v2/")).status, 200);
  assert.deepEqual(registry.stats.faults, { status: 1 });
  assert.deepEqual(registry.log.map((r) => [r.fault, r.outcome]), [["status", 429], [
    undefined,
    200,
  ]]);
});

Deno.test("memory registry fault: cut mid-PATCH is a network error; status GET resumes", async () => {
  await using registry = startMemoryRegistry({
    faults: ({ kind, attempt }) =>
      kind === "upload-patch" && attempt === 1 ? { type: "cut", afterBytes: 10_000 } : undefined,
  });
  const data = bytesOf(50_000);
  const digest = digestOf(data);
  const location = await startUpload(registry, "app");
  await callFails(registry, location, { method: "PATCH", body: chunkedStream(data, 1000) });
  assert.equal(registry.sessions()[0]?.size, 10_000, "the bytes read before the cut stay");
  assert.equal(registry.log.at(-1)?.outcome, "cut");

  const status = await call(registry, location, { method: "GET" });
  assert.equal(status.status, 204);
  assert.equal(status.headers.get("Range"), "0-9999");
  const rest = await call(registry, status.headers.get("Location") ?? "", {
    method: "PATCH",
    headers: { "Content-Range": "10000-49999" },
    body: data.slice(10_000),
  });
  assert.equal(rest.status, 202);
  const done = await call(registry, withDigest(rest.headers.get("Location") ?? "", digest), {
    method: "PUT",
  });
  assert.equal(done.status, 201);
  assert.deepEqual(registry.blob(digest), data);
  assert.equal(registry.stats.bytesReceived["upload-patch"], 50_000);
});

Deno.test("memory registry fault: a cut with no body drops the connection too", async () => {
  await using registry = startMemoryRegistry({
    faults: ({ kind }) => kind === "ping" ? { type: "cut", afterBytes: 0 } : undefined,
  });
  const error = await callFails(registry, "/v2/");
  assert.match(String(error.cause ?? error), /connection|closed|reset/i);
});

Deno.test("memory registry fault: the final PUT is stored but its response is dropped", async () => {
  await using registry = startMemoryRegistry({
    faults: ({ kind }) => kind === "upload-put" ? { type: "drop-response" } : undefined,
  });
  const data = bytesOf(2000);
  const digest = digestOf(data);
  const location = await startUpload(registry, "app");
  const patched = await call(registry, location, { method: "PATCH", body: data });
  await callFails(registry, withDigest(patched.headers.get("Location") ?? "", digest), {
    method: "PUT",
  });
  assert.ok(registry.hasBlob("app", digest));
  assert.equal(registry.log.at(-1)?.outcome, "dropped");
  const head = await call(registry, `/v2/app/blobs/${digest}`, { method: "HEAD" });
  assert.equal(head.status, 200);
});

Deno.test("memory registry fault: a stall delays the answer", async () => {
  await using registry = startMemoryRegistry({
    faults: ({ kind }) => kind === "ping" ? { type: "stall", ms: 300 } : undefined,
  });
  const started = performance.now();
  assert.equal((await call(registry, "/v2/")).status, 200);
  assert.ok(performance.now() - started >= 290, "answered after the stall");
  assert.deepEqual(registry.stats.faults, { stall: 1 });
});

Deno.test("memory registry: close() does not wait out a stalled request", async () => {
  const registry = startMemoryRegistry({ faults: () => ({ type: "stall", ms: 60_000 }) });
  using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const pending = fetch(`${registry.url}/v2/`, { client }).then(
    (response) => response.text(),
    (error: unknown) => error,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  const started = performance.now();
  await registry.close();
  assert.ok(performance.now() - started < 5000);
  assert.ok((await pending) instanceof TypeError);
});

Deno.test("memory registry auth: Basic challenge and credentials", async () => {
  await using registry = startMemoryRegistry({ auth: { username: "u", password: "p:w" } });
  const denied = await call(registry, "/v2/");
  assert.equal(denied.status, 401);
  assert.equal(denied.headers.get("WWW-Authenticate"), 'Basic realm="memory-registry"');
  const wrong = await call(registry, "/v2/", {
    headers: { Authorization: `Basic ${btoa("u:x")}` },
  });
  assert.equal(wrong.status, 401);
  const ok = await call(registry, "/v2/", { headers: { Authorization: `Basic ${btoa("u:p:w")}` } });
  assert.equal(ok.status, 200);
});

Deno.test("memory registry auth: Bearer challenge, token endpoint, scopes", async () => {
  await using registry = startMemoryRegistry({
    auth: { username: "u", password: "p", scheme: "bearer" },
  });
  const digest = registry.seedBlob("base", bytesOf(10));
  const denied = await call(registry, "/v2/app/blobs/uploads/", { method: "POST" });
  assert.equal(denied.status, 401);
  const challenge = denied.headers.get("WWW-Authenticate") ?? "";
  assert.equal(
    challenge,
    `Bearer realm="${registry.url}/token",service="memory-registry",` +
      `scope="repository:app:pull,push"`,
  );

  const basic = { Authorization: `Basic ${btoa("u:p")}` };
  const refused = await call(registry, "/token?scope=repository:app:pull");
  assert.equal(refused.status, 401);
  const pullOnly = await call(registry, "/token?scope=repository:base:pull", { headers: basic });
  const pullAuth = { Authorization: `Bearer ${JSON.parse(pullOnly.text).token}` };
  const head = await call(registry, `/v2/base/blobs/${digest}`, {
    method: "HEAD",
    headers: pullAuth,
  });
  assert.equal(head.status, 200);
  const noPush = await call(registry, "/v2/base/blobs/uploads/", {
    method: "POST",
    headers: pullAuth,
  });
  assert.equal(noPush.status, 401);
  assert.match(noPush.headers.get("WWW-Authenticate") ?? "", /scope="repository:base:pull,push"/);
  const pushToken = await call(
    registry,
    "/token?service=memory-registry&scope=repository:app:pull,push",
    { headers: basic },
  );
  assert.equal(pushToken.status, 200);
  const { token, access_token, expires_in } = JSON.parse(pushToken.text);
  assert.equal(token, access_token);
  assert.equal(expires_in, 300);
  const bearer = { Authorization: `Bearer ${token}` };
  assert.equal((await call(registry, "/v2/", { headers: bearer })).status, 200);
  assert.equal((await call(registry, "/v2/other/tags/list", { headers: bearer })).status, 401);

  // No pull on the source repository: the mount falls back to an upload session.
  const noMount = await call(registry, `/v2/app/blobs/uploads/?mount=${digest}&from=base`, {
    method: "POST",
    headers: bearer,
  });
  assert.equal(noMount.status, 202);

  const form = new URLSearchParams({
    grant_type: "password",
    username: "u",
    password: "p",
    client_id: "test",
    scope: "repository:app:pull,push repository:base:pull",
  });
  const posted = await call(registry, "/token", { method: "POST", body: form });
  assert.equal(posted.status, 200);
  const both = JSON.parse(posted.text);
  assert.equal(typeof both.refresh_token, "string");
  const mounted = await call(registry, `/v2/app/blobs/uploads/?mount=${digest}&from=base`, {
    method: "POST",
    headers: { Authorization: `Bearer ${both.access_token}` },
  });
  assert.equal(mounted.status, 201);

  const refreshed = await call(registry, "/token", {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: both.refresh_token,
      scope: "repository:app:pull",
    }),
  });
  assert.equal(refreshed.status, 200);
});

Deno.test("memory registry redirect: blobs and uploads on another origin", async () => {
  await using registry = startMemoryRegistry({
    auth: { username: "u", password: "p" },
    redirect: { blobs: true, uploads: true },
  });
  assert.ok(registry.redirectUrl && registry.redirectUrl !== registry.url);
  const auth = { Authorization: `Basic ${btoa("u:p")}` };
  const data = bytesOf(3000);
  const digest = digestOf(data);

  const started = await call(registry, "/v2/app/blobs/uploads/", { method: "POST", headers: auth });
  const location = started.headers.get("Location") ?? "";
  assert.ok(location.startsWith(`${registry.redirectUrl}/v2/app/blobs/uploads/`), location);
  const patched = await call(registry, location, { method: "PATCH", body: data });
  assert.equal(patched.status, 202);
  const next = patched.headers.get("Location") ?? "";
  assert.ok(next.startsWith(registry.redirectUrl ?? "-"));
  const put = await call(registry, withDigest(next, digest), { method: "PUT" });
  assert.equal(put.status, 201);

  const head = await call(registry, `/v2/app/blobs/${digest}`, {
    method: "HEAD",
    headers: auth,
    redirect: "manual",
  });
  assert.equal(head.status, 307);
  const target = head.headers.get("Location") ?? "";
  assert.equal(new URL(target).origin, registry.redirectUrl);
  const followed = await call(registry, target, { headers: auth });
  assert.equal(followed.status, 200);
  assert.equal(followed.text.length, 3000);
  const last = registry.log.at(-1);
  assert.equal(last?.origin, "redirect");
  assert.equal(last?.authorization, true, "the test sent Authorization across origins");
  assert.equal(registry.log.filter((r) => r.origin === "redirect" && r.authorization).length, 1);
});
