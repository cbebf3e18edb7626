/**
 * Bad networks, end to end: pushes through the fault proxy (cut connections, 503, 429 with
 * Retry-After, stalls, lost answers to the final PUT) into real Distribution 2.8 and into the
 * spec-following in-process registry, over many seeds, with the default retry settings (and a 1 s
 * stall timeout, so that the proxy's stalls are faults). Into Distribution every push must land
 * intact (pulled back with skopeo and digest-checked); elsewhere a push may also fail with a typed
 * error inside its time limit, leaving no tag. Also: a hung registry never hangs the tool (stall timeout, overall --timeout), and the
 * order of writes (blobs, then child manifests, then the tag) holds.
 */

import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import type { PushEvent } from "../../lib/logging/events.ts";
import { DEFAULT_PUSH_SETTINGS, type PushOptions } from "../../lib/options.ts";
import { push, type PushResult } from "../../lib/push/push.ts";
import { runPusher } from "../helpers/cli.ts";
import { type ProxyFaultRule, startFaultProxy } from "../helpers/fault_proxy.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { startMemoryRegistry } from "../helpers/memory_registry.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { type SampleArchive, writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir, tempDirUntilExit } from "../helpers/temp_dir.ts";

/** The fault mix: every kind the issue names, at rates that leave room to finish. */
const RULES: readonly ProxyFaultRule[] = [
  { type: "cut", rate: 0.2 },
  { type: "unavailable", rate: 0.1 },
  { type: "throttle", rate: 0.1 },
  { type: "stall", rate: 0.05 },
  { type: "drop-response", rate: 0.3 },
];
/** Wall-clock limit of one push under faults. */
const PUSH_LIMIT_MS = 90_000;
const MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, " +
  "application/vnd.docker.distribution.manifest.v2+json, " +
  "application/vnd.oci.image.index.v1+json";

let sampleOnce: Promise<SampleArchive> | undefined;

/** Three layers, the last with 12 MiB of incompressible bytes (three 5 MiB chunks). */
function sample(): Promise<SampleArchive> {
  sampleOnce ??= (async () => {
    const dir = await tempDirUntilExit("faults-sample-");
    return await writeSampleDockerArchive(`${dir}/sample.tar`, {
      layers: 3,
      randomBytes: 12 * 1024 * 1024,
      seed: 3,
    });
  })();
  return sampleOnce;
}

function options(file: string, target: string, extra: Partial<PushOptions> = {}): PushOptions {
  return {
    ...DEFAULT_PUSH_SETTINGS,
    file,
    targets: [target],
    timeoutSeconds: 60,
    stallTimeoutSeconds: 1,
    skipTls: false,
    caCertFiles: [],
    dryRun: false,
    forceUpload: false,
    noCache: false,
    ...extra,
  };
}

/** HTTP status of `GET /v2/<repository>/manifests/<reference>` straight at the registry. */
async function manifestStatus(
  base: string,
  repository: string,
  reference: string,
): Promise<number> {
  const response = await fetch(`${base}/v2/${repository}/manifests/${reference}`, {
    headers: { accept: MANIFEST_ACCEPT },
  });
  await response.body?.cancel();
  return response.status;
}

interface SeedOutcome {
  landed: boolean;
  result?: PushResult;
  error?: PusherError;
  ms: number;
  resumes: number;
  retries: number;
}

/** One in-process push with a fresh cache dir, bounded by {@link PUSH_LIMIT_MS}. */
async function pushWithLimit(pushOptions: PushOptions): Promise<SeedOutcome> {
  await using cache = await tempDir("faults-cache-");
  const cacheDir = cache.path;
  Deno.env.set("DOCKER_PUSHER_CACHE_DIR", cacheDir);
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error("push exceeded its limit")),
    PUSH_LIMIT_MS,
  );
  let resumes = 0;
  let retries = 0;
  const events = (event: PushEvent): void => {
    if (event.type === "retry") retries++;
    if (event.type === "blob" && event.reason?.startsWith("resuming at byte")) resumes++;
  };
  const started = performance.now();
  try {
    const result = await push(pushOptions, { events, signal: controller.signal });
    return { landed: true, result, ms: performance.now() - started, resumes, retries };
  } catch (error) {
    assert.equal(controller.signal.aborted, false, `the push hung: ${String(error)}`);
    assert.ok(error instanceof PusherError, `a typed error, not ${String(error)}`);
    assert.notEqual(error.kind, "internal", error.message);
    return { landed: false, error, ms: performance.now() - started, resumes, retries };
  } finally {
    clearTimeout(timer);
    Deno.env.delete("DOCKER_PUSHER_CACHE_DIR");
  }
}

interface Totals {
  seeds: number;
  landed: number;
  failed: number;
  faults: Record<string, number>;
  resumes: number;
  retries: number;
  bytesSent: number;
}

function addFaults(totals: Totals, faults: Partial<Record<string, number>>): void {
  for (const [type, count] of Object.entries(faults)) {
    totals.faults[type] = (totals.faults[type] ?? 0) + (count ?? 0);
  }
}

function report(label: string, totals: Totals, blobBytes: number, received?: number): void {
  const injected = Object.values(totals.faults).reduce((sum, count) => sum + count, 0);
  const stored = received === undefined ? "" : `, ${received} upload bytes reached the registry`;
  console.log(
    `${label}: ${totals.seeds} pushes, ${totals.landed} landed intact, ${totals.failed} failed ` +
      `clearly; ${injected} faults injected ${JSON.stringify(totals.faults)}; ${totals.retries} ` +
      `retries, ${totals.resumes} mid-blob resumes; ${totals.bytesSent} bytes sent${stored} for ` +
      `${totals.landed} landed pushes of ${blobBytes} archive layer bytes each`,
  );
}

/** Runs `seeds` through a fault proxy in front of `upstream`; checks each push and returns totals. */
async function seedRun(
  upstream: string,
  seeds: readonly number[],
  verifyHost: string,
  archive: SampleArchive,
): Promise<Totals> {
  const totals: Totals = {
    seeds: 0,
    landed: 0,
    failed: 0,
    faults: {},
    resumes: 0,
    retries: 0,
    bytesSent: 0,
  };
  for (const seed of seeds) {
    await using proxy = startFaultProxy({
      upstream,
      seed,
      rules: RULES,
      maxFaults: 8,
      cutBytes: [0, 3 * 1024 * 1024],
      stallMs: [1500, 2500],
      retryAfterSeconds: [0, 1],
    });
    const repository = `faults/s${seed}`;
    const outcome = await pushWithLimit(
      options(archive.path, `http://${proxy.host}/${repository}:1`, {
        largeLayerThreshold: seed % 2 === 0 ? 5 * 1024 * 1024 : DEFAULT_PUSH_SETTINGS
          .largeLayerThreshold,
      }),
    );
    proxy.faultsEnabled = false;
    totals.seeds++;
    totals.resumes += outcome.resumes;
    totals.retries += outcome.retries;
    addFaults(totals, proxy.stats.faults);
    if (outcome.landed && outcome.result !== undefined) {
      totals.landed++;
      totals.bytesSent += outcome.result.bytesSent;
      const pulled = await pullAndVerify(`${verifyHost}/${repository}:1`, {
        expectedManifestDigest: outcome.result.digest,
        expectedConfigDigest: archive.configDigest,
        expectedDiffIds: archive.diffIds,
      });
      assert.equal(pulled.images[0]?.layers.length, archive.diffIds.length);
    } else {
      totals.failed++;
      console.log(`  seed ${seed} failed clearly: ${outcome.error?.message}`);
      assert.equal(
        await manifestStatus(`http://${verifyHost}`, repository, "1"),
        404,
        "a failed push leaves no tag",
      );
    }
  }
  return totals;
}

Deno.test("faults: 20 seeds in a row of 8 cuts, 503s, 429s, stalls and lost PUT answers all land in Distribution 2.8", async () => {
  const archive = await sample();
  const registry = await startRegistry();
  try {
    const seeds = Array.from({ length: 20 }, (_, index) => index + 1);
    const totals = await seedRun(registry.url, seeds, registry.host, archive);
    const blobBytes = archive.layerSizes.reduce((sum, size) => sum + size, 0);
    report("Distribution 2.8 behind the fault proxy", totals, blobBytes);
    assert.equal(totals.landed, seeds.length, "every push lands with the default retry settings");
    for (const type of ["cut", "unavailable", "throttle", "stall", "drop-response"]) {
      assert.ok((totals.faults[type] ?? 0) > 0, `${type} faults were injected`);
    }
  } finally {
    await registry.stop();
  }
});

Deno.test("faults: against a spec-following registry, broken uploads resume mid-blob", async () => {
  const archive = await sample();
  await using registry = startMemoryRegistry();
  const seeds = [21, 22, 23, 24, 25];
  const totals = await seedRun(registry.url, seeds, registry.host, archive);
  const blobBytes = archive.layerSizes.reduce((sum, size) => sum + size, 0);
  const received = registry.stats.bytesReceived["upload-patch"] ?? 0;
  report("in-process spec registry behind the fault proxy", totals, blobBytes, received);
  assert.equal(totals.landed, seeds.length);
  assert.ok(totals.resumes > 0, "some uploads continued where the registry stood");
});

Deno.test("faults: the CLI under faults exits 0 with a verified image or one clear error line", async () => {
  const archive = await sample();
  const registry = await startRegistry();
  try {
    let landed = 0;
    for (const seed of [31, 32, 33]) {
      await using proxy = startFaultProxy({
        upstream: registry.url,
        seed,
        rules: RULES,
        maxFaults: 6,
        cutBytes: [0, 3 * 1024 * 1024],
        stallMs: [1500, 2500],
      });
      const started = performance.now();
      const run = await runPusher([
        "-f",
        archive.path,
        "-r",
        `http://${proxy.host}/cli/s${seed}:1`,
        "--stall-timeout",
        "1",
        "--large-layer-threshold",
        String(5 * 1024 * 1024),
        "--timeout",
        "60",
        "--quiet",
      ]);
      const ms = performance.now() - started;
      assert.ok(ms < PUSH_LIMIT_MS, `seed ${seed} took ${Math.round(ms)} ms`);
      if (run.code === 0) {
        landed++;
        await pullAndVerify(`${registry.host}/cli/s${seed}:1`, {
          expectedConfigDigest: archive.configDigest,
          expectedDiffIds: archive.diffIds,
        });
      } else {
        assert.ok([5, 6, 130].includes(run.code), `exit ${run.code}: ${run.stderr}`);
        assert.match(run.stderr.trim(), /^error: [^\n]+$/);
        assert.equal(await manifestStatus(registry.url, `cli/s${seed}`, "1"), 404);
      }
      console.log(
        `CLI seed ${seed}: exit ${run.code} in ${Math.round(ms)} ms, faults ${
          JSON.stringify(proxy.stats.faults)
        }`,
      );
    }
    assert.ok(landed >= 2);
  } finally {
    await registry.stop();
  }
});

const ALL_KINDS = [
  "ping",
  "token",
  "blob-head",
  "blob-get",
  "upload-start",
  "upload-patch",
  "upload-put",
  "upload-status",
  "upload-delete",
  "manifest-put",
  "manifest-get",
  "manifest-head",
  "tags-list",
  "other",
] as const;

Deno.test("faults: a hung registry fails by the stall timeout, or by --timeout, never hangs", async () => {
  const fixtures = await sharedFixtures();
  await using registry = startMemoryRegistry();
  await using proxy = startFaultProxy({
    upstream: registry.url,
    seed: 1,
    rules: [{ type: "stall", rate: 1, kinds: ALL_KINDS }],
    stallMs: [120_000, 120_000],
  });
  const file = fixtures["docker-archive"].path;
  const target = `http://${proxy.host}/hung/app:1`;
  let started = performance.now();
  const stalled = await runPusher([
    "-f",
    file,
    "-r",
    target,
    "--stall-timeout",
    "1",
    "--retry-attempts",
    "1",
  ]);
  const stalledMs = performance.now() - started;
  assert.equal(stalled.code, 5, stalled.stderr);
  assert.match(stalled.stderr, /stalled: no data moved for 1 s/);
  assert.ok(stalledMs < 15_000, `stall timeout took ${Math.round(stalledMs)} ms`);

  started = performance.now();
  const timedOut = await runPusher(["-f", file, "-r", target, "--timeout", "2"]);
  const timedOutMs = performance.now() - started;
  assert.equal(timedOut.code, 130, timedOut.stderr);
  assert.match(timedOut.stderr, /longer than --timeout 2s/);
  assert.ok(timedOutMs < 15_000, `--timeout took ${Math.round(timedOutMs)} ms`);
  console.log(
    `hung registry: --stall-timeout 1 failed in ${Math.round(stalledMs)} ms (exit 5), ` +
      `--timeout 2 in ${Math.round(timedOutMs)} ms (exit 130)`,
  );
  assert.deepEqual(registry.tags("hung/app"), []);
});

Deno.test("faults: a push whose layer never gets through writes no manifest and no tag", async () => {
  const archive = await sample();
  const registry = await startRegistry();
  try {
    await using proxy = startFaultProxy({
      upstream: registry.url,
      seed: 5,
      rules: [{ type: "cut", rate: 1, kinds: ["upload-patch"] }],
      cutBytes: [1000, 100_000],
    });
    const run = await runPusher([
      "-f",
      archive.path,
      "-r",
      `http://${proxy.host}/broken/app:1`,
      "--retry-attempts",
      "2",
      "--quiet",
    ]);
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stderr.trim(), /^error: [^\n]+$/);
    assert.equal(proxy.stats.requests["manifest-put"] ?? 0, 0);
    assert.equal(await manifestStatus(registry.url, "broken/app", "1"), 404);
  } finally {
    await registry.stop();
  }
});

Deno.test("faults: blobs first, then child manifests by digest, the tag last", async () => {
  const fixtures = await sharedFixtures();
  const fixture = fixtures["oci-multi-platform"];
  const registry = await startRegistry();
  try {
    await using proxy = startFaultProxy({ upstream: registry.url, seed: 1, rules: [] });
    const run = await runPusher([
      "-f",
      fixture.path,
      "-r",
      `http://${proxy.host}/order/app:1`,
      "--quiet",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const log = proxy.log;
    const manifestPuts = log.filter((record) => record.kind === "manifest-put");
    const lastBlobWrite = Math.max(
      ...log.filter((record) => record.kind === "upload-put" || record.kind === "upload-start")
        .map((record) => record.sequence),
    );
    assert.equal(manifestPuts.length, fixture.images.length + 1);
    assert.ok(manifestPuts.every((record) => record.sequence > lastBlobWrite));
    const tagPut = manifestPuts.at(-1);
    assert.match(tagPut?.path ?? "", /\/manifests\/1$/, "the tag is written last");
    for (const child of manifestPuts.slice(0, -1)) {
      assert.match(child.path, /\/manifests\/sha256:[0-9a-f]{64}$/);
    }
    assert.equal(
      await manifestStatus(registry.url, "order/app", "1"),
      200,
    );
  } finally {
    await registry.stop();
  }
});
