/**
 * The `node:https` {@link HttpBackend} behind `--skip-tls`: `fetch` can't turn certificate checks
 * off per request, `node:https` with `rejectUnauthorized: false` can. Streams the body with
 * backpressure, and tunnels through `HTTPS_PROXY` with `CONNECT` itself (honouring `NO_PROXY`),
 * since `node:https` in Deno ignores proxy variables.
 *
 * @module
 */

import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { Readable } from "node:stream";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { isOutageStatus, RegistryError } from "./errors.ts";
import {
  type BackendRequest,
  type HttpBackend,
  StreamResponse,
  type TransportResponse,
} from "./http.ts";
import { networkError } from "./network_error.ts";
import { type EnvReader, processEnv, proxyFor } from "./proxy.ts";
import { redactUrl } from "../logging/redact.ts";

/** Creates a backend that speaks HTTPS without verifying certificates. */
export function nodeBackend(env: EnvReader = processEnv): HttpBackend {
  const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
  return {
    async send(request: BackendRequest): Promise<TransportResponse> {
      const proxy = proxyFor(request.url, env);
      const socket = proxy === undefined ? undefined : await tunnel(proxy, request);
      return await exchange(request, socket === undefined ? agent : socket);
    },
    close(): void {
      agent.destroy();
    },
  };
}

function exchange(
  request: BackendRequest,
  via: https.Agent | tls.TLSSocket,
): Promise<TransportResponse> {
  const { method, url, body, signal } = request;
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (body instanceof Uint8Array) headers["content-length"] = String(body.byteLength);
    else if (body === null && method !== "GET" && method !== "HEAD") {
      headers["content-length"] = "0";
    }
    const hostname = bareHost(url);
    const options: https.RequestOptions = {
      method,
      hostname,
      port: url.port === "" ? 443 : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers,
      rejectUnauthorized: false,
    };
    if (isIP(hostname) === 0) options.servername = hostname;
    if (via instanceof https.Agent) {
      options.agent = via;
    } else {
      options.agent = false;
      options.createConnection = () => via;
    }
    const req = https.request(options);
    let settled = false;
    const onAbort = (): void => {
      req.destroy();
      if (!settled) {
        settled = true;
        reject(signal?.reason);
      }
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      reject(networkError(error, method, url));
    };
    req.on("error", fail);
    req.on("response", (res: http.IncomingMessage) => {
      settled = true;
      res.on("close", () => signal?.removeEventListener("abort", onAbort));
      const responseHeaders = new Headers();
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
        responseHeaders.append(res.rawHeaders[i] ?? "", res.rawHeaders[i + 1] ?? "");
      }
      const stream = Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
      resolve(new StreamResponse(res.statusCode ?? 0, responseHeaders, url, stream));
    });
    writeBody(req, body).catch((error: unknown) => {
      req.destroy();
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      reject(error);
    });
  });
}

async function writeBody(
  req: http.ClientRequest,
  body: Uint8Array | ReadableStream<Uint8Array> | null,
): Promise<void> {
  if (body === null) {
    req.end();
    return;
  }
  if (body instanceof Uint8Array) {
    req.end(body);
    return;
  }
  const reader = body.getReader();
  try {
    for (;;) {
      if (req.destroyed) {
        await reader.cancel().catch(() => {});
        return;
      }
      const { done, value } = await reader.read();
      if (done) break;
      if (!req.write(value)) await drained(req);
    }
    req.end();
  } finally {
    reader.releaseLock();
  }
}

function drained(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      req.off("drain", done);
      req.off("close", done);
      resolve();
    };
    req.on("drain", done);
    req.on("close", done);
  });
}

/** Opens a `CONNECT` tunnel through `proxy` to the request's host and starts TLS over it. */
function tunnel(proxy: URL, request: BackendRequest): Promise<tls.TLSSocket> {
  const { url, signal } = request;
  const hostname = bareHost(url);
  const authority = `${url.hostname}:${url.port === "" ? 443 : url.port}`;
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const headers: Record<string, string> = { host: authority };
    if (proxy.username !== "") {
      const user = decodeURIComponent(proxy.username);
      const password = decodeURIComponent(proxy.password);
      headers["proxy-authorization"] = `Basic ${btoa(`${user}:${password}`)}`;
    }
    const connect = http.request({
      hostname: bareHost(proxy),
      port: proxy.port === "" ? 80 : Number(proxy.port),
      method: "CONNECT",
      path: authority,
      headers,
    });
    const onAbort = (): void => {
      connect.destroy();
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    connect.on("error", (error: unknown) => {
      signal?.removeEventListener("abort", onAbort);
      reject(networkError(error, "CONNECT", proxyDisplay(proxy)));
    });
    connect.on("connect", (answer: http.IncomingMessage, socket: Duplex) => {
      signal?.removeEventListener("abort", onAbort);
      if (answer.statusCode !== 200) {
        socket.destroy();
        reject(
          new RegistryError(
            "network",
            `proxy ${redactUrl(proxyDisplay(proxy))} refused to tunnel to ${authority} ` +
              `(HTTP ${answer.statusCode})`,
            {
              status: answer.statusCode ?? 0,
              retryable: (answer.statusCode ?? 0) >= 500,
              outage: isOutageStatus(answer.statusCode ?? 0),
            },
          ),
        );
        return;
      }
      const options: tls.ConnectionOptions = { socket, rejectUnauthorized: false };
      if (isIP(hostname) === 0) options.servername = hostname;
      resolve(tls.connect(options));
    });
    connect.end();
  });
}

function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, "");
}

function proxyDisplay(proxy: URL): URL {
  const copy = new URL(proxy.href);
  copy.username = "";
  copy.password = "";
  return copy;
}
