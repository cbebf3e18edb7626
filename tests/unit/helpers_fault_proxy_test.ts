import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { PusherError } from "../../lib/errors.ts";
import { type FaultProxy, type ProxyFaultRule, startFaultProxy } from "../helpers/fault_proxy.ts";
import { type MemoryRegistry, startMemoryRegistry } from "../helpers/memory_registry.ts";
import { chunkedStream } from "../helpers/byte_streams.ts";

function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function bytesOf(size: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) % 256);
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** One request through a fresh connection; a network error comes back as `"network-error"`. */
async function call(
  base: string,
  path: string,
  init: RequestInit = {},
): Promise<Answer | "network-error"> {
  using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const response = await fetch(new URL(path, base), { ...init, client });
    return { status: response.status, headers: response.headers, text: await response.text() };
  } catch (error) {
    assert.ok(error instanceof TypeError, `expected a network error, got ${error}`);
    return "network-error";
  }
}

async function answer(base: string, path: string, init: RequestInit = {}): Promise<Answer> {
  const result = await call(base, path, init);
  assert.notEqual(result, "network-error", `${init.method ?? "GET"} ${path} failed`);
  return result as Answer;
}

function setup(
  rules: ProxyFaultRule[],
  extra: { maxFaults?: number; cutBytes?: [number, number]; stallMs?: [number, number] } = {},
): { registry: MemoryRegistry; proxy: FaultProxy } & AsyncDisposable {
  const registry = startMemoryRegistry();
  const proxy = startFaultProxy({ upstream: registry.url, seed: 42, rules, ...extra });
  return {
    registry,
    proxy,
    async [Symbol.asyncDispose]() {
      await proxy.close();
      await registry.close();
    },
  };
}

Deno.test("fault proxy: forwards a whole push and counts the bytes", async () => {
  await using env = setup([]);
  const { registry, proxy } = env;
  const data = bytesOf(200_000);
  const digest = digestOf(data);
  const head = await answer(proxy.url, `/v2/app/blobs/${digest}`, { method: "HEAD" });
  assert.equal(head.status, 404);
  const start = await answer(proxy.url, "/v2/app/blobs/uploads/", { method: "POST" });
  assert.equal(start.status, 202);
  const location = start.headers.get("Location") ?? "";
  const patch = await answer(proxy.url, location, {
    method: "PATCH",
    body: chunkedStream(data, 4096),
  });
  assert.equal(patch.status, 202);
  assert.equal(patch.headers.get("Range"), "0-199999");
  const put = await answer(proxy.url, `${patch.headers.get("Location")}&digest=${digest}`, {
    method: "PUT",
  });
  assert.equal(put.status, 201);
  const stored = await answer(proxy.url, `/v2/app/blobs/${digest}`, { method: "HEAD" });
  assert.equal(stored.status, 200);
  assert.equal(stored.headers.get("Content-Length"), "200000");
  assert.equal(stored.headers.get("Docker-Content-Digest"), digest);

  assert.deepEqual(registry.blob(digest), data);
  assert.equal(proxy.stats.bytesForwarded["upload-patch"], 200_000);
  assert.equal(proxy.stats.bytesReceived["upload-patch"], 200_000);
  assert.equal(registry.stats.bytesReceived["upload-patch"], 200_000);
  assert.deepEqual(proxy.stats.requests, {
    "blob-head": 2,
    "upload-start": 1,
    "upload-patch": 1,
    "upload-put": 1,
  });
  assert.deepEqual(proxy.stats.faults, {});
  assert.deepEqual(proxy.log.map((r) => r.outcome), [404, 202, 202, 201, 200]);
});

Deno.test("fault proxy: records each request's Content-Range and body size", async () => {
  await using env = setup([]);
  const { proxy } = env;
  const data = bytesOf(10_000);
  const start = await answer(proxy.url, "/v2/app/blobs/uploads/", { method: "POST" });
  let location = start.headers.get("Location") ?? "";
  for (const [from, to] of [[0, 6000], [6000, 10_000]] as const) {
    const patch = await answer(proxy.url, location, {
      method: "PATCH",
      headers: { "Content-Range": `${from}-${to - 1}` },
      body: data.slice(from, to),
    });
    assert.equal(patch.status, 202);
    location = patch.headers.get("Location") ?? "";
  }
  const put = await answer(proxy.url, `${location}&digest=${digestOf(data)}`, { method: "PUT" });
  assert.equal(put.status, 201);
  assert.deepEqual(
    proxy.log.map(({ method, contentRange, bodyBytes }) => ({ method, contentRange, bodyBytes })),
    [
      { method: "POST", contentRange: undefined, bodyBytes: 0 },
      { method: "PATCH", contentRange: "0-5999", bodyBytes: 6000 },
      { method: "PATCH", contentRange: "6000-9999", bodyBytes: 4000 },
      { method: "PUT", contentRange: undefined, bodyBytes: 0 },
    ],
  );
});

Deno.test("fault proxy: rewrites Location and realm that point at the upstream", async () => {
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const origin = new URL(req.url).origin;
    return new Response(null, {
      status: 202,
      headers: {
        Location: `${origin}/v2/app/blobs/uploads/1?_state=x`,
        "WWW-Authenticate": `Bearer realm="${origin}/token",service="s"`,
      },
    });
  });
  try {
    await using proxy = startFaultProxy({
      upstream: `http://127.0.0.1:${upstream.addr.port}`,
      seed: 1,
    });
    const result = await answer(proxy.url, "/v2/app/blobs/uploads/", { method: "POST" });
    assert.equal(result.headers.get("Location"), `${proxy.url}/v2/app/blobs/uploads/1?_state=x`);
    assert.equal(
      result.headers.get("WWW-Authenticate"),
      `Bearer realm="${proxy.url}/token",service="s"`,
    );
  } finally {
    await upstream.shutdown();
  }
});

Deno.test("fault proxy: only a loopback http upstream is accepted", () => {
  for (const upstream of ["http://example.com:5000", "https://127.0.0.1:5000", "http://10.0.0.1"]) {
    assert.throws(
      () => startFaultProxy({ upstream, seed: 1 }),
      (error: unknown) => error instanceof PusherError && error.kind === "usage",
    );
  }
});

Deno.test("fault proxy: 503 and 429 + Retry-After are answered without the upstream", async () => {
  await using env = setup(
    [
      { type: "unavailable", rate: 1, kinds: ["ping"] },
      { type: "throttle", rate: 1, kinds: ["upload-start"] },
    ],
    {},
  );
  const { registry, proxy } = env;
  const ping = await answer(proxy.url, "/v2/");
  assert.equal(ping.status, 503);
  const start = await answer(proxy.url, "/v2/app/blobs/uploads/?digest=sha256:00", {
    method: "POST",
    body: bytesOf(1000),
  });
  assert.equal(start.status, 429);
  assert.match(start.headers.get("Retry-After") ?? "", /^[01]$/);
  assert.equal(registry.log.length, 0, "nothing reached the upstream");
  assert.equal(proxy.stats.bytesReceived["upload-start"], 1000);
  assert.equal(proxy.stats.bytesForwarded["upload-start"], undefined);
  assert.deepEqual(proxy.stats.faults, { unavailable: 1, throttle: 1 });
});

Deno.test("fault proxy: a cut drops the client and leaves the upstream a partial body", async () => {
  await using env = setup([{ type: "cut", rate: 1, kinds: ["upload-patch"] }], {
    maxFaults: 1,
    cutBytes: [30_000, 30_000],
  });
  const { registry, proxy } = env;
  const data = bytesOf(100_000);
  const start = await answer(proxy.url, "/v2/app/blobs/uploads/", { method: "POST" });
  const location = start.headers.get("Location") ?? "";
  const result = await call(proxy.url, location, {
    method: "PATCH",
    body: chunkedStream(data, 1000),
  });
  assert.equal(result, "network-error");
  assert.equal(proxy.stats.bytesForwarded["upload-patch"], 30_000);
  assert.equal(proxy.log.at(-1)?.outcome, "cut");
  // The upstream saw an incomplete request; whatever it read stays in the session.
  for (let i = 0; i < 50 && registry.log.at(-1)?.outcome !== "cut"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(registry.log.at(-1)?.outcome, "cut");
  assert.equal(registry.sessions()[0]?.size, 30_000);

  // maxFaults reached: the resumed upload goes through.
  const status = await answer(proxy.url, location, { method: "GET" });
  const size = registry.sessions()[0]?.size ?? 0;
  const rest = await answer(proxy.url, status.headers.get("Location") ?? "", {
    method: "PATCH",
    headers: { "Content-Range": `${size}-99999` },
    body: data.slice(size),
  });
  assert.equal(rest.status, 202);
  assert.equal(proxy.stats.bytesForwarded["upload-patch"], 30_000 + 100_000 - size);
});

Deno.test("fault proxy: drop-response forwards the final PUT, then drops the answer", async () => {
  await using env = setup([{ type: "drop-response", rate: 1 }]);
  const { registry, proxy } = env;
  const data = bytesOf(5000);
  const digest = digestOf(data);
  const start = await answer(proxy.url, "/v2/app/blobs/uploads/", { method: "POST" });
  const patch = await answer(proxy.url, start.headers.get("Location") ?? "", {
    method: "PATCH",
    body: data,
  });
  const put = await call(proxy.url, `${patch.headers.get("Location")}&digest=${digest}`, {
    method: "PUT",
  });
  assert.equal(put, "network-error");
  assert.ok(registry.hasBlob("app", digest), "the upstream committed the blob");
  assert.equal(registry.log.at(-1)?.outcome, 201);
  assert.equal(proxy.log.at(-1)?.outcome, "dropped");
  assert.deepEqual(proxy.stats.faults, { "drop-response": 1 });
});

Deno.test("fault proxy: a stall delays forwarding", async () => {
  await using env = setup([{ type: "stall", rate: 1, kinds: ["ping"] }], { stallMs: [250, 250] });
  const started = performance.now();
  assert.equal((await answer(env.proxy.url, "/v2/")).status, 200);
  assert.ok(performance.now() - started >= 240);
  assert.deepEqual(env.proxy.stats.faults, { stall: 1 });
});

Deno.test("fault proxy: the schedule is deterministic per seed and off when disabled", async () => {
  const rules: ProxyFaultRule[] = [
    { type: "unavailable", rate: 0.3, kinds: ["ping"] },
    { type: "throttle", rate: 0.2, kinds: ["ping"] },
  ];
  const run = async (seed: number, enabled = true): Promise<string> => {
    await using registry = startMemoryRegistry();
    await using proxy = startFaultProxy({
      upstream: registry.url,
      seed,
      rules,
      retryAfterSeconds: [0, 9],
    });
    proxy.faultsEnabled = enabled;
    const outcomes: string[] = [];
    for (let i = 0; i < 40; i++) {
      const result = await answer(proxy.url, "/v2/");
      outcomes.push(`${result.status}${result.headers.get("Retry-After") ?? ""}`);
    }
    return outcomes.join(" ");
  };
  const first = await run(7);
  assert.equal(await run(7), first);
  assert.notEqual(await run(8), first);
  const counts = { 200: 0, 503: 0, 429: 0 };
  for (const outcome of first.split(" ")) counts[Number(outcome.slice(0, 3)) as 200] += 1;
  assert.ok(counts[503] > 3 && counts[429] > 1 && counts[200] > 10, JSON.stringify(counts));
  assert.equal(await run(7, false), Array(40).fill("200").join(" "));
});
