/**
 * The token realm an earlier run learnt: kept per registry in the cache directory (realm and
 * service only), fetched from at once by the next run, and forgotten for the registry's own
 * challenge when it no longer works. The registry check (`probe`) learns a challenge without
 * sending itself again.
 */

import assert from "node:assert/strict";
import { RegistryClient } from "../../lib/registry/client.ts";
import type { Credentials } from "../../lib/credentials/credentials.ts";
import { loadRealm, saveRealm } from "../../lib/state/realm_memory.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const USER: Credentials = { username: "bob", password: "realm-Pa55" };

interface Seen {
  path: string;
  authorization: string | null;
}

/** A bearer registry whose token service lives on another server, both recording requests. */
function bearerRegistry(): {
  registry: string;
  realm: URL;
  api: Seen[];
  tokens: Seen[];
  close(): Promise<void>;
} {
  const api: Seen[] = [];
  const tokens: Seen[] = [];
  const tokenServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    tokens.push({
      path: new URL(request.url).pathname,
      authorization: request.headers.get("authorization"),
    });
    return Response.json({ token: "t-1", expires_in: 300 });
  });
  const realm = new URL(`http://127.0.0.1:${tokenServer.addr.port}/token`);
  const registry = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const authorization = request.headers.get("authorization");
    api.push({ path: new URL(request.url).pathname, authorization });
    if (authorization === "Bearer t-1") return new Response(null, { status: 200 });
    return new Response("", {
      status: 401,
      headers: { "www-authenticate": `Bearer realm="${realm.href}",service="svc"` },
    });
  });
  return {
    registry: `http://127.0.0.1:${registry.addr.port}`,
    realm,
    api,
    tokens,
    close: async () => {
      await registry.shutdown();
      await tokenServer.shutdown();
    },
  };
}

function client(base: string): RegistryClient {
  return new RegistryClient({
    reference: { registry: "realm.test", apiBase: new URL(base), repository: "team/app" },
    credentials: USER,
  });
}

Deno.test("realm memory: kept per registry, realm and service only; foreign files are ignored", async () => {
  await using dir = await tempDir("realm-memory-");
  assert.equal(await loadRealm(dir.path, "a.example"), undefined, "nothing kept yet");
  const realm = { realm: new URL("https://auth.example/token?x=1"), service: "a.example" };
  await saveRealm(dir.path, "a.example", realm, undefined);
  assert.deepEqual(await loadRealm(dir.path, "a.example"), realm);
  assert.equal(await loadRealm(dir.path, "b.example"), undefined, "another registry's is not used");
  const files = [...Deno.readDirSync(dir.path)];
  assert.equal(files.length, 1);
  const text = await Deno.readTextFile(`${dir.path}/${files[0]?.name}`);
  assert.deepEqual(Object.keys(JSON.parse(text)).sort(), [
    "format",
    "realm",
    "registry",
    "service",
    "version",
  ]);
  await Deno.writeTextFile(`${dir.path}/${files[0]?.name}`, text.replace("https:", "file:"));
  assert.equal(await loadRealm(dir.path, "a.example"), undefined, "only http(s) realms");
});

Deno.test("probe: one unauthorised GET /v2/ learns the challenge and fetches the token, not sent again", async () => {
  const server = bearerRegistry();
  const registry = client(server.registry);
  try {
    await registry.probe();
    assert.deepEqual(server.api, [{ path: "/v2/", authorization: null }]);
    assert.equal(server.tokens.length, 1, "the token is fetched from the challenge");
    assert.equal(registry.bearerRealm?.realm.href, server.realm.href);
    assert.equal(registry.bearerRealm?.service, "svc");
    await registry.startUpload().catch(() => {});
    assert.equal(server.api[1]?.authorization, "Bearer t-1", "the next request carries it");
    assert.equal(server.tokens.length, 1);
  } finally {
    registry.close();
    await server.close();
  }
});

Deno.test("assumed realm: the token is fetched before any challenge; a dead realm is forgotten", async () => {
  const server = bearerRegistry();
  const remembered = client(server.registry);
  const stale = client(server.registry);
  try {
    remembered.assumeBearer({ realm: server.realm, service: "svc" });
    await remembered.blobExists(`sha256:${"0".repeat(64)}`);
    assert.deepEqual(server.api.map((seen) => seen.authorization), ["Bearer t-1"]);
    assert.equal(server.tokens.length, 1, "fetched once, before the first request");
    assert.equal(remembered.bearerRealm, undefined, "an assumed realm is not written back");

    server.api.length = 0;
    const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const deadRealm = new URL(`http://127.0.0.1:${(gone.addr as Deno.NetAddr).port}/token`);
    gone.close();
    stale.assumeBearer({ realm: deadRealm, service: "svc" });
    await stale.blobExists(`sha256:${"0".repeat(64)}`);
    assert.deepEqual(
      server.api.map((seen) => seen.authorization),
      [null, "Bearer t-1"],
      "the dead realm is dropped: the registry's challenge leads to the right one",
    );
    assert.equal(stale.bearerRealm?.realm.href, server.realm.href, "and that one is kept");
  } finally {
    remembered.close();
    stale.close();
    await server.close();
  }
});
