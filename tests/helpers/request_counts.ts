/**
 * Counting what a recording proxy saw (tests/helpers/recording_proxy.ts): requests of a kind,
 * requests sent twice, requests that carried a usable authorisation, and whether requests went
 * out together. The round-trip tests of every command judge their runs with these.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { RecordedRequest } from "./recording_proxy.ts";

/** Requests that were not refused for want of a token (those are retried once with one). */
export function authorised(records: readonly RecordedRequest[]): RecordedRequest[] {
  return records.filter((record) => record.status !== 401);
}

/** A request's identity: method, path, and the `digest` a closing PUT names. */
function identity(record: RecordedRequest): string {
  const digest = new URLSearchParams(record.query).get("digest");
  return record.kind === "upload-put" ? `PUT digest=${digest}` : `${record.method} ${record.path}`;
}

/** Fails when any request of `kinds` was sent twice. */
export function assertNoRepeats(
  records: readonly RecordedRequest[],
  kinds: readonly string[],
): void {
  const seen = new Map<string, number>();
  for (const record of records) {
    if (!kinds.includes(record.kind)) continue;
    seen.set(identity(record), (seen.get(identity(record)) ?? 0) + 1);
  }
  const repeated = [...seen].filter(([, count]) => count > 1);
  assert.deepEqual(repeated, [], "no request sent twice");
}

/** How many requests of `kind` there were. */
export function count(records: readonly RecordedRequest[], kind: string): number {
  return records.filter((record) => record.kind === kind).length;
}

/** Fails unless every one of `records` was sent before the first of them was answered. */
export function assertSentTogether(records: readonly RecordedRequest[], what: string): void {
  assert.ok(records.length > 0, `no ${what} at all`);
  const lastSent = Math.max(...records.map((record) => record.startedAt));
  const firstAnswered = Math.min(...records.map((record) => record.answeredAt));
  assert.ok(lastSent < firstAnswered, `every ${what} went out before the first was answered`);
}
