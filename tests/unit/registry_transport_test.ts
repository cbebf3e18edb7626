import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import type { RequestLog, TransportResponse } from "../../lib/registry/http.ts";
import { nodeBackend } from "../../lib/registry/node_backend.ts";
import { proxyFor } from "../../lib/registry/proxy.ts";
import { redactUrl } from "../../lib/logging/redact.ts";
import { createTransport } from "../../lib/registry/transport.ts";
import { tlsFixture } from "../helpers/registry.ts";

interface Seen {
  method: string;
  path: string;
  authorization: string | null;
  contentLength: string | null;
  chunked: boolean;
  body: Uint8Array;
}

interface TestServer {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

type Route = (request: Request, seen: Seen) => Response;

/** An HTTP(S) server on 127.0.0.1 that records each request (after reading its body). */
function serve(route: Route, tls?: { cert: string; key: string }): TestServer {
  const seen: Seen[] = [];
  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    const entry: Seen = {
      method: request.method,
      path: `${url.pathname}${url.search}`,
      authorization: request.headers.get("authorization"),
      contentLength: request.headers.get("content-length"),
      chunked: request.headers.get("transfer-encoding") === "chunked",
      body: new Uint8Array(await request.arrayBuffer()),
    };
    seen.push(entry);
    return route(request, entry);
  };
  const options = { hostname: "127.0.0.1", port: 0, onListen(): void {} };
  const server = tls === undefined
    ? Deno.serve(options, handler)
    : Deno.serve({ ...options, ...tls }, handler);
  const scheme = tls === undefined ? "http" : "https";
  return {
    url: `${scheme}://127.0.0.1:${server.addr.port}`,
    seen,
    close: () => server.shutdown(),
  };
}

function redirect(status: number, location: string): Response {
  return new Response(null, { status, headers: { location } });
}

function text(body: string): Response {
  return new Response(body);
}

function bytesStream(...chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return ReadableStream.from(chunks.map((chunk) => encoder.encode(chunk)));
}

const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

async function drain(response: TransportResponse): Promise<string> {
  return await response.text();
}

Deno.test("a cross-origin redirect drops Authorization, a same-origin one keeps it", async () => {
  const other = serve(() => text("blob bytes"));
  const origin = serve((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/same") return redirect(302, "/final");
    if (path === "/away") return redirect(307, `${other.url}/storage/blob?X-Amz-Signature=s3cr3t`);
    if (path === "/back") return redirect(307, `${other.url}/bounce`);
    return text("final");
  });
  const transport = createTransport();
  try {
    const headers = new Headers({ authorization: "Bearer tok" });
    const same = await transport.request({
      method: "GET",
      url: new URL(`${origin.url}/same`),
      headers,
    });
    assert.equal(await drain(same), "final");
    assert.equal(origin.seen[1]?.authorization, "Bearer tok");

    const away = await transport.request({
      method: "GET",
      url: new URL(`${origin.url}/away`),
      headers,
    });
    assert.equal(await drain(away), "blob bytes");
    assert.equal(away.url.origin, other.url);
    assert.equal(other.seen[0]?.authorization, null, "Authorization must not reach another origin");
    assert.equal(
      headers.get("authorization"),
      "Bearer tok",
      "the caller's headers are not changed",
    );
  } finally {
    transport.close();
    await origin.close();
    await other.close();
  }
});

Deno.test("Authorization stays dropped when a redirect chain comes back to the first origin", async () => {
  let back = "";
  const other = serve(() => redirect(307, back));
  const origin = serve((request) => {
    return new URL(request.url).pathname === "/start"
      ? redirect(307, `${other.url}/hop`)
      : text("home");
  });
  back = `${origin.url}/home`;
  const transport = createTransport();
  try {
    const response = await transport.request({
      method: "GET",
      url: new URL(`${origin.url}/start`),
      headers: new Headers({ authorization: "Basic dTpw" }),
    });
    assert.equal(await drain(response), "home");
    assert.deepEqual(origin.seen.map((seen) => seen.authorization), ["Basic dTpw", null]);
  } finally {
    transport.close();
    await origin.close();
    await other.close();
  }
});

Deno.test("307/308 replay byte bodies and re-open body factories; 303 turns into GET", async () => {
  const server = serve((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/put") return redirect(307, "/put-here");
    if (path === "/patch") return redirect(308, "/patch-here");
    if (path === "/post") return redirect(303, "/see-other");
    return text("done");
  });
  const transport = createTransport();
  try {
    const put = await transport.request({
      method: "PUT",
      url: new URL(`${server.url}/put`),
      body: new TextEncoder().encode("exact bytes"),
    });
    await drain(put);
    const putHere = server.seen[1];
    assert.equal(putHere?.method, "PUT");
    assert.equal(decode(putHere?.body ?? new Uint8Array()), "exact bytes");
    assert.equal(putHere?.contentLength, "11");

    let opened = 0;
    const patch = await transport.request({
      method: "PATCH",
      url: new URL(`${server.url}/patch`),
      body: () => {
        opened++;
        return bytesStream("stream", "ed");
      },
    });
    await drain(patch);
    assert.equal(opened, 2);
    const patchHere = server.seen[3];
    assert.equal(patchHere?.path, "/patch-here");
    assert.equal(decode(patchHere?.body ?? new Uint8Array()), "streamed");
    assert.equal(patchHere?.chunked, true);

    const post = await transport.request({
      method: "POST",
      url: new URL(`${server.url}/post`),
      body: new TextEncoder().encode("form"),
    });
    await drain(post);
    assert.equal(server.seen[5]?.method, "GET");
    assert.equal(server.seen[5]?.body.byteLength, 0);
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("a one-shot stream body is not silently dropped on a redirect", async () => {
  const server = serve(() => redirect(307, "/elsewhere"));
  const transport = createTransport();
  try {
    await assert.rejects(
      transport.request({
        method: "PATCH",
        url: new URL(`${server.url}/x`),
        body: bytesStream("a"),
      }),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.match(error.message, /can't be sent twice/);
        return true;
      },
    );
    assert.equal(server.seen.length, 1);
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("redirect loops stop after 10 hops; followRedirects:false hands the 3xx back", async () => {
  const server = serve((request) => redirect(302, new URL(request.url).pathname + "x"));
  const transport = createTransport();
  try {
    await assert.rejects(
      transport.request({ method: "GET", url: new URL(`${server.url}/loop`) }),
      /redirected more than 10 times/,
    );
    assert.equal(server.seen.length, 11);
    const head = await transport.request({
      method: "HEAD",
      url: new URL(`${server.url}/blob`),
      followRedirects: false,
    });
    assert.equal(head.status, 302);
    assert.equal(head.headers.get("location"), "/blobx");
    await head.discard();
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("a redirect from https to http is refused", async () => {
  const tls = await tlsFixture();
  const plain = serve(() => text("plain"));
  const secure = serve(() => redirect(307, `${plain.url}/downgraded?sig=abc`), tls);
  const transport = createTransport({ caCerts: [tls.caCert] });
  try {
    await assert.rejects(
      transport.request({ method: "GET", url: new URL(`${secure.url}/blob`) }),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.match(error.message, /refused a redirect .* it leaves HTTPS/);
        assert.doesNotMatch(error.message, /abc/);
        return true;
      },
    );
    assert.equal(plain.seen.length, 0);
  } finally {
    transport.close();
    await secure.close();
    await plain.close();
  }
});

Deno.test("the request hook sees every hop with masked queries and body sizes", async () => {
  const server = serve((request) => {
    return new URL(request.url).pathname === "/r"
      ? redirect(307, "/upload?_state=SIGNED&digest=sha256:aa")
      : new Response(null, { status: 202 });
  });
  const logs: RequestLog[] = [];
  const transport = createTransport({ onRequest: (log) => logs.push(log) });
  try {
    const response = await transport.request({
      method: "PUT",
      url: new URL(`${server.url}/r?token=t0p`),
      body: new Uint8Array(5),
    });
    await response.discard();
    const streamed = await transport.request({
      method: "PATCH",
      url: new URL(`${server.url}/upload`),
      body: bytesStream("abc", "defg"),
    });
    await streamed.discard();
    assert.deepEqual(
      logs.map(({ method, url, status, bytes }) => ({ method, url, status, bytes })),
      [
        { method: "PUT", url: `${server.url}/r?token=…`, status: 307, bytes: 5 },
        {
          method: "PUT",
          url: `${server.url}/upload?_state=…&digest=sha256:aa`,
          status: 202,
          bytes: 5,
        },
        { method: "PATCH", url: `${server.url}/upload`, status: 202, bytes: 7 },
      ],
    );
    assert.ok(logs.every((log) => log.ms >= 0));
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("connection failures reach the hook and become network errors", async () => {
  const logs: RequestLog[] = [];
  const transport = createTransport({ onRequest: (log) => logs.push(log) });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  try {
    await assert.rejects(
      transport.request({ method: "GET", url: new URL(`http://127.0.0.1:${port}/v2/`) }),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.kind, "network");
        assert.equal(error.retryable, true);
        assert.match(error.message, /refused/);
        return true;
      },
    );
    assert.equal(logs[0]?.status, 0);
    assert.match(logs[0]?.error ?? "", /refused/);
  } finally {
    transport.close();
  }
});

Deno.test("a refused connection is an outage only where the registry answered before", async () => {
  const transport = createTransport();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const url = new URL(`http://127.0.0.1:${port}/v2/`);
  const refused = async (): Promise<RegistryError> => {
    let caught: unknown;
    await transport.request({ method: "GET", url }).catch((error) => caught = error);
    assert.ok(caught instanceof RegistryError, String(caught));
    assert.match(caught.message, /refused/);
    assert.equal(caught.retryable, true);
    return caught;
  };
  try {
    assert.equal((await refused()).outage, false, "never answered: maybe a wrong address");
    const server = Deno.serve({ hostname: "127.0.0.1", port, onListen(): void {} }, () => text(""));
    const answer = await transport.request({ method: "GET", url });
    await answer.discard();
    await server.shutdown();
    assert.equal((await refused()).outage, true, "answered before: the registry is down");
  } finally {
    transport.close();
  }
});

for (const path of ["fetch", "node:https"] as const) {
  Deno.test(`${path}: a failing body source surfaces as its own error`, async () => {
    const tls = await tlsFixture();
    const server = serve(() => text("ok"), tls);
    const transport = path === "fetch"
      ? createTransport({ caCerts: [tls.caCert] })
      : createTransport({ skipTlsVerify: true });
    const failure = new PusherError("input", "layer.tar is truncated at byte 3");
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller): void {
        if (sent) {
          controller.error(failure);
          return;
        }
        sent = true;
        controller.enqueue(new Uint8Array(3));
      },
    });
    try {
      await assert.rejects(
        transport.request({ method: "PATCH", url: new URL(`${server.url}/u`), body }),
        (error: unknown) => error === failure,
      );
    } finally {
      transport.close();
      await server.close();
    }
  });
}

Deno.test("skipTlsVerify streams bodies over node:https to a server no CA vouches for", async () => {
  const tls = await tlsFixture();
  const server = serve(
    () => new Response("thanks", { status: 202, headers: { location: "/next" } }),
    tls,
  );
  const verifying = createTransport();
  const skipping = createTransport({ skipTlsVerify: true });
  try {
    await assert.rejects(
      verifying.request({ method: "GET", url: new URL(`${server.url}/v2/`) }),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.match(error.message, /TLS certificate of 127\.0\.0\.1:\d+ was rejected/);
        return true;
      },
    );
    const chunk = new Uint8Array(256 * 1024).fill(7);
    const response = await skipping.request({
      method: "PATCH",
      url: new URL(`${server.url}/upload`),
      headers: new Headers({
        authorization: "Bearer x",
        "content-type": "application/octet-stream",
      }),
      body: ReadableStream.from([chunk, chunk, chunk, chunk]),
    });
    assert.equal(response.status, 202);
    assert.equal(response.headers.get("location"), "/next");
    assert.equal(await response.text(), "thanks");
    const seen = server.seen.at(-1);
    assert.equal(seen?.body.byteLength, 1024 * 1024);
    assert.equal(seen?.authorization, "Bearer x");
    const put = await skipping.request({
      method: "PUT",
      url: new URL(`${server.url}/done`),
      body: new Uint8Array(10),
    });
    await put.discard();
    assert.equal(server.seen.at(-1)?.contentLength, "10");
  } finally {
    verifying.close();
    skipping.close();
    await server.close();
  }
});

/** A CONNECT-only proxy on 127.0.0.1 that records the authorities it tunnels to. */
function connectProxy(): { url: string; tunnels: string[]; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tunnels: string[] = [];
  const connections: Deno.Conn[] = [];
  (async () => {
    for await (const client of listener) {
      connections.push(client);
      (async () => {
        const buffer = new Uint8Array(8192);
        const read = await client.read(buffer);
        const head = decode(buffer.subarray(0, read ?? 0));
        const target = /^CONNECT (\S+) /.exec(head)?.[1] ?? "";
        tunnels.push(target);
        const [hostname, port] = target.split(":");
        const upstream = await Deno.connect({ hostname: hostname ?? "", port: Number(port) });
        connections.push(upstream);
        await client.write(new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n"));
        await Promise.all([
          client.readable.pipeTo(upstream.writable).catch(() => {}),
          upstream.readable.pipeTo(client.writable).catch(() => {}),
        ]);
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    tunnels,
    close(): void {
      listener.close();
      for (const connection of connections) {
        try {
          connection.close();
        } catch {
          // already closed
        }
      }
    },
  };
}

Deno.test("node:https tunnels through HTTPS_PROXY and honours NO_PROXY", async () => {
  const tls = await tlsFixture();
  const server = serve(() => text("via"), tls);
  const proxy = connectProxy();
  const authority = new URL(server.url).host;
  const proxied = nodeBackend((name) => name === "HTTPS_PROXY" ? proxy.url : undefined);
  const bypassing = nodeBackend((name) =>
    name === "HTTPS_PROXY" ? proxy.url : name === "NO_PROXY" ? "example.com, 127.0.0.1" : undefined
  );
  try {
    const request = {
      method: "GET",
      url: new URL(`${server.url}/v2/`),
      headers: new Headers(),
      body: null,
    };
    assert.equal(await (await proxied.send(request)).text(), "via");
    assert.deepEqual(proxy.tunnels, [authority]);
    assert.equal(await (await bypassing.send(request)).text(), "via");
    assert.deepEqual(proxy.tunnels, [authority], "NO_PROXY must bypass the proxy");
  } finally {
    proxied.close();
    bypassing.close();
    proxy.close();
    await server.close();
  }
});

Deno.test("proxy selection follows HTTPS_PROXY, HTTP_PROXY and NO_PROXY", () => {
  const env = (table: Record<string, string>) => (name: string): string | undefined => table[name];
  const https = new URL("https://registry.example.com:5443/v2/");
  const http = new URL("http://localhost:5000/v2/");
  assert.equal(proxyFor(https, env({}))?.href, undefined);
  assert.equal(proxyFor(https, env({ HTTPS_PROXY: "proxy:3128" }))?.href, "http://proxy:3128/");
  assert.equal(proxyFor(https, env({ https_proxy: "http://p:1" }))?.href, "http://p:1/");
  assert.equal(proxyFor(https, env({ HTTP_PROXY: "http://p:1" })), undefined);
  assert.equal(proxyFor(http, env({ HTTP_PROXY: "http://p:1" }))?.href, "http://p:1/");
  const proxied = { HTTPS_PROXY: "http://p:1" };
  for (
    const noProxy of [
      "*",
      "example.com",
      ".example.com",
      "*.example.com",
      "registry.example.com:5443",
    ]
  ) {
    assert.equal(proxyFor(https, env({ ...proxied, NO_PROXY: noProxy })), undefined, noProxy);
  }
  for (const noProxy of ["other.com", "xample.com", "registry.example.com:443", ""]) {
    assert.ok(proxyFor(https, env({ ...proxied, NO_PROXY: noProxy })) !== undefined, noProxy);
  }
  const v6 = new URL("https://[::1]:5000/v2/");
  assert.equal(proxyFor(v6, env({ ...proxied, no_proxy: "::1" })), undefined);
  assert.equal(proxyFor(v6, env({ ...proxied, no_proxy: "[::1]:5000" })), undefined);
});

Deno.test("redactUrl masks query values except harmless ones and drops user info", () => {
  assert.equal(
    redactUrl(new URL("https://u:p@r.example/v2/a/blobs/uploads/1?_state=x&digest=sha256:ab#f")),
    "https://r.example/v2/a/blobs/uploads/1?_state=…&digest=sha256:ab",
  );
  assert.equal(
    redactUrl(new URL("https://auth.example/token?service=s&scope=repository:a:pull&account=bob")),
    "https://auth.example/token?service=s&scope=repository:a:pull&account=…",
  );
  assert.equal(redactUrl(new URL("http://r.example/v2/")), "http://r.example/v2/");
});

for (const path of ["fetch", "node:https"] as const) {
  Deno.test(`${path}: aborting a request rejects with the AbortError`, async () => {
    const tls = await tlsFixture();
    const { promise: gate, resolve: open } = Promise.withResolvers<void>();
    const slow = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {}, ...tls },
      async () => {
        await gate;
        return text("late");
      },
    );
    const transport = path === "fetch"
      ? createTransport({ caCerts: [tls.caCert] })
      : createTransport({ skipTlsVerify: true });
    const controller = new AbortController();
    try {
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(
        transport.request({
          method: "PATCH",
          url: new URL(`https://127.0.0.1:${slow.addr.port}/upload`),
          body: new Uint8Array(10),
          signal: controller.signal,
        }),
        (error: unknown) => error instanceof Error && error.name === "AbortError",
      );
    } finally {
      open();
      transport.close();
      await slow.shutdown();
    }
  });
}
