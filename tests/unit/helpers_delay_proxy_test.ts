/**
 * The delay proxy the long-link bench and tests stand between a client and a loopback server:
 * bytes pass intact both ways, every exchange waits a round trip, and a new connection one more.
 */

import assert from "node:assert/strict";
import { startDelayProxy } from "../helpers/delay_proxy.ts";

const DELAY_MS = 40;

Deno.test({
  name: "delay proxy: bytes intact, one round trip per exchange, one more for a new connection",
  sanitizeResources: false,
  fn: async () => {
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => new Response(await request.arrayBuffer()),
    );
    await using proxy = startDelayProxy({
      upstream: `127.0.0.1:${server.addr.port}`,
      delayMs: DELAY_MS,
    });
    const client = Deno.createHttpClient({});
    try {
      const body = new Uint8Array(300 * 1024).map((_, index) => (index * 7) % 251);
      const exchange = async (): Promise<number> => {
        const started = performance.now();
        const response = await fetch(`http://${proxy.host}/echo`, {
          method: "POST",
          body,
          client,
        });
        const echoed = new Uint8Array(await response.arrayBuffer());
        assert.deepEqual(echoed, body, "the bytes came back as they were sent");
        return performance.now() - started;
      };
      const first = await exchange();
      const second = await exchange();
      assert.ok(first >= 4 * DELAY_MS, `a new connection costs two round trips (${first} ms)`);
      assert.ok(second >= 2 * DELAY_MS, `a request on it one (${second} ms)`);
      // Timing says little about reuse with a 300 KiB body (TCP windows grow); the proxy counts.
      assert.equal(proxy.connections, 1, "the second exchange reused the connection");
    } finally {
      client.close();
      await server.shutdown();
    }
  },
});

Deno.test("delay proxy: only loopback upstreams", () => {
  assert.throws(() => startDelayProxy({ upstream: "192.0.2.1:80", delayMs: 1 }), /loopback/);
});
