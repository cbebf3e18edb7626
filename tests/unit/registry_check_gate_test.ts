/**
 * A request that has to wait for its bearer token also waits for the registry check in flight
 * (`RegistryClient.shareConnectionWith`) and then goes out on the check's connection — but only
 * while that is worth it: a check slower than twice the token's time is not waited for, and a
 * request that finds its token ready goes at once. Local servers with set answer delays stand in
 * for a far registry and its token service.
 */

import assert from "node:assert/strict";
import { RegistryClient } from "../../lib/registry/client.ts";

const BLOB = `sha256:${"0".repeat(64)}`;

interface Seen {
  path: string;
  /** The client's port: one per connection. */
  connection: number;
  at: number;
}

/** A bearer registry answering `/v2/` after `checkMs`, its token service after `tokenMs`. */
function registryWithDelays(checkMs: number, tokenMs: number) {
  const seen: Seen[] = [];
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const tokens = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    await sleep(tokenMs);
    return Response.json({ token: "t-1", expires_in: 300 });
  });
  const realm = new URL(`http://127.0.0.1:${tokens.addr.port}/token`);
  const registry = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request, info) => {
      const path = new URL(request.url).pathname;
      seen.push({ path, connection: info.remoteAddr.port, at: performance.now() });
      if (request.headers.get("authorization") === "Bearer t-1") {
        return new Response(null, { status: 404 });
      }
      if (path === "/v2/") await sleep(checkMs);
      return new Response("", {
        status: 401,
        headers: { "www-authenticate": `Bearer realm="${realm.href}",service="svc"` },
      });
    },
  );
  const client = new RegistryClient({
    reference: {
      registry: "gate.test",
      apiBase: new URL(`http://127.0.0.1:${registry.addr.port}`),
      repository: "team/app",
    },
    credentials: { username: "bob", password: "gate-Pa55" },
  });
  return {
    seen,
    realm,
    client,
    [Symbol.asyncDispose]: async () => {
      client.close();
      await registry.shutdown();
      await tokens.shutdown();
    },
  };
}

/** Starts the token fetch and the check together, as a run does, then looks a blob up. */
async function firstRequest(server: ReturnType<typeof registryWithDelays>): Promise<Seen> {
  server.client.assumeBearer({ realm: server.realm, service: "svc" });
  const check = server.client.probe();
  server.client.shareConnectionWith(check);
  await server.client.blobExists(BLOB);
  await check;
  const lookup = server.seen.find((request) => request.path.includes("/blobs/"));
  assert.ok(lookup !== undefined);
  return lookup;
}

Deno.test("a request waiting for its token waits for a check that comes soon after, and uses its connection", async () => {
  await using server = registryWithDelays(250, 150);
  const lookup = await firstRequest(server);
  const check = server.seen[0];
  assert.equal(check?.path, "/v2/");
  assert.equal(lookup.connection, check.connection, "sent on the check's connection");
  assert.ok(lookup.at - check.at >= 240, "after the check was answered");
});

Deno.test("a check slower than twice the token's time is not waited for", async () => {
  await using server = registryWithDelays(1200, 100);
  const lookup = await firstRequest(server);
  const check = server.seen[0];
  assert.equal(check?.path, "/v2/");
  assert.notEqual(lookup.connection, check.connection, "on a connection of its own");
  assert.ok(lookup.at - check.at < 700, `at most the token's time more: ${lookup.at - check.at}`);
});

Deno.test("a request that finds its token ready does not wait for a check in flight", async () => {
  await using server = registryWithDelays(600, 0);
  server.client.assumeBearer({ realm: server.realm, service: "svc" });
  await server.client.blobExists(BLOB);
  const check = server.client.probe();
  server.client.shareConnectionWith(check);
  const started = performance.now();
  await server.client.blobExists(BLOB);
  assert.ok(performance.now() - started < 300, "not held back by the check");
  await check;
});
