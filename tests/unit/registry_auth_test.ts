import assert from "node:assert/strict";
import { Authorizer } from "../../lib/registry/auth.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import {
  ANONYMOUS,
  basicAuthorization,
  type Credentials,
} from "../../lib/credentials/credentials.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import { tokenLifetime } from "../../lib/registry/token_service.ts";
import { createTransport } from "../../lib/registry/transport.ts";

interface Seen {
  url: string;
  headers: Headers;
}

interface Server {
  url: string;
  requests: Seen[];
  close(): Promise<void>;
}

function serve(route: (request: Request) => Response | Promise<Response>): Server {
  const requests: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    requests.push({ url: request.url, headers: new Headers(request.headers) });
    return route(request);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

const PASSWORD = "pa55-w0rd!";
const USER: Credentials = { username: "bob", password: PASSWORD };

function secretFree(error: unknown, ...secrets: string[]): void {
  assert.ok(error instanceof Error);
  const text = `${error.message} ${(error as RegistryError).hint ?? ""}`;
  for (const secret of secrets) assert.ok(!text.includes(secret), `"${text}" leaks a secret`);
}

Deno.test("token lifetime: expires_in, the 60 s default and issued_at", () => {
  const now = Date.parse("2026-01-01T00:10:00Z");
  assert.deepEqual(tokenLifetime({ expires_in: 300 }, now), {
    expiresAt: now + 300_000,
    lifetimeMs: 300_000,
  });
  assert.deepEqual(tokenLifetime({}, now), { expiresAt: now + 60_000, lifetimeMs: 60_000 });
  assert.deepEqual(tokenLifetime({ expires_in: 0 }, now).lifetimeMs, 60_000);
  assert.deepEqual(tokenLifetime({ expires_in: "300" }, now).lifetimeMs, 60_000);
  assert.equal(
    tokenLifetime({ expires_in: 300, issued_at: "2026-01-01T00:09:00Z" }, now).expiresAt,
    now + 240_000,
    "a token issued a minute ago has four minutes left",
  );
  assert.equal(
    tokenLifetime({ expires_in: 300, issued_at: "2026-01-01T00:00:00Z" }, now).expiresAt,
    now + 150_000,
    "a registry clock far behind ours takes at most half the life",
  );
  assert.equal(
    tokenLifetime({ expires_in: 300, issued_at: "2026-01-01T00:20:00Z" }, now).expiresAt,
    now + 300_000,
    "a future issued_at is ignored",
  );
});

Deno.test("Basic credentials are UTF-8, identity tokens need a user name", () => {
  assert.equal(
    basicAuthorization({ username: "bob", password: "pässwörd" }),
    "Basic Ym9iOnDDpHNzd8O2cmQ=",
  );
  assert.equal(basicAuthorization({ identityToken: "t" }), undefined);
  assert.equal(
    basicAuthorization({ identityToken: "tok", username: "00000000-0000-0000-0000-000000000000" }),
    `Basic ${btoa("00000000-0000-0000-0000-000000000000:tok")}`,
  );
  assert.equal(basicAuthorization(ANONYMOUS), undefined);
});

/** A token service: issues `t1`, `t2`, … with `expires_in` = lifetime, or fails with `status`. */
function tokenServer(lifetime: number, status = 200): Server & { issued: () => number } {
  let issued = 0;
  const server = serve(() => {
    if (status !== 200) {
      return new Response("busy", { status, headers: { "retry-after": "3" } });
    }
    issued++;
    return Response.json({ access_token: `t${issued}`, expires_in: lifetime });
  });
  return { ...server, issued: () => issued };
}

Deno.test("tokens are refreshed shortly before they expire and shared by concurrent requests", async () => {
  const tokens = tokenServer(100);
  const transport = createTransport();
  let now = 1_000_000;
  const auth = new Authorizer(transport, USER, {
    registry: "r.example",
    scopes: ["repository:a:pull,push"],
    now: () => now,
  });
  try {
    const challenge = `Bearer realm="${tokens.url}/token",service="svc"`;
    await auth.challenged(challenge, new URL("http://r.example/v2/"), {
      header: undefined,
      generation: 0,
    }, "GET /v2/");
    assert.equal(auth.scheme, "bearer");
    const first = await auth.ticket();
    assert.equal(first.header, "Bearer t1");
    now += 89_000;
    assert.equal((await auth.ticket()).header, "Bearer t1", "11 s left of 100: still good");
    now += 2_000;
    const [a, b, c] = await Promise.all([auth.ticket(), auth.ticket(), auth.ticket()]);
    assert.equal(a.header, "Bearer t2", "9 s left of 100: refreshed");
    assert.equal(b.header, "Bearer t2");
    assert.equal(c.header, "Bearer t2");
    assert.equal(tokens.issued(), 2, "concurrent callers share one fetch");

    auth.addScope("repository:b:pull");
    assert.equal((await auth.ticket()).header, "Bearer t3", "a new scope needs a new token");
    const scopes = new URL(tokens.requests.at(-1)?.url ?? "").searchParams.getAll("scope");
    assert.deepEqual(scopes, ["repository:a:pull,push", "repository:b:pull"]);
    auth.removeScope("repository:b:pull");
    assert.equal((await auth.ticket()).header, "Bearer t4");
  } finally {
    transport.close();
    await tokens.close();
  }
});

Deno.test("the token GET carries service, each scope, the account and Basic credentials", async () => {
  const tokens = tokenServer(300);
  const transport = createTransport();
  const auth = new Authorizer(transport, USER, {
    registry: "r",
    scopes: ["repository:a/b:pull,push"],
  });
  try {
    await auth.challenged(
      `Bearer realm="/token?tenant=1",service="reg.example"`,
      new URL(`${tokens.url}/v2/a/b/blobs/uploads/`),
      { header: undefined, generation: 0 },
      "POST upload",
    );
    const request = tokens.requests[0];
    assert.ok(request !== undefined);
    const url = new URL(request.url);
    assert.equal(url.pathname, "/token");
    assert.equal(url.searchParams.get("tenant"), "1", "the realm's own query is kept");
    assert.equal(url.searchParams.get("service"), "reg.example");
    assert.deepEqual(url.searchParams.getAll("scope"), ["repository:a/b:pull,push"]);
    assert.equal(url.searchParams.get("account"), "bob");
    assert.equal(request.headers.get("authorization"), basicAuthorization(USER));
  } finally {
    transport.close();
    await tokens.close();
  }
});

Deno.test("a token service failure is a retryable network error with Retry-After", async () => {
  const tokens = tokenServer(300, 503);
  const transport = createTransport();
  const auth = new Authorizer(transport, USER, { registry: "r", scopes: [] });
  try {
    await assert.rejects(
      auth.challenged(`Bearer realm="${tokens.url}/token"`, new URL("http://r/v2/"), {
        header: undefined,
        generation: 0,
      }, "GET"),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.kind, "network");
        assert.equal(error.retryable, true);
        assert.equal(error.retryAfterMs, 3000);
        return true;
      },
    );
  } finally {
    transport.close();
    await tokens.close();
  }
});

Deno.test("a registry that keeps answering 401 gets one fresh token and one retry, never a loop", async () => {
  let registryUrl = "";
  const tokens = tokenServer(300);
  const registry = serve(() =>
    new Response(
      JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }),
      {
        status: 401,
        headers: {
          "www-authenticate":
            `Bearer realm="${tokens.url}/token",service="svc",error="invalid_token"`,
        },
      },
    )
  );
  registryUrl = registry.url;
  const client = new RegistryClient({
    reference: { registry: "r.example", apiBase: new URL(registryUrl), repository: "a" },
    credentials: USER,
  });
  try {
    await assert.rejects(client.ping(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.kind, "auth");
      assert.match(error.message, /credentials of bob were refused by r\.example/);
      secretFree(error, PASSWORD, "t1");
      return true;
    });
    assert.equal(registry.requests.length, 2, "one request without a token, one with");
    assert.equal(registry.requests[1]?.headers.get("authorization"), "Bearer t1");
    assert.equal(tokens.issued(), 1);

    const session = { location: new URL(`${registryUrl}/v2/a/blobs/uploads/1`), offset: 0 };
    await assert.rejects(client.patchChunk(session, new Uint8Array(4)), /were refused/);
    assert.equal(registry.requests.length, 3, "a token that never worked is not retried");
    assert.equal(tokens.issued(), 1, "and no new token is fetched for it");
  } finally {
    client.close();
    await registry.close();
    await tokens.close();
  }
});

Deno.test("Basic registries: credentials on the retry; anonymous users are told to log in", async () => {
  const registry = serve((request) =>
    request.headers.get("authorization") === basicAuthorization(USER)
      ? new Response("{}", { status: 200 })
      : new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="registry"' } })
  );
  const apiBase = new URL(registry.url);
  const good = new RegistryClient({
    reference: { registry: "b", apiBase, repository: "x" },
    credentials: USER,
  });
  const anonymous = new RegistryClient({ reference: { registry: "b", apiBase, repository: "x" } });
  const wrong = new RegistryClient({
    reference: { registry: "b", apiBase, repository: "x" },
    credentials: { username: "bob", password: "nope-123" },
  });
  try {
    await good.ping();
    assert.equal(good.authScheme, "basic");
    await good.ping();
    assert.equal(registry.requests.length, 3, "Basic is sent up front once the scheme is known");
    await assert.rejects(anonymous.ping(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.kind, "auth");
      assert.match(error.message, /registry b requires credentials/);
      assert.match(error.hint ?? "", /--username/);
      return true;
    });
    await assert.rejects(wrong.ping(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.match(error.message, /credentials of bob were refused by b/);
      secretFree(error, "nope-123");
      return true;
    });
  } finally {
    good.close();
    anonymous.close();
    wrong.close();
    await registry.close();
  }
});

Deno.test("a 401 mid-stream is retryable with a fresh token; a body factory is replayed at once", async () => {
  let accepted = "";
  const tokens = tokenServer(300);
  const registry = serve(async (request) => {
    const body = await request.text();
    const ok = request.method === "GET" ? 200 : 202;
    if (request.headers.get("authorization") !== `Bearer ${accepted}`) {
      return new Response("", {
        status: 401,
        headers: { "www-authenticate": `Bearer realm="${tokens.url}/token"` },
      });
    }
    return new Response(null, {
      status: ok,
      headers: { location: `/v2/a/blobs/uploads/1?n=${body.length}` },
    });
  });
  const client = new RegistryClient({
    reference: { registry: "r", apiBase: new URL(registry.url), repository: "a" },
    credentials: USER,
  });
  try {
    accepted = "t1";
    await client.ping();
    accepted = "t2";
    const session = { location: new URL(`${registry.url}/v2/a/blobs/uploads/1`), offset: 0 };
    const stream = ReadableStream.from([new TextEncoder().encode("abc")]);
    await assert.rejects(client.patchStream(session, stream), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.retryable, true);
      assert.equal(error.status, 401);
      return true;
    });
    assert.equal(tokens.issued(), 2, "the fresh token is already there for the caller's retry");
    let opened = 0;
    const factory = (): ReadableStream<Uint8Array> => {
      opened++;
      return ReadableStream.from([new TextEncoder().encode("abcd")]);
    };
    await client.patchStream(session, factory);
    assert.equal(opened, 1, "the caller's retry goes through with the fresh token");
    accepted = "t3";
    const next = await client.patchStream(session, factory);
    assert.equal(opened, 3, "after a 401 the factory is opened again and the request replayed");
    assert.equal(tokens.issued(), 3);
    assert.equal(next.offset, 4);
    assert.equal(next.location.search, "?n=4");
  } finally {
    client.close();
    await registry.close();
    await tokens.close();
  }
});

/** A registry that wants a bearer token for everything, and the `delete` action for a DELETE. */
function tokenRegistry(tokens: Server): Server {
  return serve((request) => {
    const path = new URL(request.url).pathname;
    const scope = request.method === "DELETE" ? "repository:a:delete" : "repository:a:pull,push";
    if (request.headers.get("authorization") === null || request.method === "DELETE") {
      return new Response("{}", {
        status: 401,
        headers: {
          "www-authenticate": `Bearer realm="${tokens.url}/token",service="svc",scope="${scope}"`,
        },
      });
    }
    return path.endsWith("/tags/list") ? Response.json({ tags: null }) : new Response("{}");
  });
}

Deno.test("the tag question says when it met a bearer challenge, and is then not asked again", async () => {
  const tokens = tokenServer(300);
  const registry = tokenRegistry(tokens);
  const basic = serve((request) =>
    request.headers.get("authorization") === basicAuthorization(USER)
      ? Response.json({ tags: ["1"] })
      : new Response("{}", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } })
  );
  const client = (url: string): RegistryClient =>
    new RegistryClient({
      reference: { registry: "r", apiBase: new URL(url), repository: "a" },
      credentials: USER,
    });
  const bearer = client(registry.url);
  const basicClient = client(basic.url);
  try {
    let challenged = 0;
    assert.equal(await bearer.hasTags(undefined, () => challenged++), undefined);
    assert.equal(challenged, 1, "the first question met the challenge");
    const asked = registry.requests.filter((request) => request.url.includes("/tags/list"));
    assert.equal(asked.length, 1, "and was not asked again with the token");
    assert.equal(await bearer.hasTags(undefined, () => challenged++), false);
    assert.equal(challenged, 1, "a question sent with the token meets none");
    assert.equal(await basicClient.hasTags(undefined, () => challenged++), true);
    assert.equal(challenged, 1, "a Basic challenge is answered at once, without a token");
    assert.equal(tokens.issued(), 1);
  } finally {
    bearer.close();
    basicClient.close();
    await registry.close();
    await basic.close();
    await tokens.close();
  }
});

Deno.test("an upload's cancel answered 401 is not sent again and fetches no other token", async () => {
  const tokens = tokenServer(300);
  const registry = tokenRegistry(tokens);
  const client = new RegistryClient({
    reference: { registry: "r", apiBase: new URL(registry.url), repository: "a" },
    credentials: USER,
  });
  try {
    await client.ping();
    assert.equal(tokens.issued(), 1);
    const session = { location: new URL(`${registry.url}/v2/a/blobs/uploads/1`), offset: 0 };
    await client.cancelUpload(session);
    const deletes = registry.requests.filter((request) => request.url === session.location.href);
    assert.equal(deletes.length, 1, "one DELETE");
    assert.equal(deletes[0]?.headers.get("authorization"), "Bearer t1");
    assert.equal(tokens.issued(), 1, "no token fetched for the refused cancel");
  } finally {
    client.close();
    await registry.close();
    await tokens.close();
  }
});
