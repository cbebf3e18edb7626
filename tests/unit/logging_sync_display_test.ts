/**
 * The displays fed a sync's events, images interleaved as they are when several move at once:
 * the plain display prefixes every line of an image with its LIST line; the terminal display keeps
 * one row per LIST line (checking, transferring N% with a bar, done, unchanged, failed with why)
 * under a heading, with a count of finished lines, and leaves the summary below the last frame;
 * it shows the running lines only when they don't all fit. JSON progress is limited per blob and
 * line, not per blob alone.
 */

import assert from "node:assert/strict";
import type { BlobInfo, PushEvent } from "../../lib/logging/events.ts";
import { JsonDisplay } from "../../lib/logging/json_display.ts";
import { SyncPlainDisplay } from "../../lib/logging/sync_plain_display.ts";
import { SyncTtyDisplay } from "../../lib/logging/sync_tty_display.ts";

const ESC = "\x1b[";
const LAYER: BlobInfo = {
  id: "sha256:" + "1".repeat(64),
  digest: "sha256:" + "1".repeat(64),
  size: 1000,
  role: "layer",
};
const CONFIG: BlobInfo = {
  id: "sha256:" + "2".repeat(64),
  digest: "sha256:" + "2".repeat(64),
  size: 100,
  role: "config",
};

/** A sync of three lines: 2 moves an image, 3 fails, 4 is unchanged; 2's events come in between. */
function syncEvents(): { opening: PushEvent[]; middle: PushEvent[]; closing: PushEvent[] } {
  const opening: PushEvent[] = [
    {
      type: "syncing",
      from: "images.txt",
      to: "r.test/mirror",
      dryRun: false,
      lines: [2, 3, 4].map((line) => ({
        line,
        source: `src.test/app${line}:1`,
        target: `r.test/mirror/app${line}:1`,
      })),
    },
    {
      type: "start",
      file: "src.test/app2:1",
      targets: ["r.test/mirror/app2:1"],
      blobs: [LAYER, CONFIG],
      totalBytes: 1100,
      dryRun: false,
      line: 2,
    },
    { type: "blob", blob: CONFIG, state: "exists", line: 2 },
    { type: "blob", blob: LAYER, state: "uploading", line: 2 },
    { type: "warning", message: "slow registry", line: 3 },
    {
      type: "sync",
      source: "src.test/app3:1",
      target: "r.test/mirror/app3:1",
      status: "failed",
      bytesSent: 0,
      message: "the source src.test/app3:1 does not exist",
      line: 3,
    },
  ];
  const middle: PushEvent[] = [
    { type: "progress", id: LAYER.id, bytes: 400, total: 1000, line: 2 },
  ];
  const closing: PushEvent[] = [
    { type: "blob", blob: LAYER, state: "uploaded", line: 2 },
    {
      type: "sync",
      source: "src.test/app4:1",
      target: "r.test/mirror/app4:1",
      status: "unchanged",
      digest: "sha256:" + "4".repeat(64),
      bytesSent: 0,
      line: 4,
    },
    {
      type: "sync",
      source: "src.test/app2:1",
      target: "r.test/mirror/app2:1",
      status: "transferred",
      digest: "sha256:" + "3".repeat(64),
      bytesSent: 1000,
      line: 2,
    },
    {
      type: "synced",
      lines: { transferred: 1, unchanged: 1, failed: 1, planned: 0 },
      bytesSent: 1000,
      durationMs: 2500,
      dryRun: false,
    },
  ];
  return { opening, middle, closing };
}

/** The lines of the last frame drawn in `written`: after the last erasure, those the area drew. */
function lastFrame(written: string): string[] {
  const erased = written.lastIndexOf(`${ESC}0J`);
  return written.slice(erased < 0 ? 0 : erased).split("\n")
    .filter((line) => line.endsWith(`${ESC}K`))
    .map((line) => line.replaceAll(`${ESC}K`, ""));
}

Deno.test("plain sync display: every line of an image starts with its LIST line; the run opens and closes", () => {
  const lines: string[] = [];
  const display = new SyncPlainDisplay((line) => lines.push(line), 60_000);
  const { opening, middle, closing } = syncEvents();
  for (const event of [...opening, ...middle, ...closing]) display.onEvent(event);
  display.close();
  assert.equal(lines[0], "syncing 3 images from images.txt → r.test/mirror");
  assert.equal(
    lines.at(-1),
    "synced 3 lines in 2.5s: 1 transferred (1000 B sent), 1 unchanged, 1 failed",
  );
  const body = lines.slice(1, -1);
  for (const line of body) assert.match(line, /^line [234]: /, line);
  assert.deepEqual(body, [
    "line 2: pushing src.test/app2:1 → r.test/mirror/app2:1: 2 blobs, 1.1 KiB",
    "line 2: config 222222222222 100 B: exists",
    "line 2: layer 111111111111 1000 B: uploading",
    "line 3: warning: slow registry",
    "line 3: failed src.test/app3:1 → r.test/mirror/app3:1: the source src.test/app3:1 does " +
    "not exist",
    "line 2: layer 111111111111 1000 B: uploaded",
    `line 4: unchanged src.test/app4:1 → r.test/mirror/app4:1: sha256:${"4".repeat(64)}`,
    `line 2: done src.test/app2:1 → r.test/mirror/app2:1: sha256:${"3".repeat(64)}`,
  ]);
});

Deno.test("plain sync display: a dry run says what would happen", () => {
  const lines: string[] = [];
  const display = new SyncPlainDisplay((line) => lines.push(line), 60_000);
  display.onEvent({ type: "syncing", from: "l.txt", to: "r.test/m", dryRun: true, lines: [] });
  display.onEvent({
    type: "sync",
    source: "a.test/x:1",
    target: "r.test/m/x:1",
    status: "planned",
    bytesSent: 0,
    message: "would copy: the target tag does not exist",
    line: 1,
  });
  display.onEvent({
    type: "synced",
    lines: { transferred: 0, unchanged: 0, failed: 0, planned: 1 },
    bytesSent: 0,
    durationMs: 10,
    dryRun: true,
  });
  display.close();
  assert.deepEqual(lines, [
    "checking 0 images from l.txt → r.test/m (dry run: nothing is written)",
    "line 1: would transfer a.test/x:1 → r.test/m/x:1: would copy: the target tag does not exist",
    "dry run of 1 lines (nothing written): 1 would transfer, 0 unchanged, 0 would fail",
  ]);
});

Deno.test("terminal sync display: one row per LIST line with its status, a count, log lines above, the summary below", () => {
  let written = "";
  let now = 0;
  const display = new SyncTtyDisplay(
    (text) => written += text,
    () => ({ columns: 200, rows: 30 }),
    () => now,
  );
  const { opening, middle, closing } = syncEvents();
  for (const event of [...opening, ...middle]) display.onEvent(event);
  now = 3000;
  display.log("a log line");
  const frame = lastFrame(written);
  assert.deepEqual(frame, [
    "Syncing images.txt → r.test/mirror",
    // 100 bytes of config already there and 400 of 1000 of the layer sent: 500 of 1100.
    "2 transferring  45% [#########-----------] src.test/app2:1 → r.test/mirror/app2:1",
    "3 failed            src.test/app3:1 → r.test/mirror/app3:1: the source src.test/app3:1 " +
    "does not exist",
    "4 checking          src.test/app4:1 → r.test/mirror/app4:1",
    "1 of 3 lines finished: 0 done, 0 unchanged, 1 failed (3.0s)",
  ]);
  assert.match(written, /line 3: warning: slow registry\n/, "a line's warning, prefixed, above");
  assert.match(written, /a log line\n/);

  for (const event of closing) display.onEvent(event);
  display.close();
  const end = written.slice(written.lastIndexOf(`${ESC}0J`));
  const rows = end.split("\n").map((line) => line.replaceAll(`${ESC}K`, ""));
  assert.ok(!end.includes("a log line"), "the log line stays where it was printed");
  assert.ok(rows.some((row) => row.startsWith("2 done              src.test/app2:1")), end);
  assert.ok(rows.some((row) => row.startsWith("4 unchanged         src.test/app4:1")), end);
  assert.ok(rows.includes("3 of 3 lines finished: 1 done, 1 unchanged, 1 failed (3.0s)"), end);
  assert.equal(
    rows.filter((row) => row !== "").at(-1),
    "synced 3 lines in 2.5s: 1 transferred (1000 B sent), 1 unchanged, 1 failed",
    "the summary stays below the last frame",
  );
});

Deno.test("terminal sync display: when the lines don't fit, the running ones and a count of the rest", () => {
  let written = "";
  const display = new SyncTtyDisplay((text) => written += text, () => ({ columns: 80, rows: 6 }));
  display.onEvent({
    type: "syncing",
    from: "big.txt",
    to: "r.test/m",
    dryRun: false,
    lines: Array.from({ length: 10 }, (_, index) => ({
      line: index + 1,
      source: `s.test/i${index + 1}:1`,
      target: `r.test/m/i${index + 1}:1`,
    })),
  });
  for (const line of [1, 2, 3, 4, 5, 6]) {
    display.onEvent({
      type: "sync",
      source: `s.test/i${line}:1`,
      target: `r.test/m/i${line}:1`,
      status: "unchanged",
      bytesSent: 0,
      line,
    });
  }
  display.onEvent({
    type: "start",
    file: "s.test/i9:1",
    targets: ["r.test/m/i9:1"],
    blobs: [LAYER],
    totalBytes: 1000,
    dryRun: false,
    line: 9,
  });
  display.log("tick");
  display.close();
  const frame = lastFrame(written);
  assert.equal(frame.length, 5, frame.join("\n"));
  assert.match(frame[1] ?? "", /^ 7 checking/);
  assert.match(frame[2] ?? "", /^ 9 transferring {3}0%/, "the line moving bytes is shown first");
  assert.equal(frame[3], "… 8 more lines");
  assert.match(frame[4] ?? "", /^6 of 10 lines finished: 0 done, 6 unchanged, 0 failed/);
});

Deno.test("JSON progress is limited per blob and LIST line: the same blob in two lines is reported for each", () => {
  const out: Array<Record<string, unknown>> = [];
  const display = new JsonDisplay((line) => out.push(JSON.parse(line)), () => {}, () => 5000);
  for (const line of [2, 3, 2]) {
    display.onEvent({ type: "progress", id: LAYER.id, bytes: 10, total: 1000, line });
  }
  assert.deepEqual(out.map((event) => event["line"]), [2, 3]);
});
