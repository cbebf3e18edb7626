/**
 * The `fetch` {@link HttpBackend}: verified TLS (optionally trusting extra CAs through a
 * `Deno.HttpClient`), plain HTTP, and the runtime's own `HTTPS_PROXY` / `HTTP_PROXY` /
 * `NO_PROXY` handling. A `Uint8Array` body goes out with `Content-Length`, a stream chunked.
 *
 * @module
 */

import { releaseChunk } from "../bytes/owned_chunk.ts";
import { networkError } from "./network_error.ts";
import {
  type BackendRequest,
  type HttpBackend,
  StreamResponse,
  type TransportResponse,
} from "./http.ts";

/** Creates a `fetch` backend; `caCerts` (PEM) are trusted in addition to the system roots. */
export function fetchBackend(caCerts: string[]): HttpBackend {
  const client = caCerts.length > 0 ? Deno.createHttpClient({ caCerts }) : undefined;
  return {
    async send(request: BackendRequest): Promise<TransportResponse> {
      const init: RequestInit & { client?: Deno.HttpClient } = {
        method: request.method,
        headers: request.headers,
        redirect: "manual",
      };
      if (request.body !== null) {
        init.body = (request.body instanceof ReadableStream
          ? releasing(request.body)
          : request.body) as BodyInit;
      }
      if (request.signal !== undefined) init.signal = request.signal;
      if (client !== undefined) init.client = client;
      let response: Response;
      try {
        response = await fetch(request.url, init);
      } catch (error) {
        throw networkError(error, request.method, request.url);
      }
      return new StreamResponse(response.status, response.headers, request.url, response.body);
    },
    close(): void {
      client?.close();
    },
  };
}

/**
 * Hands a body stream to `fetch`, freeing each owned chunk once `fetch` asked for the next one: by
 * then it holds its own reference to the chunk's memory.
 */
function releasing(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let previous: Uint8Array | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      if (previous !== undefined) releaseChunk(previous);
      previous = undefined;
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      previous = value;
      controller.enqueue(value);
    },
    cancel(reason): Promise<void> {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
