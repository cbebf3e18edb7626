/**
 * `sync()` against real Distribution registries. A list mixing registry sources (put there by
 * skopeo; one filtered by `--platform`, one listed twice) and archives lands in a second
 * registry: skopeo pulls every target back with each blob checked and the digests expected. The
 * two lines sharing an image upload each blob once (the other mounts it). A second run sends no
 * blob byte, writes nothing, reports every line unchanged, and looks at a registry-source line
 * with one manifest `HEAD` per side (counted by proxies in front of both registries). A line whose
 * source is missing fails with its cause while the others land, and the exit code is that of the
 * first failure; a dry run writes nothing. A registry that denies the look at a target that does
 * not exist yet (Aliyun) gets the image anyway, with a warning.
 */

import assert from "node:assert/strict";
import type { PushEvent } from "../../lib/logging/events.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import { DEFAULT_SYNC_SETTINGS, type SyncOptions } from "../../lib/sync/options.ts";
import { type LineOutcome, sync, syncExitCode, type SyncResult } from "../../lib/sync/sync.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault_proxy.ts";
import { type FixtureInfo, sharedFixtures } from "../helpers/fixtures.ts";
import { startMemoryRegistry } from "../helpers/memory_registry.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { pullAndVerify, skopeoInspect } from "../helpers/pull_verify.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

/** Puts an OCI archive fixture's image into a registry with skopeo, digests preserved. */
async function seed(transport: string, target: string): Promise<void> {
  const output = await new Deno.Command("skopeo", {
    args: [
      ...["--insecure-policy", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false"],
      transport,
      `docker://${target}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(output.success, `skopeo copy failed: ${new TextDecoder().decode(output.stderr)}`);
}

function settings(from: string, to: string, extra: Partial<SyncOptions> = {}): SyncOptions {
  return {
    ...DEFAULT_SYNC_SETTINGS,
    from,
    to,
    timeoutSeconds: 120,
    stallTimeoutSeconds: 20,
    maxConcurrent: 2,
    skipTls: false,
    caCertFiles: [],
    dryRun: false,
    noCache: false,
    ...extra,
  };
}

/** Runs a sync with its own layer cache directory, keeping its events. */
async function recordedSync(
  options: SyncOptions,
  cacheDir: string,
): Promise<{ result: SyncResult; events: PushEvent[] }> {
  const events: PushEvent[] = [];
  Deno.env.set("DOCKER_PUSHER_CACHE_DIR", cacheDir);
  try {
    const result = await sync(options, { events: (event) => events.push(event) });
    return { result, events };
  } finally {
    Deno.env.delete("DOCKER_PUSHER_CACHE_DIR");
  }
}

async function withRegistries(
  body: (source: TestRegistry, target: TestRegistry) => Promise<void>,
): Promise<void> {
  const source = await startRegistry();
  try {
    const target = await startRegistry();
    try {
      await body(source, target);
    } finally {
      await target.stop();
    }
  } finally {
    await source.stop();
  }
}

/** Requests the proxy saw from `since` on, as `kind repository` strings. */
function requestsSince(proxy: FaultProxy, since: number): string[] {
  return proxy.log.slice(since).map((entry) => {
    const repository = /^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//.exec(entry.path)?.[1] ?? "";
    return `${entry.kind} ${repository}`;
  });
}

function statuses(result: SyncResult): string[] {
  return result.lines.map((line) => `${line.line} ${line.status}`);
}

function outcome(result: SyncResult, line: number): LineOutcome {
  const found = result.lines.find((entry) => entry.line === line);
  assert.ok(found !== undefined, `no outcome for line ${line}`);
  return found;
}

/** The final state of each blob of one list line, by digest. */
function blobStates(events: readonly PushEvent[], line: number): Map<string, string> {
  const states = new Map<string, string>();
  for (const event of events) {
    if (event.type !== "blob" || event.line !== line) continue;
    if (["exists", "mounted", "uploaded"].includes(event.state)) {
      states.set(event.blob.digest ?? event.blob.id, event.state);
    }
  }
  return states;
}

async function verifyArchiveTarget(reference: string, fixture: FixtureInfo): Promise<void> {
  await pullAndVerify(reference, {
    expectedConfigDigest: fixture.configDigest,
    expectedDiffIds: fixture.diffIds,
  });
}

Deno.test("a mixed list lands in a second registry; a second run sends nothing and says unchanged", async () => {
  const fixtures = await sharedFixtures();
  await using work = await tempDir();
  await withRegistries(async (source, target) => {
    await using src = startFaultProxy({ upstream: source.url, seed: 1 });
    await using dst = startFaultProxy({ upstream: target.url, seed: 2 });
    await seed(`oci-archive:${fixtures["oci-archive"].path}:v1`, `${source.host}/src/app:v1`);
    await seed(
      `oci-archive:${fixtures["oci-multi-platform"].path}:v1`,
      `${source.host}/src/multi:v1`,
    );
    await Deno.copyFile(fixtures["docker-archive"].path, `${work.path}/app.tar`);
    await Deno.copyFile(fixtures["docker-v25"].path, `${work.path}/v25.tar`);
    const prefix = `${dst.host}/mirror`;
    const list = `${work.path}/images.txt`;
    await Deno.writeTextFile(
      list,
      [
        "# registry sources, one listed twice, one filtered",
        `${src.host}/src/app:v1`,
        `${src.host}/src/app:v1 => ${dst.host}/copies/app:v1`,
        `--platform=linux/arm64 ${src.host}/src/multi:v1`,
        "# archives",
        "./app.tar",
        `./v25.tar => ${prefix}/v25/app:v1`,
      ].join("\n"),
    );
    const cache = `${work.path}/cache`;
    const appDigest = (await skopeoInspect(`${source.host}/src/app:v1`)).digest;
    const indexDigest = fixtures["oci-multi-platform"].indexDigest;

    const first = await recordedSync(settings(list, prefix), cache);
    assert.deepEqual(statuses(first.result), [
      "2 transferred",
      "3 transferred",
      "4 transferred",
      "6 transferred",
      "7 transferred",
    ]);
    assert.equal(syncExitCode(first.result), 0);
    assert.equal(outcome(first.result, 2).target, `${prefix}/src/app:v1`);
    assert.equal(outcome(first.result, 2).digest, appDigest);
    assert.equal(outcome(first.result, 3).digest, appDigest);
    assert.notEqual(outcome(first.result, 4).digest, indexDigest, "a filtered index");
    assert.equal(outcome(first.result, 6).target, `${prefix}/library/app:v1`);
    await pullAndVerify(`${target.host}/mirror/src/app:v1`, { expectedManifestDigest: appDigest });
    await pullAndVerify(`${target.host}/copies/app:v1`, { expectedManifestDigest: appDigest });
    const arm = await pullAndVerify(`${target.host}/mirror/src/multi:v1`, {
      all: true,
      expectedManifestDigest: outcome(first.result, 4).digest ?? "",
    });
    assert.deepEqual(arm.images.map((image) => image.platform), ["linux/arm64/v8"]);
    await verifyArchiveTarget(`${target.host}/mirror/library/app:v1`, fixtures["docker-archive"]);
    await verifyArchiveTarget(`${target.host}/mirror/v25/app:v1`, fixtures["docker-v25"]);

    // The copy lines share blobs (one image listed twice; the filtered index shares layers):
    // each blob is uploaded by one of them and mounted by the others.
    const copyLines = [2, 3, 4].map((line) => blobStates(first.events, line));
    const digests = new Set(copyLines.flatMap((states) => [...states.keys()]));
    for (const digest of digests) {
      const states = copyLines.flatMap((lineStates) => lineStates.get(digest) ?? []).sort();
      assert.deepEqual(
        states,
        ["uploaded", ...states.slice(1).map(() => "mounted")].sort(),
        digest,
      );
    }
    assert.equal(copyLines[0]?.size, copyLines[1]?.size);
    const uploads = requestsSince(dst, 0).filter((request) =>
      ["mirror/src/app", "copies/app", "mirror/src/multi"].some((repository) =>
        request === `upload-put ${repository}`
      )
    );
    assert.equal(uploads.length, digests.size, "one upload per blob across the copy lines");

    // Every event names its line; one sync event per line.
    const runEvents = ["syncing", "synced"];
    assert.deepEqual(
      first.events.filter((event) => runEvents.includes(event.type)).map((event) => event.type),
      runEvents,
    );
    assert.ok(
      first.events.filter((event) => !runEvents.includes(event.type))
        .every((event) => [2, 3, 4, 6, 7].includes(event.line ?? 0)),
    );
    const done = first.events.filter((event) => event.type === "sync");
    assert.deepEqual(done.map((event) => event.line).sort(), [2, 3, 4, 6, 7]);

    const srcBefore = src.log.length;
    const dstBefore = dst.log.length;
    const second = await recordedSync(settings(list, prefix), cache);
    assert.deepEqual(statuses(second.result), [
      "2 unchanged",
      "3 unchanged",
      "4 unchanged",
      "6 unchanged",
      "7 unchanged",
    ]);
    assert.equal(second.result.bytesSent, 0);
    assert.equal(outcome(second.result, 4).digest, outcome(first.result, 4).digest);
    const srcRequests = requestsSince(src, srcBefore);
    const dstRequests = requestsSince(dst, dstBefore);
    assert.deepEqual(
      srcRequests.filter((request) => request.endsWith(" src/app")),
      ["manifest-head src/app", "manifest-head src/app"],
      "one HEAD of the source per line of it",
    );
    for (const repository of ["mirror/src/app", "copies/app"]) {
      assert.deepEqual(
        dstRequests.filter((request) => request.endsWith(` ${repository}`)),
        [`manifest-head ${repository}`],
        `one HEAD of ${repository}`,
      );
    }
    const writes = [...srcRequests, ...dstRequests].filter((request) =>
      /^(upload-|manifest-put)/.test(request)
    );
    assert.deepEqual(writes, [], "the second run writes nothing");
  });
});

Deno.test("a missing source fails its line with its cause while the others land; a dry run writes nothing", async () => {
  const fixtures = await sharedFixtures();
  await using work = await tempDir();
  await withRegistries(async (source, target) => {
    await using dst = startFaultProxy({ upstream: target.url, seed: 3 });
    await seed(`oci-archive:${fixtures["oci-archive"].path}:v1`, `${source.host}/src/app:v1`);
    await Deno.copyFile(fixtures["docker-archive"].path, `${work.path}/app.tar`);
    const prefix = `${dst.host}/mirror`;
    const list = `${work.path}/images.txt`;
    await Deno.writeTextFile(
      list,
      [
        `${source.host}/src/app:v1`,
        `${source.host}/src/missing:v1`,
        `--platform=windows/amd64 ${source.host}/src/app:v1 => ${prefix}/win/app:v1`,
        "./app.tar",
      ].join("\n"),
    );
    const cache = `${work.path}/cache`;

    const dry = await recordedSync(settings(list, prefix, { dryRun: true }), cache);
    assert.deepEqual(statuses(dry.result), ["1 planned", "2 failed", "3 failed", "4 planned"]);
    assert.match(outcome(dry.result, 2).error?.message ?? "", /src\/missing:v1 does not exist/);
    assert.equal(outcome(dry.result, 3).error?.kind, "usage", "no platform matches");
    assert.ok(dry.result.dryRun);
    assert.deepEqual(
      requestsSince(dst, 0).filter((request) => /^(upload-|manifest-put)/.test(request)),
      [],
      "the dry run writes nothing",
    );
    const mirror = new RegistryClient({
      reference: {
        registry: target.host,
        apiBase: new URL(target.url),
        repository: "mirror/src/app",
      },
      access: "pull",
    });
    try {
      assert.equal(await mirror.headManifest("v1"), undefined);
    } finally {
      mirror.close();
    }

    const real = await recordedSync(settings(list, prefix), cache);
    assert.deepEqual(statuses(real.result), [
      "1 transferred",
      "2 failed",
      "3 failed",
      "4 transferred",
    ]);
    const missing = outcome(real.result, 2);
    assert.equal(missing.error?.kind, "registry");
    assert.match(missing.error?.message ?? "", /does not exist/);
    assert.equal(syncExitCode(real.result), 6, "the exit code of the first failure's kind");
    const failure = real.events.find((event) => event.type === "sync" && event.line === 2);
    assert.ok(failure?.type === "sync" && failure.status === "failed" && failure.message);
    await pullAndVerify(`${target.host}/mirror/src/app:v1`, {
      expectedManifestDigest: (await skopeoInspect(`${source.host}/src/app:v1`)).digest,
    });
    await verifyArchiveTarget(`${target.host}/mirror/library/app:v1`, fixtures["docker-archive"]);
  });
});

Deno.test("a target the registry denies looking at (403 to its HEAD) is transferred, with a warning naming the line", async () => {
  await using work = await tempDir();
  await using registry = startMemoryRegistry({
    faults: ({ kind }) =>
      kind === "manifest-head"
        ? {
          type: "status",
          status: 403,
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({
            errors: [{ code: "DENIED", message: "requested access denied" }],
          }),
        }
        : undefined,
  });
  await writeSampleDockerArchive(`${work.path}/app.tar`, { layers: 1, randomBytes: 1024 });
  const list = `${work.path}/images.txt`;
  await Deno.writeTextFile(list, "# one archive\n./app.tar\n");
  const { result, events } = await recordedSync(
    settings(list, `${registry.host}/team`, { retryAttempts: 0 }),
    `${work.path}/cache`,
  );
  assert.deepEqual(statuses(result), ["2 transferred"]);
  assert.equal(outcome(result, 2).target, `${registry.host}/team/sample/app:latest`);
  const warning = events.find((event) => event.type === "warning");
  assert.ok(warning?.type === "warning" && warning.line === 2, JSON.stringify(warning));
  assert.match(warning.message, /could not look up .*team\/sample\/app:latest/);
  // One look by the sync's check, one by the push's own tag lookup (its unchanged shortcut).
  assert.equal(registry.stats.requests["HEAD manifest-head"], 2);
  assert.equal(registry.stats.requests["PUT manifest-put"], 1);
});
