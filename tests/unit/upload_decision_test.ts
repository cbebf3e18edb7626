/**
 * The upload's recovery policy as a table: for each fault the fault tests inject, each status an
 * upload request can get back, and the upload's own failures (a registry copy that does not match,
 * an abort, retries running out), the action `decide` must choose in a given state. The errors are
 * built by the same code that builds them during a push (`errorForStatus`, `networkError`,
 * `stallError`).
 */

import assert from "node:assert/strict";
import { stallError } from "../../lib/transfer/stall.ts";
import { type ChunkMode, startingMode } from "../../lib/push/chunk_mode.ts";
import { SMALLEST_CHUNK } from "../../lib/push/chunk_size.ts";
import { StaleSession } from "../../lib/push/upload_cursor.ts";
import { decide, type RecoveryState, type UploadAction } from "../../lib/push/upload_decision.ts";
import { errorForStatus, parseErrorBody } from "../../lib/registry/errors.ts";
import { networkError } from "../../lib/registry/network_error.ts";

const UPLOAD_URL = new URL("http://registry.test/v2/app/blobs/uploads/8f3c?_state=abc");
/** A fixed clock on a whole second, so an HTTP-date `Retry-After` gives an exact wait. */
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);

/** The error a registry answer of `status` becomes, with optional error `code` and `Retry-After`. */
function answer(status: number, code?: string, retryAfter: string | null = null): unknown {
  const body = code === undefined ? "" : JSON.stringify({ errors: [{ code, message: "x" }] });
  const summary = parseErrorBody(body, "application/json");
  return errorForStatus(status, summary, retryAfter, "uploading to app", NOW);
}

/** The error a connection that broke the way `reason` says becomes. */
function connectionLost(reason: string): unknown {
  return networkError(new TypeError(reason), "PATCH", UPLOAD_URL);
}

const MiB = 1024 * 1024;

/**
 * A streamed upload of a re-openable source with an open session and no failures yet, 8 MiB
 * chunks once chunked, to a registry that takes any chunk size.
 */
const BASE: RecoveryState = {
  mode: "stream",
  chunkSize: 8 * MiB,
  chunkBounds: { min: 0, max: Number.POSITIVE_INFINITY },
  reopenable: true,
  hasSession: true,
  resumed: false,
  restartedFresh: false,
  retriesLeft: true,
  keepsSessions: false,
  aborted: false,
};

const RETRY: UploadAction = { kind: "retry", dropSession: false };
const RETRY_NEW_SESSION: UploadAction = {
  kind: "retry",
  dropSession: true,
};
const REFUSED: UploadAction = { kind: "give-up", why: "not-retryable", dropSession: true };
const SEND_WHOLE: UploadAction = { kind: "send-whole" };
const RESTART_FRESH: UploadAction = { kind: "restart-fresh" };

function switchTo(mode: ChunkMode): UploadAction {
  return { kind: "switch-mode", mode };
}

function shrinkTo(chunkSize: number): UploadAction {
  return { kind: "shrink-chunks", chunkSize };
}

interface Case {
  /** The failure. */
  fault: string;
  /** The state it meets, as words (the test name) and as the fields that differ from BASE. */
  when: string;
  state?: Partial<RecoveryState>;
  error: unknown;
  /** What the upload must do. */
  action: UploadAction;
}

const STREAMED_CHUNKS: Partial<RecoveryState> = { mode: "streamed-chunks" };
const HELD_CHUNKS_READ_ONCE: Partial<RecoveryState> = { mode: "held-chunks", reopenable: false };
/** Chunks as small as a 413 makes them. */
const AT_FLOOR: Partial<RecoveryState> = { chunkSize: SMALLEST_CHUNK };
/** Amazon ECR's minimum for every chunk but the last. */
const ECR_BOUNDS = { min: 5 * MiB, max: Number.POSITIVE_INFINITY };
const MONOLITHIC: Partial<RecoveryState> = { mode: "monolithic" };

const CASES: readonly Case[] = [
  // Faults the fault proxy and the in-process registry inject.
  {
    fault: "a cut connection",
    when: "streaming",
    error: connectionLost("connection reset by peer"),
    action: RETRY,
  },
  {
    fault: "a cut connection",
    when: "in held chunks of a source read once",
    state: HELD_CHUNKS_READ_ONCE,
    error: connectionLost("connection reset by peer"),
    action: RETRY,
  },
  {
    fault: "a stall",
    when: "streaming",
    error: stallError(300, "upload of layer"),
    action: RETRY,
  },
  { fault: "503", when: "streaming", error: answer(503, "UNAVAILABLE"), action: RETRY },
  {
    fault: "500",
    when: "in streamed chunks",
    state: STREAMED_CHUNKS,
    error: answer(500),
    action: RETRY,
  },
  { fault: "502", when: "streaming", error: answer(502), action: RETRY },
  { fault: "504", when: "streaming", error: answer(504), action: RETRY },
  { fault: "408", when: "streaming", error: answer(408), action: RETRY },
  {
    fault: "429 with Retry-After: 7",
    when: "streaming",
    error: answer(429, "TOOMANYREQUESTS", "7"),
    action: RETRY,
  },
  {
    fault: "429 with Retry-After as an HTTP date 5 s ahead",
    when: "streaming",
    error: answer(429, undefined, new Date(NOW + 5000).toUTCString()),
    action: RETRY,
  },
  {
    fault: "429 TOOMANYREQUESTS without Retry-After",
    when: "streaming",
    error: answer(429, "TOOMANYREQUESTS"),
    action: RETRY,
  },
  {
    fault: "a final PUT whose answer was lost (the blob is looked up before anything is re-sent)",
    when: "streaming",
    error: networkError(
      new TypeError("connection closed before message completed"),
      "PUT",
      UPLOAD_URL,
    ),
    action: RETRY,
  },
  {
    fault: "a refused connection (a registry restarting)",
    when: "streaming",
    error: connectionLost("Connection refused (os error 111)"),
    action: RETRY,
  },
  {
    fault: "a rejected TLS certificate",
    when: "streaming",
    error: connectionLost("invalid peer certificate: UnknownIssuer"),
    action: REFUSED,
  },
  // Bodies too large, or without a length.
  {
    fault: "413 Payload Too Large",
    when: "streaming",
    error: answer(413),
    action: switchTo("streamed-chunks"),
  },
  {
    fault: "413 Payload Too Large",
    when: "streaming a source read once",
    state: { reopenable: false },
    error: answer(413),
    action: switchTo("held-chunks"),
  },
  // A 413 to a chunk (nginx's client_max_body_size): halve, down to a floor, then one request.
  {
    fault: "413 Payload Too Large",
    when: "in streamed chunks of 8 MiB",
    state: STREAMED_CHUNKS,
    error: answer(413),
    action: shrinkTo(4 * MiB),
  },
  {
    fault: "413 Payload Too Large",
    when: "in held chunks of 8 MiB of a source read once",
    state: HELD_CHUNKS_READ_ONCE,
    error: answer(413),
    action: shrinkTo(4 * MiB),
  },
  {
    fault: "413 Payload Too Large",
    when: "in streamed chunks just above the floor",
    state: { ...STREAMED_CHUNKS, chunkSize: SMALLEST_CHUNK + 1000 },
    error: answer(413),
    action: shrinkTo(SMALLEST_CHUNK),
  },
  {
    fault: "413 Payload Too Large",
    when: "in streamed chunks of 8 MiB to ECR (5 MiB minimum)",
    state: { ...STREAMED_CHUNKS, chunkBounds: ECR_BOUNDS },
    error: answer(413),
    action: shrinkTo(5 * MiB),
  },
  {
    fault: "413 Payload Too Large",
    when:
      "in streamed chunks of 600000 bytes to a registry asking for 400000 (OCI-Chunk-Min-Length)",
    state: {
      ...STREAMED_CHUNKS,
      chunkSize: 600_000,
      chunkBounds: { min: 400_000, max: Number.POSITIVE_INFINITY },
    },
    error: answer(413),
    action: shrinkTo(400_000),
  },
  {
    fault: "413 Payload Too Large",
    when: "in streamed chunks at ECR's minimum",
    state: { ...STREAMED_CHUNKS, chunkSize: 5 * MiB, chunkBounds: ECR_BOUNDS },
    error: answer(413),
    action: SEND_WHOLE,
  },
  {
    fault: "413 Payload Too Large",
    when: "in streamed chunks at the floor",
    state: { ...STREAMED_CHUNKS, ...AT_FLOOR },
    error: answer(413),
    action: SEND_WHOLE,
  },
  {
    fault: "413 Payload Too Large",
    when: "in held chunks of a re-openable source at the floor",
    state: { mode: "held-chunks", ...AT_FLOOR },
    error: answer(413),
    action: SEND_WHOLE,
  },
  {
    fault: "413 Payload Too Large",
    when: "in held chunks of a source read once at the floor",
    state: { ...HELD_CHUNKS_READ_ONCE, ...AT_FLOOR },
    error: answer(413),
    action: REFUSED,
  },
  {
    fault: "413 Payload Too Large",
    when: "in one request after chunks were refused",
    state: { mode: "stream-only" },
    error: answer(413),
    action: REFUSED,
  },
  {
    fault: "411 Length Required",
    when: "streaming",
    error: answer(411),
    action: switchTo("held-chunks"),
  },
  {
    fault: "411 Length Required",
    when: "in streamed chunks",
    state: STREAMED_CHUNKS,
    error: answer(411),
    action: switchTo("held-chunks"),
  },
  {
    fault: "411 Length Required",
    when: "in held chunks",
    state: { mode: "held-chunks" },
    error: answer(411),
    action: REFUSED,
  },
  {
    fault: "411 Length Required",
    when: "in one request after chunks were refused",
    state: { mode: "stream-only" },
    error: answer(411),
    action: REFUSED,
  },
  // The session's position and the session itself.
  {
    fault: "416 Range Not Satisfiable",
    when: "in held chunks",
    state: { mode: "held-chunks" },
    error: answer(416, "BLOB_UPLOAD_INVALID"),
    action: RETRY,
  },
  {
    fault: "404 BLOB_UPLOAD_UNKNOWN on the upload URL (a lost session)",
    when: "streaming",
    error: answer(404, "BLOB_UPLOAD_UNKNOWN"),
    action: RETRY_NEW_SESSION,
  },
  {
    fault: "404 BLOB_UPLOAD_UNKNOWN on the upload URL (a lost session)",
    when: "in streamed chunks",
    state: STREAMED_CHUNKS,
    error: answer(404, "BLOB_UPLOAD_UNKNOWN"),
    action: RETRY_NEW_SESSION,
  },
  {
    fault: "400 BLOB_UPLOAD_INVALID (a stale _state after a cut)",
    when: "streaming",
    error: answer(400, "BLOB_UPLOAD_INVALID"),
    action: RETRY_NEW_SESSION,
  },
  {
    fault: "404 BLOB_UPLOAD_UNKNOWN",
    when: "with no session open",
    state: { hasSession: false },
    error: answer(404, "BLOB_UPLOAD_UNKNOWN"),
    action: REFUSED,
  },
  // Registries that refuse chunks.
  {
    fault: "400 UNSUPPORTED to a chunk",
    when: "in streamed chunks",
    state: STREAMED_CHUNKS,
    error: answer(400, "UNSUPPORTED"),
    action: SEND_WHOLE,
  },
  {
    fault: "405 to a chunk",
    when: "in streamed chunks",
    state: STREAMED_CHUNKS,
    error: answer(405),
    action: SEND_WHOLE,
  },
  {
    fault: "501 to a chunk",
    when: "in held chunks of a re-openable source",
    state: { mode: "held-chunks" },
    error: answer(501),
    action: SEND_WHOLE,
  },
  {
    fault: "400 to a chunk",
    when: "in held chunks of a source read once",
    state: HELD_CHUNKS_READ_ONCE,
    error: answer(400, "UNSUPPORTED"),
    action: REFUSED,
  },
  {
    fault: "400 DIGEST_INVALID after chunks",
    when: "in streamed chunks",
    state: STREAMED_CHUNKS,
    error: answer(400, "DIGEST_INVALID"),
    action: SEND_WHOLE,
  },
  // The registry's copy of the upload is not this blob's.
  {
    fault: "400 DIGEST_INVALID",
    when: "streaming, in a session of this run",
    error: answer(400, "DIGEST_INVALID"),
    action: REFUSED,
  },
  {
    fault: "400 DIGEST_INVALID",
    when: "in a resumed session",
    state: { resumed: true },
    error: answer(400, "DIGEST_INVALID"),
    action: RESTART_FRESH,
  },
  {
    fault: "400 DIGEST_INVALID after chunks",
    when: "in a resumed session",
    state: { ...STREAMED_CHUNKS, resumed: true },
    error: answer(400, "DIGEST_INVALID"),
    action: RESTART_FRESH,
  },
  {
    fault: "400 DIGEST_INVALID",
    when: "in a resumed session after the fresh restart",
    state: { resumed: true, restartedFresh: true },
    error: answer(400, "DIGEST_INVALID"),
    action: { kind: "give-up", why: "copy-mismatch", dropSession: false },
  },
  {
    fault: "a session holding more bytes than the blob",
    when: "streaming",
    error: new StaleSession("the registry holds 600000 bytes, more than the blob has"),
    action: RESTART_FRESH,
  },
  {
    fault: "a session holding more bytes than the blob",
    when: "after the fresh restart",
    state: { restartedFresh: true },
    error: new StaleSession("the registry holds 600000 bytes, more than the blob has"),
    action: { kind: "give-up", why: "copy-mismatch", dropSession: false },
  },
  // Errors no retry can cure.
  { fault: "401", when: "streaming", error: answer(401, "UNAUTHORIZED"), action: REFUSED },
  { fault: "403 DENIED", when: "streaming", error: answer(403, "DENIED"), action: REFUSED },
  {
    fault: "404 NAME_UNKNOWN",
    when: "streaming",
    error: answer(404, "NAME_UNKNOWN"),
    action: REFUSED,
  },
  // Aborts and running out of retries.
  {
    fault: "an abort",
    when: "streaming",
    state: { aborted: true },
    error: new DOMException("stop", "AbortError"),
    action: { kind: "give-up", why: "aborted", dropSession: false },
  },
  {
    fault: "503 during an abort",
    when: "streaming",
    state: { aborted: true },
    error: answer(503),
    action: { kind: "give-up", why: "aborted", dropSession: false },
  },
  {
    fault: "503",
    when: "while the streak allows a retry",
    state: { retriesLeft: true },
    error: answer(503),
    action: RETRY,
  },
  {
    fault: "503",
    when: "with the streak spent and no session memory",
    state: { retriesLeft: false },
    error: answer(503),
    action: { kind: "give-up", why: "retries-exhausted", dropSession: true },
  },
  {
    fault: "503",
    when: "with the streak spent and a session memory",
    state: { retriesLeft: false, keepsSessions: true },
    error: answer(503),
    action: { kind: "give-up", why: "retries-exhausted", dropSession: false },
  },
  {
    fault: "404 BLOB_UPLOAD_UNKNOWN (a lost session)",
    when: "with the streak spent and a session memory",
    state: { retriesLeft: false, keepsSessions: true },
    error: answer(404, "BLOB_UPLOAD_UNKNOWN"),
    action: { kind: "give-up", why: "retries-exhausted", dropSession: true },
  },
  // A small blob sent in the closing PUT (monolithic) that the registry does not take that way.
  {
    fault: "413 Payload Too Large on a PUT carrying the blob",
    when: "monolithic",
    state: MONOLITHIC,
    error: answer(413),
    action: { kind: "leave-monolithic", mode: "stream" },
  },
  {
    fault: "404 NOT FOUND on a PUT carrying the blob (only an empty PUT is routed)",
    when: "monolithic",
    state: MONOLITHIC,
    error: answer(404),
    action: { kind: "leave-monolithic", mode: "stream" },
  },
  {
    fault: "400 DIGEST_INVALID on a PUT carrying the blob (the body was ignored)",
    when: "monolithic",
    state: MONOLITHIC,
    error: answer(400, "DIGEST_INVALID"),
    action: { kind: "leave-monolithic", mode: "stream" },
  },
  {
    fault: "413 Payload Too Large on a PUT carrying the blob",
    when: "monolithic, read once",
    state: { ...MONOLITHIC, reopenable: false },
    error: answer(413),
    action: { kind: "leave-monolithic", mode: "held-chunks" },
  },
  {
    fault: "404 BLOB_UPLOAD_UNKNOWN (a lost session)",
    when: "monolithic",
    state: MONOLITHIC,
    error: answer(404, "BLOB_UPLOAD_UNKNOWN"),
    action: RETRY_NEW_SESSION,
  },
  {
    fault: "503",
    when: "monolithic",
    state: MONOLITHIC,
    error: answer(503),
    action: RETRY,
  },
];

function describe(action: UploadAction): string {
  switch (action.kind) {
    case "retry":
      return `retry${action.dropSession ? " in a new session" : ""}`;
    case "switch-mode":
      return `switch to ${action.mode}`;
    case "shrink-chunks":
      return `chunks of ${action.chunkSize} bytes`;
    case "give-up":
      return `give up (${action.why}${action.dropSession ? ", session dropped" : ""})`;
    default:
      return action.kind;
  }
}

for (const { fault, when, state, error, action } of CASES) {
  Deno.test(`decide: ${fault}, ${when} → ${describe(action)}`, () => {
    assert.deepEqual(decide(error, { ...BASE, ...state }), action);
  });
}

Deno.test("decide: the table puts every chunk mode through a fault", () => {
  const modes = new Set(CASES.map((row) => row.state?.mode ?? BASE.mode));
  assert.deepEqual([...modes].sort(), [
    "held-chunks",
    "monolithic",
    "stream",
    "stream-only",
    "streamed-chunks",
  ]);
});

Deno.test("startingMode: chunks are held in memory only for a source read once", () => {
  assert.equal(startingMode(false, true), "stream");
  assert.equal(startingMode(false, false), "stream");
  assert.equal(startingMode(true, true), "streamed-chunks");
  assert.equal(startingMode(true, false), "held-chunks");
  assert.equal(startingMode(true, true, true), "monolithic", "a small blob goes in the PUT");
  assert.equal(startingMode(false, false, true), "monolithic");
});
