/**
 * A recording reverse proxy on 127.0.0.1 in front of a real registry on the loopback interface
 * that refuses manifest `PUT`s the way a registry vendor does and forwards everything else, so
 * what does get through lands in real Distribution and can be pulled back with skopeo:
 *
 * - `huawei-swr`: any manifest or index with an OCI media type → 400
 *   `Invalid image, fail to parse 'manifest.json'` (as a JSON error body, or as plain text);
 * - `aliyun-acr-personal`: a manifest whose blobs are not image layers (a BuildKit attestation
 *   manifest: in-toto layers) or whose config is the OCI empty descriptor → 400
 *   `MANIFEST_INVALID unknown manifest class for application/vnd.oci.empty.v1+json`.
 *
 * ```ts
 * await using proxy = startVendorProxy({ upstream: registry.url, vendor: "huawei-swr" });
 * // push to `${proxy.host}/team/app:1`, then read proxy.log
 * ```
 *
 * @module
 */

import { PusherError } from "../../lib/errors.ts";
import { classifyRequest, type RequestKind } from "./memory_registry.ts";

/** The registry whose refusals the proxy copies. */
export type Vendor = "huawei-swr" | "aliyun-acr-personal";

/** Options for {@link startVendorProxy}. */
export interface VendorProxyOptions {
  /** Upstream base URL; must be http on the loopback interface. */
  upstream: string;
  /** Whose refusals to copy. */
  vendor: Vendor;
  /** How a refusal's body is written: a registry JSON error body (default), or plain text. */
  body?: "json" | "text";
}

/** One request as the proxy saw it. */
export interface VendorProxyRecord {
  /** HTTP method. */
  method: string;
  /** What the request does. */
  kind: RequestKind;
  /** URL path and query. */
  path: string;
  /** `Content-Type` of a manifest `PUT`. */
  mediaType?: string;
  /** The proxy answered with a refusal instead of forwarding. */
  refused: boolean;
  /** Status sent to the client. */
  status: number;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const SWR_MESSAGE = "Invalid image, fail to parse 'manifest.json'";
const ACR_MESSAGE = "unknown manifest class for application/vnd.oci.empty.v1+json";
const EMPTY_CONFIG = "application/vnd.oci.empty.v1+json";
const IMAGE_LAYER =
  /^application\/vnd\.(oci\.image\.layer\.(nondistributable\.)?v1\.tar|docker\.image\.rootfs\.(foreign\.)?diff\.tar)/;

/** Whether a manifest's JSON describes something other than a container image. */
function isArtifact(manifest: Record<string, unknown>): boolean {
  const config = manifest["config"] as { mediaType?: unknown } | undefined;
  if (config?.mediaType === EMPTY_CONFIG) return true;
  const layers = Array.isArray(manifest["layers"]) ? manifest["layers"] : [];
  return layers.some((layer) => {
    const type = (layer as { mediaType?: unknown } | null)?.mediaType;
    return typeof type === "string" && !IMAGE_LAYER.test(type);
  });
}

/** A running proxy; create it with {@link startVendorProxy}. */
export class VendorProxy {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `127.0.0.1:<port>`, for image references. */
  readonly host: string;
  /** Every request in arrival order. */
  readonly log: VendorProxyRecord[] = [];

  readonly #options: VendorProxyOptions;
  readonly #upstream: URL;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #client: Deno.HttpClient;

  /** Use {@link startVendorProxy}. */
  constructor(options: VendorProxyOptions) {
    const upstream = new URL(options.upstream);
    if (upstream.protocol !== "http:" || !LOOPBACK_HOSTS.has(upstream.hostname)) {
      throw new PusherError("usage", `vendor proxy upstream must be http on loopback: ${upstream}`);
    }
    this.#options = options;
    this.#upstream = upstream;
    this.#client = Deno.createHttpClient({});
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#handle(request),
    );
    this.host = `127.0.0.1:${this.#server.addr.port}`;
    this.url = `http://${this.host}`;
  }

  /** The manifest `PUT`s, refused or forwarded. */
  get manifestPuts(): VendorProxyRecord[] {
    return this.log.filter((record) => record.kind === "manifest-put");
  }

  /** The requests the proxy refused. */
  get refusals(): VendorProxyRecord[] {
    return this.log.filter((record) => record.refused);
  }

  /** Stops the proxy. */
  async close(): Promise<void> {
    await this.#server.shutdown();
    this.#client.close();
  }

  /** Stops the proxy (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The refusal for a manifest `PUT`, or undefined when the vendor takes it. */
  #refusal(mediaType: string, body: Uint8Array): Response | undefined {
    let message: string | undefined;
    if (this.#options.vendor === "huawei-swr") {
      if (mediaType.startsWith("application/vnd.oci.")) message = SWR_MESSAGE;
    } else {
      const parsed: unknown = JSON.parse(new TextDecoder().decode(body));
      if (typeof parsed === "object" && parsed !== null && isArtifact(parsed as never)) {
        message = ACR_MESSAGE;
      }
    }
    if (message === undefined) return undefined;
    if (this.#options.body === "text") {
      return new Response(message, { status: 400, headers: { "content-type": "text/plain" } });
    }
    return Response.json({ errors: [{ code: "MANIFEST_INVALID", message }] }, { status: 400 });
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const { kind } = classifyRequest(request.method, url.pathname);
    const record: VendorProxyRecord = {
      method: request.method,
      kind,
      path: url.pathname + url.search,
      refused: false,
      status: 0,
    };
    this.log.push(record);
    let body: BodyInit | null = request.body;
    if (kind === "manifest-put") {
      const bytes = new Uint8Array(await request.arrayBuffer());
      record.mediaType = request.headers.get("content-type") ?? "";
      const refusal = this.#refusal(record.mediaType, bytes);
      if (refusal) {
        record.refused = true;
        record.status = refusal.status;
        return refusal;
      }
      body = bytes;
    }
    const headers = new Headers();
    for (const [name, value] of request.headers) {
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.set(name, value);
    }
    const upstream = await fetch(new URL(url.pathname + url.search, this.#upstream), {
      method: request.method,
      headers,
      body,
      redirect: "manual",
      client: this.#client,
    });
    record.status = upstream.status;
    const answer = new Headers();
    for (const [name, value] of upstream.headers) {
      if (HOP_BY_HOP.has(name) && name !== "content-length") continue;
      answer.append(
        name,
        name === "location" ? value.replaceAll(this.#upstream.origin, this.url) : value,
      );
    }
    return new Response(upstream.body, {
      status: upstream.status,
      statusText: upstream.statusText,
      headers: answer,
    });
  }
}

/** Starts a refusing proxy on 127.0.0.1 (a free port) in front of `options.upstream`. */
export function startVendorProxy(options: VendorProxyOptions): VendorProxy {
  return new VendorProxy(options);
}
