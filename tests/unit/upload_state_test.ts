/**
 * The resume state file (open upload sessions per registry) and the per-request stall guard,
 * with fake time where timing matters.
 */

import assert from "node:assert/strict";
import { FakeClock } from "../helpers/fake_clock.ts";
import { join } from "node:path";
import { PusherError } from "../../lib/errors.ts";
import { guardRequest } from "../../lib/transfer/request_guard.ts";
import { UploadState } from "../../lib/state/upload_state.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const REGISTRY = "registry.example:5000";
const KEY = UploadState.key("team/app", "sha256:" + "a".repeat(64), "gzip-4-4194304");

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  await using temp = await tempDir("upload-state-");
  const dir = temp.path;
  await run(dir);
}

Deno.test("upload state: a saved session survives a reload; forget removes it", async () => {
  await withDir(async (dir) => {
    const state = await UploadState.load(dir, REGISTRY);
    state.remember(KEY, {
      location: new URL("http://r/v2/x/blobs/uploads/1?_state=s"),
      offset: 42,
    });
    await state.flush();
    const again = await UploadState.load(dir, REGISTRY);
    assert.equal(again.recall(KEY)?.location, "http://r/v2/x/blobs/uploads/1?_state=s");
    assert.equal(again.recall(KEY)?.offset, 42);
    again.memory(KEY).forget();
    await again.flush();
    assert.equal((await UploadState.load(dir, REGISTRY)).recall(KEY), undefined);
    const leftovers = [...Deno.readDirSync(dir)].map((entry) => entry.name);
    assert.deepEqual(leftovers, [UploadState.pathFor(dir, REGISTRY).slice(dir.length + 1)]);
  });
});

Deno.test("upload state: the finished blob is written at once and kept by later saves", async () => {
  await withDir(async (dir) => {
    const state = await UploadState.load(dir, REGISTRY, { minIntervalMs: 60_000 });
    const blob = { digest: `sha256:${"b".repeat(64)}`, size: 9, compression: "gzip" as const };
    await state.finishing(KEY, blob);
    assert.equal(state.recall(KEY), undefined, "nothing to finish without a session");
    state.remember(KEY, { location: new URL("http://r/u"), offset: 1 });
    const writes = state.writes;
    await state.finishing(KEY, blob);
    assert.equal(state.writes, writes + 1, "written without waiting for the throttle");
    assert.deepEqual((await UploadState.load(dir, REGISTRY)).recall(KEY)?.blob, blob);
    state.remember(KEY, { location: new URL("http://r/u2"), offset: 9 });
    await state.flush();
    const again = (await UploadState.load(dir, REGISTRY)).recall(KEY);
    assert.equal(again?.location, "http://r/u2");
    assert.deepEqual(again?.blob, blob);
  });
});

Deno.test("upload state: writes are throttled while uploads run, and flushed on demand", async () => {
  await withDir(async (dir) => {
    let now = Date.now();
    const state = await UploadState.load(dir, REGISTRY, { minIntervalMs: 1000, now: () => now });
    const memory = state.memory(KEY);
    for (let offset = 1; offset <= 20; offset++) {
      memory.remember({ location: new URL("http://r/u"), offset });
      now += 10;
    }
    assert.equal(state.writes, 1, "only the first acknowledgement is written at once");
    now += 1000;
    memory.remember({ location: new URL("http://r/u"), offset: 21 });
    assert.equal(state.writes, 1, "a timer is already pending");
    await state.flush();
    assert.equal(state.writes, 2);
    assert.equal((await UploadState.load(dir, REGISTRY)).recall(KEY)?.offset, 21);
  });
});

Deno.test("upload state: corrupt, foreign and stale files are ignored", async () => {
  await withDir(async (dir) => {
    const path = UploadState.pathFor(dir, REGISTRY);
    for (const text of ["{not json", "null", '{"format":"other","version":1}', "[]"]) {
      await Deno.writeTextFile(path, text);
      const state = await UploadState.load(dir, REGISTRY);
      assert.equal(state.recall(KEY), undefined, text);
    }
    const entry = { location: "http://r/u", offset: 5, updatedAt: Date.now() };
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        format: "docker-image-pusher/uploads",
        version: 1,
        registry: "other.example",
        uploads: { [KEY]: entry },
      }),
    );
    assert.equal((await UploadState.load(dir, REGISTRY)).recall(KEY), undefined, "foreign");
    const old = Date.now() - 8 * 24 * 3600 * 1000;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        format: "docker-image-pusher/uploads",
        version: 1,
        registry: REGISTRY,
        uploads: {
          [KEY]: { ...entry, updatedAt: old },
          good: entry,
          bad: { location: "not a url", offset: 1, updatedAt: Date.now() },
          negative: { ...entry, offset: -1 },
          badBlob: { ...entry, blob: { digest: "md5:x", size: 1, compression: "gzip" } },
        },
      }),
    );
    const state = await UploadState.load(dir, REGISTRY);
    assert.equal(state.recall(KEY), undefined, "older than a week");
    assert.equal(state.recall("bad"), undefined);
    assert.equal(state.recall("negative"), undefined);
    assert.equal(state.recall("badBlob"), undefined);
    assert.equal(state.recall("good")?.offset, 5);
  });
});

Deno.test("upload state: an unwritable directory only warns", async () => {
  await withDir(async (dir) => {
    const blocker = join(dir, "file");
    await Deno.writeTextFile(blocker, "");
    const state = await UploadState.load(join(blocker, "sub"), REGISTRY);
    state.remember(KEY, { location: new URL("http://r/u"), offset: 1 });
    await state.flush();
    assert.equal(state.recall(KEY)?.offset, 1);
  });
});

Deno.test("request guard: a request with no activity fails with a retryable stall error", async () => {
  const clock = new FakeClock();
  let seen: AbortSignal | undefined;
  const pending = guardRequest(
    new AbortController().signal,
    { timeoutMs: 1000, label: "upload of x", clock },
    (signal) => {
      seen = signal;
      return new Promise<never>(() => {});
    },
  );
  clock.advance(999);
  assert.equal(seen?.aborted, false);
  clock.advance(1);
  await assert.rejects(pending, (error: unknown) => {
    assert.ok(error instanceof PusherError);
    assert.equal(error.kind, "network");
    assert.equal((error as { retryable?: boolean }).retryable, true);
    assert.match(error.message, /upload of x stalled: no data moved for 1 s/);
    return true;
  });
  assert.equal(seen?.aborted, true, "the request itself is aborted");
});

Deno.test("request guard: activity keeps a request alive; an in-memory body gets a window per MiB", async () => {
  const clock = new FakeClock();
  let touch: () => void = () => {};
  let finish: (value: string) => void = () => {};
  const streaming = guardRequest(
    new AbortController().signal,
    { timeoutMs: 1000, label: "stream", clock },
    (_signal, touched) => {
      touch = touched;
      return new Promise<string>((resolve) => finish = resolve);
    },
  );
  for (let i = 0; i < 5; i++) {
    clock.advance(900);
    touch();
  }
  finish("done");
  assert.equal(await streaming, "done");
  assert.equal(clock.timers.size, 0, "the watchdog stopped");

  let aborted: AbortSignal | undefined;
  const chunk = guardRequest(
    new AbortController().signal,
    { timeoutMs: 1000, label: "chunk", clock, bodyBytes: 3 * 1024 * 1024 },
    (signal) => {
      aborted = signal;
      return new Promise<never>(() => {});
    },
  );
  chunk.catch(() => {});
  clock.advance(2999);
  assert.equal(aborted?.aborted, false);
  clock.advance(1);
  await assert.rejects(chunk, /chunk stalled: no data moved for 3 s/);
});

Deno.test("request guard: the outer abort wins with its own reason", async () => {
  const clock = new FakeClock();
  const outer = new AbortController();
  const pending = guardRequest(
    outer.signal,
    { timeoutMs: 1000, label: "x", clock },
    () => new Promise<never>(() => {}),
  );
  outer.abort(new PusherError("interrupted", "Ctrl-C"));
  await assert.rejects(pending, { kind: "interrupted" });
  assert.equal(clock.timers.size, 0);
  await assert.rejects(
    guardRequest(outer.signal, { timeoutMs: 1000, label: "x", clock }, () => Promise.resolve(1)),
    { kind: "interrupted" },
  );
});
