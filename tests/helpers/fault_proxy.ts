/**
 * An HTTP reverse proxy on 127.0.0.1 in front of a real registry on the loopback interface, which
 * injects faults on a deterministic schedule: drop the connection after N request-body bytes,
 * answer 503, answer 429 with `Retry-After`, stall, or forward a request and then drop its
 * response. Bodies stream both ways; `Location` headers (and a token realm) that point at the
 * upstream are rewritten to point at the proxy.
 *
 * Whether the n-th request of a kind gets a fault depends only on the seed, the kind and n, so a
 * run is reproducible even when requests of different kinds interleave differently.
 *
 * ```ts
 * await using proxy = startFaultProxy({
 *   upstream: "http://127.0.0.1:5000",
 *   seed: 7,
 *   rules: [{ type: "cut", rate: 0.3 }, { type: "throttle", rate: 0.1 }],
 * });
 * // push to `${proxy.host}/demo:1`, then read proxy.stats
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { PusherError } from "../../lib/errors.ts";
import {
  classifyRequest,
  type ConnectionControl,
  type CuttableServer,
  delay,
  type RequestKind,
  serveCuttable,
} from "./memory_registry.ts";

/**
 * A fault the proxy can inject: `cut` (drop the connection after N request-body bytes; the
 * upstream gets an incomplete request), `unavailable` (503), `throttle` (429 + `Retry-After`
 * seconds), `stall` (wait, then forward), `drop-response` (forward, then drop the connection).
 */
export type ProxyFaultType = "cut" | "unavailable" | "throttle" | "stall" | "drop-response";

/** One line of the schedule: inject `type` with probability `rate` into requests of `kinds`. */
export interface ProxyFaultRule {
  /** The fault. */
  type: ProxyFaultType;
  /** Probability per eligible request, 0..1; the rates of rules that apply sum to at most 1. */
  rate: number;
  /**
   * Request kinds it applies to. Defaults: `cut` → requests with bodies (upload-start,
   * upload-patch, upload-put, manifest-put); `drop-response` → upload-put; others → all but
   * `ping` and `token`.
   */
  kinds?: readonly RequestKind[];
}

/** An inclusive range `[min, max]` a fault parameter is drawn from. */
export type Range = readonly [number, number];

/** Options for {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Upstream base URL; must be on the loopback interface. */
  upstream: string;
  /** Seed of the fault schedule. */
  seed: number;
  /** The schedule; no faults when empty. */
  rules?: readonly ProxyFaultRule[];
  /** Stop injecting after this many faults. */
  maxFaults?: number;
  /** Body bytes forwarded before a `cut`; `[0, 65536]` by default. */
  cutBytes?: Range;
  /** Milliseconds of a `stall`; `[50, 250]` by default. */
  stallMs?: Range;
  /** `Retry-After` seconds of a `throttle`; `[0, 1]` by default. */
  retryAfterSeconds?: Range;
}

/** Counters for tests. */
export interface FaultProxyStats {
  /** Requests received, per kind. */
  requests: Partial<Record<RequestKind, number>>;
  /** Faults injected, per type. */
  faults: Partial<Record<ProxyFaultType, number>>;
  /** Request-body bytes received from clients, per kind. */
  bytesReceived: Partial<Record<RequestKind, number>>;
  /** Request-body bytes passed on to the upstream, per kind. */
  bytesForwarded: Partial<Record<RequestKind, number>>;
}

/** One request as the proxy saw it. */
export interface ProxyRecord {
  /** 1-based position among all requests. */
  sequence: number;
  /** HTTP method. */
  method: string;
  /** What the request does. */
  kind: RequestKind;
  /** URL path and query. */
  path: string;
  /** The request's `Content-Range` header, if it had one. */
  contentRange?: string;
  /** Request-body bytes received from the client. */
  bodyBytes: number;
  /** The injected fault, if any. */
  fault?: ProxyFaultType;
  /** Status sent to the client, or `cut` / `dropped` when the connection was dropped. */
  outcome: number | "cut" | "dropped";
}

interface Decision {
  type: ProxyFaultType;
  /** Bytes for `cut`, milliseconds for `stall`, seconds for `throttle`. */
  amount: number;
}

const BODY_KINDS: readonly RequestKind[] = [
  "upload-start",
  "upload-patch",
  "upload-put",
  "manifest-put",
];
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);
/** Time a cut request's last forwarded bytes get to reach the upstream before the cut. */
const FLUSH_MS = 50;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

function appliesTo(rule: ProxyFaultRule, kind: RequestKind): boolean {
  if (rule.kinds) return rule.kinds.includes(kind);
  if (rule.type === "cut") return BODY_KINDS.includes(kind);
  if (rule.type === "drop-response") return kind === "upload-put";
  return kind !== "ping" && kind !== "token";
}

/** Four uniform numbers in [0, 1) that depend only on the seed, the kind and n. */
function uniforms(seed: number, kind: RequestKind, n: number): number[] {
  const hash = createHash("sha256").update(`${seed}:${kind}:${n}`).digest();
  return [0, 4, 8, 12].map((offset) => hash.readUInt32BE(offset) / 2 ** 32);
}

function pick(range: Range, unit: number): number {
  const [min, max] = range;
  return min + Math.floor(unit * (max - min + 1));
}

function add<K extends string>(counter: Partial<Record<K, number>>, key: K, amount: number): void {
  counter[key] = (counter[key] ?? 0) + amount;
}

/** A running proxy; create it with {@link startFaultProxy}. */
export class FaultProxy {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `127.0.0.1:<port>`, for image references. */
  readonly host: string;
  /** Turn injection off (e.g. while verifying) and on again; requests are still forwarded. */
  faultsEnabled = true;
  /** Counters. */
  readonly stats: FaultProxyStats = {
    requests: {},
    faults: {},
    bytesReceived: {},
    bytesForwarded: {},
  };
  /** Every request in arrival order. */
  readonly log: ProxyRecord[] = [];

  readonly #options: FaultProxyOptions;
  readonly #upstream: URL;
  readonly #server: CuttableServer;
  readonly #client: Deno.HttpClient;
  readonly #seen = new Map<RequestKind, number>();
  #injected = 0;

  /** Use {@link startFaultProxy}. */
  constructor(options: FaultProxyOptions) {
    const upstream = new URL(options.upstream);
    if (upstream.protocol !== "http:" || !LOOPBACK_HOSTS.has(upstream.hostname)) {
      throw new PusherError("usage", `fault proxy upstream must be http on loopback: ${upstream}`);
    }
    this.#options = options;
    this.#upstream = upstream;
    this.#client = Deno.createHttpClient({});
    this.#server = serveCuttable((request, connection) => this.#handle(request, connection));
    this.url = this.#server.url;
    this.host = `127.0.0.1:${this.#server.port}`;
  }

  /** Stops the proxy. */
  async close(): Promise<void> {
    await this.#server.close();
    this.#client.close();
  }

  /** Stops the proxy (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #decide(kind: RequestKind): Decision | undefined {
    const n = (this.#seen.get(kind) ?? 0) + 1;
    this.#seen.set(kind, n);
    const { rules = [], maxFaults = Infinity } = this.#options;
    if (!this.faultsEnabled || this.#injected >= maxFaults) return undefined;
    const [choice = 0, parameter = 0] = uniforms(this.#options.seed, kind, n);
    let cumulative = 0;
    for (const rule of rules) {
      if (!appliesTo(rule, kind)) continue;
      cumulative += rule.rate;
      if (choice >= cumulative) continue;
      this.#injected++;
      const ranges: Record<ProxyFaultType, Range> = {
        cut: this.#options.cutBytes ?? [0, 65536],
        stall: this.#options.stallMs ?? [50, 250],
        throttle: this.#options.retryAfterSeconds ?? [0, 1],
        unavailable: [0, 0],
        "drop-response": [0, 0],
      };
      return { type: rule.type, amount: pick(ranges[rule.type], parameter) };
    }
    return undefined;
  }

  async #handle(request: Request, connection: ConnectionControl): Promise<Response> {
    const url = new URL(request.url);
    const { kind } = classifyRequest(request.method, url.pathname);
    add(this.stats.requests, kind, 1);
    const decision = this.#decide(kind);
    const record: ProxyRecord = {
      sequence: this.log.length + 1,
      method: request.method,
      kind,
      path: url.pathname + url.search,
      bodyBytes: 0,
      outcome: 0,
    };
    const contentRange = request.headers.get("content-range");
    if (contentRange !== null) record.contentRange = contentRange;
    if (decision) {
      record.fault = decision.type;
      add(this.stats.faults, decision.type, 1);
    }
    this.log.push(record);

    if (decision?.type === "unavailable" || decision?.type === "throttle") {
      await this.#drain(request, record);
      const throttled = decision.type === "throttle";
      const status = throttled ? 429 : 503;
      record.outcome = status;
      const code = throttled ? "TOOMANYREQUESTS" : "UNAVAILABLE";
      return Response.json({ errors: [{ code, message: "injected by the fault proxy" }] }, {
        status,
        headers: throttled ? { "Retry-After": String(decision.amount) } : {},
      });
    }
    if (decision?.type === "stall") await delay(decision.amount, connection.signal);
    const cutAfter = decision?.type === "cut" ? decision.amount : undefined;
    const response = await this.#forward(request, url, record, cutAfter, connection);
    if (!response) {
      record.outcome = "cut";
      return new Response(null, { status: 499 });
    }
    if (decision?.type === "drop-response") {
      await response.body?.cancel();
      connection.cut();
      record.outcome = "dropped";
      return new Response(null, { status: 499 });
    }
    record.outcome = response.status;
    return response;
  }

  async #drain(request: Request, record: ProxyRecord): Promise<void> {
    if (!request.body) return;
    try {
      for await (const chunk of request.body) this.#received(record, chunk.length);
    } catch {
      // the client gave up
    }
  }

  /**
   * Forwards the request; with `cutAfter`, passes at most that many body bytes on, then aborts
   * the upstream request and cuts the client's connection (and returns undefined).
   */
  async #forward(
    request: Request,
    url: URL,
    record: ProxyRecord,
    cutAfter: number | undefined,
    connection: ConnectionControl,
  ): Promise<Response | undefined> {
    const abort = new AbortController();
    const cut = (): void => {
      abort.abort();
      connection.cut();
    };
    if (cutAfter !== undefined && !request.body) {
      cut();
      return undefined;
    }
    const headers = new Headers();
    for (const [name, value] of request.headers) {
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.set(name, value);
    }
    const init: RequestInit & { client: Deno.HttpClient } = {
      method: request.method,
      headers,
      redirect: "manual",
      signal: abort.signal,
      client: this.#client,
    };
    if (request.body) init.body = this.#meter(request.body, record, cutAfter, cut);
    let upstream: Response;
    try {
      upstream = await fetch(new URL(url.pathname + url.search, this.#upstream), init);
    } catch (error) {
      if (abort.signal.aborted) return undefined;
      return Response.json({ errors: [{ code: "UNAVAILABLE", message: String(error) }] }, {
        status: 502,
      });
    }
    return new Response(upstream.body, {
      status: upstream.status,
      statusText: upstream.statusText,
      headers: this.#responseHeaders(upstream.headers),
    });
  }

  /**
   * Counts body bytes through; with `cutAfter`, passes that many on and, once fetch has taken
   * them and asks for more, gives them a moment to reach the socket, then errors the stream and
   * cuts both connections.
   */
  #meter(
    body: ReadableStream<Uint8Array>,
    record: ProxyRecord,
    cutAfter: number | undefined,
    cut: () => void,
  ): ReadableStream<Uint8Array> {
    const { kind } = record;
    const reader = body.getReader();
    let forwarded = 0;
    let cutting = false;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const cutNow = async (): Promise<void> => {
          await new Promise((resolve) => setTimeout(resolve, FLUSH_MS));
          controller.error(new Error("connection cut by the fault proxy"));
          reader.cancel().catch(() => {});
          cut();
        };
        if (cutting) return await cutNow();
        // A pull that neither enqueues nor closes is never called again (an empty body arrives
        // as an empty chunk, then the end): read until there is something to do.
        for (;;) {
          const { done, value } = await reader.read();
          if (value) this.#received(record, value.length);
          if (cutAfter === undefined) {
            if (done) return controller.close();
            add(this.stats.bytesForwarded, kind, value.length);
            return controller.enqueue(value);
          }
          const part = value?.subarray(0, cutAfter - forwarded) ?? new Uint8Array(0);
          forwarded += part.length;
          add(this.stats.bytesForwarded, kind, part.length);
          cutting = done || forwarded >= cutAfter;
          if (part.length > 0) return controller.enqueue(part);
          if (cutting) return await cutNow();
        }
      },
      cancel: (reason) => reader.cancel(reason),
    }, { highWaterMark: 0 });
  }

  /** Counts body bytes received for a request, in its record and its kind's counter. */
  #received(record: ProxyRecord, bytes: number): void {
    record.bodyBytes += bytes;
    add(this.stats.bytesReceived, record.kind, bytes);
  }

  #responseHeaders(upstream: Headers): Headers {
    const headers = new Headers();
    for (const [name, value] of upstream) {
      if (HOP_BY_HOP.has(name) && name !== "content-length") continue;
      const rewritten = name === "location" || name === "www-authenticate"
        ? value.replaceAll(this.#upstream.origin, this.url)
        : value;
      headers.append(name, rewritten);
    }
    return headers;
  }
}

/** Starts a fault-injecting proxy on 127.0.0.1 (a free port) in front of `options.upstream`. */
export function startFaultProxy(options: FaultProxyOptions): FaultProxy {
  return new FaultProxy(options);
}
