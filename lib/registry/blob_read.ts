/**
 * Reading a blob's answer: whether a ranged `GET` was honoured (`206` whose `Content-Range`
 * starts where we asked) or answered with the whole blob (`200`), and a body stream whose
 * failures are retryable network errors rather than the runtime's bare `TypeError`s.
 *
 * @module
 */

import { RegistryError } from "./errors.ts";
import { isAbortError, networkError } from "./network_error.ts";

/** A parsed `Content-Range: bytes <first>-<last>/<total|*>`. */
export interface ContentRange {
  /** First byte sent. */
  first: number;
  /** Last byte sent (inclusive). */
  last: number;
  /** Size of the whole blob, when the registry said. */
  total?: number;
}

/** Parses a `Content-Range` answer header; `undefined` when absent or unreadable. */
export function parseContentRange(value: string | null): ContentRange | undefined {
  if (value === null) return undefined;
  const match = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value);
  if (match === null) return undefined;
  const first = Number(match[1]);
  const last = Number(match[2]);
  if (last < first) return undefined;
  const range: ContentRange = { first, last };
  if (match[3] !== "*") range.total = Number(match[3]);
  return range;
}

/**
 * Checks a `206` against the offset asked for.
 *
 * @throws {RegistryError} kind `registry` when the range sent is not the rest of the blob from
 * `offset` (such bytes can't be appended).
 */
export function checkPartialAnswer(
  contentRange: string | null,
  offset: number,
  what: string,
): ContentRange {
  const range = parseContentRange(contentRange);
  if (range === undefined || range.first !== offset) {
    throw new RegistryError(
      "registry",
      `${what}: asked for bytes from ${offset}, the registry sent ` +
        `${contentRange === null ? "a 206 without Content-Range" : `range ${contentRange}`}`,
      { status: 206 },
    );
  }
  return range;
}

/**
 * Passes a response body through, turning a read failure (a connection cut mid-body) into a
 * retryable `network` {@link RegistryError} naming `url`. Abort errors pass unchanged.
 */
export function withNetworkErrors(
  body: ReadableStream<Uint8Array>,
  method: string,
  url: URL,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        throw isAbortError(error) ? error : networkError(error, method, url);
      }
      if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    async cancel(reason): Promise<void> {
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}
