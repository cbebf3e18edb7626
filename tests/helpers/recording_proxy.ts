/**
 * An HTTP reverse proxy on 127.0.0.1 that records every request it passes to a registry on the
 * loopback interface: method, path, kind, the client connection it came on, and when it started
 * and was answered. Bodies stream both ways untouched; `Location` headers that point at the
 * upstream are rewritten to point at the proxy. Tests count requests with it, not time.
 *
 * ```ts
 * await using proxy = startRecordingProxy(registry.url);
 * // push to `${proxy.host}/demo:1`, then read proxy.records
 * ```
 *
 * @module
 */

import { classifyRequest, type RequestKind } from "./memory_registry.ts";

/** One request as the proxy saw it. */
export interface RecordedRequest {
  /** HTTP method. */
  method: string;
  /** URL path. */
  path: string;
  /** URL query (with its `?`), or `""`. */
  query: string;
  /** What the request does. */
  kind: RequestKind;
  /** The client's port: requests with the same one came on the same connection. */
  connection: number;
  /** `performance.now()` when the request arrived. */
  startedAt: number;
  /** `performance.now()` when the upstream's answer was passed on. */
  answeredAt: number;
  /** The status passed on; 0 when the upstream could not be reached. */
  status: number;
}

/** A running recording proxy. */
export interface RecordingProxy extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `127.0.0.1:<port>`, for image references. */
  readonly host: string;
  /** Every request so far, in the order they arrived. */
  readonly records: RecordedRequest[];
  /** Forgets the requests recorded so far. */
  clear(): void;
  /** Stops the proxy. */
  close(): Promise<void>;
}

const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
];

/** Starts a recording proxy in front of `upstream` (an `http://` loopback URL). */
export function startRecordingProxy(upstream: string): RecordingProxy {
  const target = new URL(upstream);
  if (target.hostname !== "127.0.0.1" && target.hostname !== "localhost") {
    throw new Error(`the recording proxy only forwards to loopback, not ${target.hostname}`);
  }
  const records: RecordedRequest[] = [];
  let origin = "";
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request, info) => {
      const url = new URL(request.url);
      const record: RecordedRequest = {
        method: request.method,
        path: url.pathname,
        query: url.search,
        kind: classifyRequest(request.method, url.pathname).kind,
        connection: info.remoteAddr.port,
        startedAt: performance.now(),
        answeredAt: 0,
        status: 0,
      };
      records.push(record);
      const headers = new Headers(request.headers);
      for (const name of HOP_BY_HOP) headers.delete(name);
      const init: RequestInit = { method: request.method, headers, redirect: "manual" };
      if (request.body !== null) init.body = request.body;
      let answer: Response;
      try {
        answer = await fetch(new URL(`${url.pathname}${url.search}`, target), init);
      } catch {
        record.answeredAt = performance.now();
        return new Response("upstream unreachable", { status: 502 });
      }
      const outgoing = new Headers(answer.headers);
      for (const name of HOP_BY_HOP) outgoing.delete(name);
      const location = outgoing.get("location");
      if (location !== null && location.startsWith(target.origin)) {
        outgoing.set("location", origin + location.slice(target.origin.length));
      }
      record.status = answer.status;
      record.answeredAt = performance.now();
      return new Response(request.method === "HEAD" ? null : answer.body, {
        status: answer.status,
        headers: outgoing,
      });
    },
  );
  origin = `http://127.0.0.1:${server.addr.port}`;
  const close = async (): Promise<void> => {
    await server.shutdown();
  };
  return {
    url: origin,
    host: `127.0.0.1:${server.addr.port}`,
    records,
    clear: () => {
      records.length = 0;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
