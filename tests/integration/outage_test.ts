/**
 * Registry outages with default retry settings: a real Distribution registry killed in the middle
 * of a blob upload and started again 20 s later on the same port and storage (as a crash or a
 * rolling update does), and a registry that answers the first request and an upload's status
 * check with 503, 429 and stalls in a row. Each push must land intact (pulled back with skopeo),
 * and a push must go on within a few seconds of the registry's return.
 */

import assert from "node:assert/strict";
import type { PushEvent } from "../../lib/logging/events.ts";
import { DEFAULT_PUSH_SETTINGS, type PushOptions } from "../../lib/options.ts";
import { push, type PushResult } from "../../lib/push/push.ts";
import { type Fault, type FaultContext, startMemoryRegistry } from "../helpers/memory_registry.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { type SampleArchive, writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";

/** How long the registry stays down. */
const OUTAGE_MS = 20_000;
/** How soon after the registry's return the push must be done. */
const RETURN_LIMIT_MS = 5_000;

function options(file: string, target: string, extra: Partial<PushOptions> = {}): PushOptions {
  return {
    ...DEFAULT_PUSH_SETTINGS,
    file,
    targets: [target],
    skipTls: false,
    caCertFiles: [],
    dryRun: false,
    forceUpload: false,
    noCache: false,
    ...extra,
  };
}

/** Three layers, the last with `randomBytes` of incompressible bytes. */
async function sample(dir: string, randomBytes: number): Promise<SampleArchive> {
  return await writeSampleDockerArchive(`${dir}/sample.tar`, { layers: 3, randomBytes, seed: 14 });
}

/** Pushes with a fresh cache directory, collecting the events. */
async function pushCollecting(
  pushOptions: PushOptions,
  events: PushEvent[],
): Promise<PushResult> {
  await using cache = await tempDir("outage-cache-");
  Deno.env.set("DOCKER_PUSHER_CACHE_DIR", cache.path);
  try {
    return await push(pushOptions, { events: (event) => events.push(event) });
  } finally {
    Deno.env.delete("DOCKER_PUSHER_CACHE_DIR");
  }
}

/** Bytes Distribution holds in the open upload sessions of `repository`. */
async function uploadBytesOnDisk(storage: string, repository: string): Promise<number> {
  const uploads = `${storage}/docker/registry/v2/repositories/${repository}/_uploads`;
  let total = 0;
  try {
    for await (const entry of Deno.readDir(uploads)) {
      total += await Deno.stat(`${uploads}/${entry.name}/data`).then((info) => info.size, () => 0);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return total;
}

/** Resolves once Distribution has stored at least `bytes` of some upload of `repository`. */
async function uploadUnderway(storage: string, repository: string, bytes: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (await uploadBytesOnDisk(storage, repository) < bytes) {
    if (Date.now() > deadline) throw new Error("no upload reached the registry within 60 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("outage: a registry killed mid-upload and back 20 s later costs only the wait", async () => {
  await using dir = await tempDir("outage-");
  const archive = await sample(dir.path, 64 * 1024 * 1024);
  const registry = await startRegistry();
  try {
    const repository = "outage/restart";
    const events: PushEvent[] = [];
    const pushing = pushCollecting(
      options(archive.path, `${registry.host}/${repository}:1`),
      events,
    );
    const finished = pushing.then(() => performance.now(), () => performance.now());
    await uploadUnderway(registry.storage, repository, 1024 * 1024);
    await registry.kill();
    const downAt = performance.now();
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    await registry.restart();
    const backAt = performance.now();
    const result = await pushing;
    const afterReturnMs = (await finished) - backAt;
    const retries = events.filter((event) => event.type === "retry");
    const layerBytes = archive.layerSizes.reduce((sum, size) => sum + size, 0);
    console.log(
      `registry down ${Math.round(backAt - downAt)} ms; push done ${
        Math.round(afterReturnMs)
      } ms after its return; ${retries.length} retries; ${result.bytesSent} bytes sent for ` +
        `${layerBytes} layer bytes`,
    );
    assert.ok(
      events.some((event) =>
        event.type === "blob" && event.state === "retrying" && event.blob.role === "layer"
      ),
      "the outage hit a layer upload",
    );
    assert.ok(
      afterReturnMs < RETURN_LIMIT_MS,
      `done ${Math.round(afterReturnMs)} ms after the registry came back`,
    );
    const largest = Math.max(...archive.layerSizes);
    assert.ok(result.bytesSent < layerBytes + largest, "only the layer in flight went up again");
    await pullAndVerify(`${registry.host}/${repository}:1`, {
      expectedManifestDigest: result.digest,
      expectedConfigDigest: archive.configDigest,
      expectedDiffIds: archive.diffIds,
    });
  } finally {
    await registry.stop();
  }
});

/** A fault hook answering requests of `kind` with `faults`, one per attempt, then normally. */
function inOrder(kind: FaultContext["kind"], faults: readonly Fault[]) {
  return (context: FaultContext): Fault | undefined =>
    context.kind === kind ? faults[context.attempt - 1] : undefined;
}

const UNAVAILABLE: Fault = { type: "status", status: 503, body: "restarting" };
const THROTTLED: Fault = {
  type: "status",
  status: 429,
  headers: { "retry-after": "1" },
  body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
};
const STALL: Fault = { type: "stall", ms: 2_500 };

Deno.test("outage: a first request meeting 503, a stall and two 429s in a row lands", async () => {
  await using dir = await tempDir("outage-");
  const archive = await sample(dir.path, 256 * 1024);
  await using registry = startMemoryRegistry({
    faults: inOrder("ping", [UNAVAILABLE, STALL, THROTTLED, THROTTLED]),
  });
  const events: PushEvent[] = [];
  const result = await pushCollecting(
    options(archive.path, `${registry.host}/outage/first:1`, { stallTimeoutSeconds: 1 }),
    events,
  );
  const pingRetries = events.filter((event) => event.type === "retry" && event.what === "ping");
  assert.equal(pingRetries.length, 4, "each fault cost one retry of the ping");
  await pullAndVerify(`${registry.host}/outage/first:1`, {
    expectedManifestDigest: result.digest,
    expectedConfigDigest: archive.configDigest,
    expectedDiffIds: archive.diffIds,
  });
});

Deno.test("outage: the status check after a cut meets 503, 429, a stall and 503 and the upload resumes", async () => {
  await using dir = await tempDir("outage-");
  const archive = await sample(dir.path, 4 * 1024 * 1024);
  const cut: Fault = { type: "cut", afterBytes: 1024 * 1024 };
  const statusFaults = [UNAVAILABLE, THROTTLED, STALL, UNAVAILABLE];
  const patchFaults = inOrder("upload-patch", [cut]);
  const statusHook = inOrder("upload-status", statusFaults);
  await using registry = startMemoryRegistry({
    faults: (context) => patchFaults(context) ?? statusHook(context),
  });
  const events: PushEvent[] = [];
  const result = await pushCollecting(
    options(archive.path, `${registry.host}/outage/status:1`, {
      stallTimeoutSeconds: 1,
      maxConcurrent: 1,
    }),
    events,
  );
  const statusChecks = registry.log.filter((record) => record.kind === "upload-status");
  assert.equal(statusChecks.length, statusFaults.length + 1, "retried until the check answered");
  assert.ok(
    events.some((event) => event.type === "blob" && event.reason?.startsWith("resuming at byte")),
    "the upload continued where the registry stood",
  );
  await pullAndVerify(`${registry.host}/outage/status:1`, {
    expectedManifestDigest: result.digest,
    expectedConfigDigest: archive.configDigest,
    expectedDiffIds: archive.diffIds,
  });
});
