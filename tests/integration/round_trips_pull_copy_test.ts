/**
 * The requests a pull, a copy and a sync make, counted (not timed) by recording proxies in front
 * of real Distribution registries (each behind a delay proxy of 25 ms each way, so requests that
 * go out together are seen to). A pull checks the registry once, reads the manifest once and gets
 * every blob once, all at once. A copy checks each registry once, sends small blobs in the closing
 * PUT, and gets no blob from the source that the target has; into a new repository it reads each
 * small blob and opens its upload beside its lookup, and a blob the repository holds anyway is
 * not sent again. So it does at first contact with a token target (the cache has not met it),
 * whose tag question meets the challenge and is not asked again (its answer would come no sooner
 * than the lookups'): into a repository that holds the image, each upload opened for nothing is
 * cancelled once, beside the manifest PUT. A second sync of unchanged images is one manifest HEAD per side per image, all
 * at once; with one image changed it sends no registry check, and that image's copy starts while
 * the other lines are still being looked at. With token registries every token is fetched
 * once per run and scope, no request is refused once the token is there, and the next run starts
 * from the remembered realm: only the registry check meets a challenge; a copy that knows both
 * realms sends its first requests on the registry checks' connections. Copied images are pulled
 * back with skopeo, pulled archives read by skopeo.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Credentials } from "../../lib/credentials/credentials.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import { DEFAULT_SYNC_SETTINGS, type SyncOptions } from "../../lib/sync/options.ts";
import { sync, type SyncResult } from "../../lib/sync/sync.ts";
import { assertExit, pushedDigest } from "./auth_tls_support.ts";
import { type CliRun, runPusher } from "../helpers/cli.ts";
import { type DelayProxy, startDelayProxy } from "../helpers/delay_proxy.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import {
  type RecordedRequest,
  type RecordingProxy,
  startRecordingProxy,
} from "../helpers/recording_proxy.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import {
  assertNoRepeats,
  assertSentTogether,
  authorised,
  count,
} from "../helpers/request_counts.ts";
import { type SampleArchive, writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const USER = "roundtrip";
const PASSWORD = "round-trip-secret-9";
const CREDENTIALS = ["-u", USER, "-p", PASSWORD];
/** Images of the sync tests. */
const IMAGES = 6;

/** A registry seen through a recording proxy, itself in front of a delay proxy. */
interface WatchedRegistry extends AsyncDisposable {
  registry: TestRegistry;
  proxy: RecordingProxy;
}

/** Milliseconds each way of a registry's delay proxy and, when it has one, its token server's. */
interface Distances {
  registryMs: number;
  tokenMs?: number;
}

/**
 * A registry behind a delay proxy (25 ms each way unless `distances` say), seen through a
 * recording proxy; with `distances.tokenMs`, its token server sits behind a delay proxy too.
 */
async function watchedRegistry(
  token: boolean,
  distances: Distances = { registryMs: 25 },
): Promise<WatchedRegistry> {
  const tokenDelayMs = distances.tokenMs;
  let tokenDelay: DelayProxy | undefined;
  const registry = await startRegistry(
    token
      ? {
        token: {
          users: { [USER]: PASSWORD },
          ...(tokenDelayMs !== undefined
            ? {
              realmHost: (own: string) => {
                tokenDelay = startDelayProxy({ upstream: own, delayMs: tokenDelayMs });
                return tokenDelay.host;
              },
            }
            : {}),
        },
      }
      : {},
  );
  const delay: DelayProxy = startDelayProxy({
    upstream: registry.host,
    delayMs: distances.registryMs,
  });
  const proxy = startRecordingProxy(`http://${delay.host}`);
  return {
    registry,
    proxy,
    [Symbol.asyncDispose]: async () => {
      await proxy.close();
      await delay.close();
      await tokenDelay?.close();
      await registry.stop();
    },
  };
}

/** A three-layer image whose blobs are all small. */
async function smallImage(dir: string): Promise<SampleArchive> {
  return await writeSampleDockerArchive(join(dir, "image.tar"), {
    layers: 3,
    randomBytes: 64 * 1024,
    seed: 17,
    name: "round/trips:latest",
  });
}

/** Runs the tool; fails unless it exited 0. */
async function pusher(args: string[], cacheDir: string): Promise<CliRun> {
  const run = await runPusher([...args, "--quiet"], { cacheDir });
  assertExit(run, 0);
  return run;
}

/** `kind status` of every request, sorted. */
function kinds(records: readonly RecordedRequest[]): string[] {
  return records.map((record) => `${record.kind} ${record.status}`).sort();
}

/**
 * Fails unless no request was refused after the first one that carried a token was sent (the
 * registry check goes without authorisation by design: its challenge is how it learns the realm).
 */
function assertRefusedOnlyBeforeToken(records: readonly RecordedRequest[]): void {
  const refused = records.filter((record) => record.status === 401 && record.kind !== "ping");
  const firstAuthorised = Math.min(
    ...authorised(records).filter((record) => record.kind !== "ping").map((r) => r.startedAt),
  );
  assert.ok(
    refused.every((record) => record.startedAt < firstAuthorised),
    `no request is refused once the token is there: ${JSON.stringify(kinds(refused))}`,
  );
  assertNoRepeats(refused, ["manifest-get", "manifest-head", "blob-head", "blob-get"]);
}

/** The diff_ids of the image a pulled archive holds, as skopeo reads it. */
async function archiveDiffIds(path: string): Promise<string[]> {
  const output = await new Deno.Command("skopeo", {
    args: ["inspect", "--config", `docker-archive:${path}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout)).rootfs.diff_ids;
}

/** The scopes of every token request, each request's scopes joined by a space. */
function tokenScopes(registry: TestRegistry): string[] {
  return registry.tokenRequests.map((request) => request.scopes.join(" ")).sort();
}

Deno.test({
  name: "round trips, pull: one registry check, the manifest once, every blob once and all at " +
    "once; with a token, one token per run and the realm remembered",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-pull-");
    const sample = await smallImage(dir.path);
    for (const token of [false, true]) {
      await using far = await watchedRegistry(token);
      const credentials = token ? CREDENTIALS : [];
      const seedCache = join(dir.path, `seed-${token}`);
      await pusher(
        ["-f", sample.path, "-r", `${far.registry.host}/round/pull:1`, ...credentials],
        seedCache,
      );
      far.registry.tokenRequests.length = 0;
      const cache = join(dir.path, `cache-${token}`);
      const output = join(dir.path, `pulled-${token}.tar`);
      await pusher(["pull", `${far.proxy.host}/round/pull:1`, "-o", output, ...credentials], cache);
      const records = far.proxy.records;
      const answered = authorised(records).filter((record) => record.kind !== "ping");
      assert.deepEqual(
        kinds(answered),
        ["blob-get 200", "blob-get 200", "blob-get 200", "blob-get 200", "manifest-get 200"],
        "the manifest and three layers and the config, each once",
      );
      assert.equal(count(records, "ping"), 1, "one registry check");
      assertNoRepeats(answered, ["manifest-get", "blob-get"]);
      assertSentTogether(answered.filter((record) => record.kind === "blob-get"), "blob GET");
      assert.deepEqual(await archiveDiffIds(output), sample.diffIds);
      if (!token) continue;
      assert.deepEqual(tokenScopes(far.registry), ["repository:round/pull:pull"]);
      assertRefusedOnlyBeforeToken(records);

      far.proxy.clear();
      far.registry.tokenRequests.length = 0;
      await pusher(
        ["pull", `${far.proxy.host}/round/pull:1`, "-o", `${output}.2`, ...credentials],
        cache,
      );
      assert.equal(far.registry.tokenRequests.length, 1, "one token for the second pull");
      assert.deepEqual(
        kinds(far.proxy.records).filter((kind) => kind.endsWith("401")),
        ["ping 401"],
        "the token came from the remembered realm: only the registry check met a challenge",
      );
    }
  },
});

Deno.test({
  name: "round trips, copy: one registry check per registry, small blobs in the closing PUT, no " +
    "blob read that the target has, nothing sent twice; tokens once per registry and scope",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-copy-");
    const sample = await smallImage(dir.path);
    for (const token of [false, true]) {
      await using from = await watchedRegistry(token);
      await using to = await watchedRegistry(token);
      const credentials = token
        ? [...CREDENTIALS, "--src-username", USER, "--src-password", PASSWORD]
        : [];
      const seeded = await pusher(
        [
          "-f",
          sample.path,
          "-r",
          `${from.registry.host}/round/copy:1`,
          ...(token ? CREDENTIALS : []),
        ],
        join(dir.path, `seed-${token}`),
      );
      from.registry.tokenRequests.length = 0;
      const cache = join(dir.path, `cache-${token}`);
      const copy = (tag: string) =>
        pusher([
          "copy",
          `${from.proxy.host}/round/copy:1`,
          `${to.proxy.host}/round/copy:${tag}`,
          ...credentials,
        ], cache);

      await copy("1");
      const source = authorised(from.proxy.records);
      const target = authorised(to.proxy.records);
      assert.equal(count(from.proxy.records, "ping"), 1, "one check of the source registry");
      assert.equal(count(to.proxy.records, "ping"), 1, "one check of the target registry");
      assert.deepEqual(
        kinds(source.filter((record) => record.kind !== "ping")),
        ["blob-get 200", "blob-get 200", "blob-get 200", "blob-get 200", "manifest-get 200"],
      );
      assert.equal(count(target, "blob-head"), 4, "each blob looked up once");
      assert.equal(count(target, "upload-start"), 4);
      assert.equal(count(target, "upload-put"), 4);
      assert.equal(count(to.proxy.records, "upload-patch"), 0, "small blobs go up in the PUT");
      assert.equal(count(target, "manifest-put"), 1);
      assert.deepEqual(
        kinds(to.proxy.records.filter((record) => record.kind === "tags-list")),
        // At first contact with a token target the question meets the challenge and is not
        // asked again: the small blobs go beside their lookups anyway.
        [token ? "tags-list 401" : "tags-list 404"],
        "whether the repository is new, asked once",
      );
      assert.equal(count(to.proxy.records, "upload-delete"), 0, "no upload opened for nothing");
      assertNoRepeats(source, ["manifest-get", "blob-get"]);
      assertNoRepeats(target, ["blob-head", "upload-put", "manifest-put"]);
      assertSentTogether(target.filter((record) => record.kind === "blob-head"), "blob HEAD");
      assertSentTogether(
        [
          ...source.filter((record) => record.kind === "blob-get"),
          ...target.filter((record) => ["blob-head", "upload-start"].includes(record.kind)),
        ],
        "blob GET, HEAD and POST of the new repository",
      );
      if (token) {
        assert.deepEqual(tokenScopes(from.registry), ["repository:round/copy:pull"]);
        assert.deepEqual(tokenScopes(to.registry), ["repository:round/copy:pull,push"]);
        assertRefusedOnlyBeforeToken(from.proxy.records);
        assertRefusedOnlyBeforeToken(to.proxy.records);
      }
      await pullAndVerify(`${to.registry.host}/round/copy:1`, {
        expectedManifestDigest: pushedDigest(seeded),
        expectedConfigDigest: sample.configDigest,
        expectedDiffIds: sample.diffIds,
        ...(token ? { creds: `${USER}:${PASSWORD}` } : {}),
      });

      for (const far of [from, to]) {
        far.proxy.clear();
        far.registry.tokenRequests.length = 0;
      }
      await copy("2");
      assert.equal(count(from.proxy.records, "blob-get"), 0, "the target has every blob");
      assert.deepEqual(
        kinds(authorised(to.proxy.records)).filter((kind) => !kind.startsWith("ping")),
        [
          "blob-head 200",
          "blob-head 200",
          "blob-head 200",
          "blob-head 200",
          "manifest-put 201",
          "tags-list 200",
        ],
        "the second copy finds the repository has tags, looks the blobs up and writes the tag",
      );
      if (token) {
        assert.equal(from.registry.tokenRequests.length, 1, "one source token");
        assert.equal(to.registry.tokenRequests.length, 1, "one target token");
        for (const far of [from, to]) {
          assert.deepEqual(
            kinds(far.proxy.records).filter((kind) => kind.endsWith("401")),
            ["ping 401"],
            "the tokens came from the remembered realms",
          );
        }
      }
    }
  },
});

/** The one request of `kind`; fails unless there is exactly one. */
function only(records: readonly RecordedRequest[], kind: string): RecordedRequest {
  const found = records.filter((record) => record.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0] as RecordedRequest;
}

Deno.test({
  name: "round trips, copy with both token realms known (any later run) into a new repository: " +
    "each token once, no request refused but the registry checks, and the first requests go " +
    "out on the checks' connections",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-copy-known-");
    const sample = await smallImage(dir.path);
    const other = await writeSampleDockerArchive(join(dir.path, "other.tar"), {
      layers: 1,
      randomBytes: 4 * 1024,
      seed: 23,
      name: "round/other:latest",
    });
    // The tokens come back before the checks (a token service a little nearer than the
    // registry): the first requests wait for the checks' connections rather than open new ones.
    const distances = { registryMs: 50, tokenMs: 15 };
    await using from = await watchedRegistry(true, distances);
    await using to = await watchedRegistry(true, distances);
    const seedCache = join(dir.path, "seed");
    const seeded = await pusher(
      ["-f", sample.path, "-r", `${from.registry.host}/round/known:1`, ...CREDENTIALS],
      seedCache,
    );
    await pusher(
      ["-f", other.path, "-r", `${from.registry.host}/round/other:1`, ...CREDENTIALS],
      seedCache,
    );
    const cache = join(dir.path, "cache");
    const copy = (source: string, target: string) =>
      pusher([
        "copy",
        `${from.proxy.host}/${source}`,
        `${to.proxy.host}/${target}`,
        ...[...CREDENTIALS, "--src-username", USER, "--src-password", PASSWORD],
      ], cache);
    // Another image teaches the cache both realms; the copy then goes to a new repository.
    await copy("round/other:1", "round/other-copy:1");
    for (const far of [from, to]) {
      far.proxy.clear();
      far.registry.tokenRequests.length = 0;
    }

    await copy("round/known:1", "round/known-copy:1");
    assert.deepEqual(tokenScopes(from.registry), ["repository:round/known:pull"]);
    assert.deepEqual(tokenScopes(to.registry), ["repository:round/known-copy:pull,push"]);
    for (const far of [from, to]) {
      assert.deepEqual(
        kinds(far.proxy.records).filter((kind) => kind.endsWith("401")),
        ["ping 401"],
        "only the registry check goes without a token",
      );
    }
    assert.equal(
      only(from.proxy.records, "manifest-get").connection,
      only(from.proxy.records, "ping").connection,
      "the source manifest is read on the source check's connection",
    );
    assert.equal(
      only(to.proxy.records, "tags-list").connection,
      only(to.proxy.records, "ping").connection,
      "the target's tags are asked on the target check's connection",
    );
    await pullAndVerify(`${to.registry.host}/round/known-copy:1`, {
      expectedManifestDigest: pushedDigest(seeded),
      expectedConfigDigest: sample.configDigest,
      expectedDiffIds: sample.diffIds,
      creds: `${USER}:${PASSWORD}`,
    });
  },
});

Deno.test({
  name: "round trips, copy at first contact with a far token target: its tag question meets the " +
    "challenge and is not asked again, and the blob POSTs go out with the token and the lookups",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-copy-first-contact-");
    const sample = await smallImage(dir.path);
    // The source is near: its blobs are known before the far target's token is there.
    await using from = await watchedRegistry(true, { registryMs: 0 });
    await using to = await watchedRegistry(true, { registryMs: 50 });
    const seeded = await pusher(
      ["-f", sample.path, "-r", `${from.registry.host}/round/first:1`, ...CREDENTIALS],
      join(dir.path, "seed"),
    );
    await pusher([
      "copy",
      `${from.proxy.host}/round/first:1`,
      `${to.proxy.host}/round/first:1`,
      ...[...CREDENTIALS, "--src-username", USER, "--src-password", PASSWORD],
    ], join(dir.path, "fresh"));

    const target = to.proxy.records;
    assert.deepEqual(
      kinds(target.filter((record) => record.kind === "tags-list")),
      ["tags-list 401"],
      "the tag question went out before the target's challenge was known, and only then",
    );
    assert.equal(to.registry.tokenRequests.length, 1, "one target token");
    const posts = target.filter((record) => record.kind === "upload-start");
    assert.equal(posts.length, 4);
    assertSentTogether(
      [...posts, ...authorised(target).filter((record) => record.kind === "blob-head")],
      "blob HEAD and POST with the token",
    );
    assert.equal(count(target, "upload-delete"), 0, "no upload opened for nothing");
    assertRefusedOnlyBeforeToken(target);
    await pullAndVerify(`${to.registry.host}/round/first:1`, {
      expectedManifestDigest: pushedDigest(seeded),
      expectedConfigDigest: sample.configDigest,
      expectedDiffIds: sample.diffIds,
      creds: `${USER}:${PASSWORD}`,
    });
  },
});

Deno.test({
  name: "round trips, copy at first contact with a token target that holds the image already: " +
    "no blob sent, each upload opened beside its lookup cancelled once and beside the manifest " +
    "PUT, not before it, and no other token fetched for the cancels",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-copy-again-");
    const sample = await smallImage(dir.path);
    await using from = await watchedRegistry(true);
    await using to = await watchedRegistry(true);
    const seeded = await pusher(
      ["-f", sample.path, "-r", `${from.registry.host}/round/again:1`, ...CREDENTIALS],
      join(dir.path, "seed"),
    );
    const copy = (cache: string) =>
      pusher([
        "copy",
        `${from.proxy.host}/round/again:1`,
        `${to.proxy.host}/round/again:1`,
        ...[...CREDENTIALS, "--src-username", USER, "--src-password", PASSWORD],
      ], join(dir.path, cache));
    await copy("earlier-runner");
    for (const far of [from, to]) {
      far.proxy.clear();
      far.registry.tokenRequests.length = 0;
    }

    // A fresh cache (a new CI runner) copies the same image again: first contact with both.
    await copy("fresh-runner");
    const target = to.proxy.records;
    assert.equal(count(target, "upload-put"), 0, "no blob sent: the target holds every one");
    assert.equal(count(target, "upload-patch"), 0);
    const opened = count(target, "upload-start");
    assert.equal(opened, 4, "every small blob's upload opened beside its lookup");
    assert.equal(
      count(target, "upload-delete"),
      opened,
      "each upload cancelled once: a refused cancel is not sent again with a fresh token",
    );
    assertNoRepeats(target, ["blob-head", "upload-delete", "manifest-put"]);
    assert.ok(count(from.proxy.records, "blob-get") <= 4, "each blob read at most once");
    assert.equal(to.registry.tokenRequests.length, 1, "one target token, none for the cancels");
    const manifest = only(target, "manifest-put");
    assert.ok(
      target.filter((record) => record.kind === "upload-delete")
        .every((record) => manifest.startedAt < record.answeredAt),
      "the manifest PUT went out before the cancels were answered",
    );
    await pullAndVerify(`${to.registry.host}/round/again:1`, {
      expectedManifestDigest: pushedDigest(seeded),
      expectedConfigDigest: sample.configDigest,
      expectedDiffIds: sample.diffIds,
      creds: `${USER}:${PASSWORD}`,
    });
  },
});

/** Sync settings for the tests. */
function syncSettings(from: string, to: string, credentials?: Credentials): SyncOptions {
  return {
    ...DEFAULT_SYNC_SETTINGS,
    from,
    to,
    timeoutSeconds: 120,
    stallTimeoutSeconds: 20,
    skipTls: false,
    caCertFiles: [],
    dryRun: false,
    noCache: false,
    ...(credentials !== undefined ? { credentials } : {}),
  };
}

/** Runs a sync with `cacheDir` as the cache directory. */
async function syncWithCache(
  options: SyncOptions,
  cacheDir: string,
): Promise<SyncResult> {
  Deno.env.set("DOCKER_PUSHER_CACHE_DIR", cacheDir);
  try {
    return await sync(options);
  } finally {
    Deno.env.delete("DOCKER_PUSHER_CACHE_DIR");
  }
}

/** Pushes the sample to `round/sync-<n>:1` of `host`, for every image. */
async function seedImages(sample: SampleArchive, host: string, cacheDir: string, extra: string[]) {
  const targets = Array.from({ length: IMAGES }, (_, i) => ["-r", `${host}/round/sync-${i}:1`]);
  await pusher(["-f", sample.path, ...targets.flat(), ...extra], cacheDir);
}

/** A LIST naming every seeded image through `host`. */
async function writeList(path: string, host: string): Promise<string> {
  const lines = Array.from({ length: IMAGES }, (_, i) => `${host}/round/sync-${i}:1`);
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

function statuses(result: SyncResult): string[] {
  return [...new Set(result.lines.map((line) => line.status))];
}

Deno.test({
  name: "round trips, second sync of unchanged images: one manifest HEAD per side per image, all " +
    "at once, and nothing else",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-sync-");
    const sample = await smallImage(dir.path);
    await using from = await watchedRegistry(false);
    await using to = await watchedRegistry(false);
    await seedImages(sample, from.registry.host, join(dir.path, "seed"), []);
    const list = await writeList(join(dir.path, "images.txt"), from.proxy.host);
    const options = syncSettings(list, `${to.proxy.host}/mirror`);
    const cache = join(dir.path, "cache");
    assert.deepEqual(statuses(await syncWithCache(options, cache)), ["transferred"]);

    from.proxy.clear();
    to.proxy.clear();
    assert.deepEqual(statuses(await syncWithCache(options, cache)), ["unchanged"]);
    for (const far of [from, to]) {
      const looked = far.proxy.records.filter((record) => record.kind !== "ping");
      assert.deepEqual(kinds(looked), Array(IMAGES).fill("manifest-head 200"));
      assertNoRepeats(looked, ["manifest-head"]);
      assert.ok(count(far.proxy.records, "ping") <= 1, "at most one registry check");
    }
    assertSentTogether(
      [...from.proxy.records, ...to.proxy.records].filter((r) => r.kind === "manifest-head"),
      "manifest HEAD",
    );
  },
});

Deno.test({
  name: "round trips, second sync with one image changed: no registry check, and its copy starts " +
    "while the other lines are still being looked at",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-sync-changed-");
    const sample = await smallImage(dir.path);
    await using from = await watchedRegistry(false);
    await using to = await watchedRegistry(false);
    await seedImages(sample, from.registry.host, join(dir.path, "seed"), []);
    const list = await writeList(join(dir.path, "images.txt"), from.proxy.host);
    // One look at a time: the looks of the lines after the changed first one take a while.
    const options = { ...syncSettings(list, `${to.proxy.host}/mirror`), parallelChecks: 1 };
    const cache = join(dir.path, "cache");
    assert.deepEqual(statuses(await syncWithCache(options, cache)), ["transferred"]);
    const changed = await writeSampleDockerArchive(join(dir.path, "changed.tar"), {
      layers: 3,
      randomBytes: 64 * 1024,
      seed: 18,
      name: "round/trips:latest",
    });
    await pusher(["-f", changed.path, "-r", `${from.registry.host}/round/sync-0:1`], cache);

    from.proxy.clear();
    to.proxy.clear();
    const result = await syncWithCache(options, cache);
    assert.deepEqual(
      result.lines.map((line) => line.status),
      ["transferred", ...Array(IMAGES - 1).fill("unchanged")],
    );
    for (const far of [from, to]) {
      assert.equal(count(far.proxy.records, "ping"), 0, "the manifest HEADs stand for the check");
    }
    const copyStarted = Math.min(
      ...from.proxy.records.filter((r) => r.kind === "manifest-get").map((r) => r.startedAt),
    );
    const lastLook = Math.max(
      ...from.proxy.records.filter((r) => r.kind === "manifest-head").map((r) => r.startedAt),
    );
    assert.ok(copyStarted < lastLook, "the copy of line 1 starts before the last line's look");
    await pullAndVerify(`${to.registry.host}/mirror/round/sync-0:1`, {
      expectedConfigDigest: changed.configDigest,
      expectedDiffIds: changed.diffIds,
    });
  },
});

Deno.test({
  name: "round trips, sync with a token registry: one token per run and scope, and the second " +
    "run's HEADs meet no challenge",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-sync-token-");
    const sample = await smallImage(dir.path);
    await using far = await watchedRegistry(true);
    await seedImages(sample, far.registry.host, join(dir.path, "seed"), CREDENTIALS);
    far.registry.tokenRequests.length = 0;
    const list = await writeList(join(dir.path, "images.txt"), far.proxy.host);
    const options = syncSettings(list, `${far.proxy.host}/mirror`, {
      username: USER,
      password: PASSWORD,
    });
    const cache = join(dir.path, "cache");
    assert.deepEqual(statuses(await syncWithCache(options, cache)), ["transferred"]);
    const first = tokenScopes(far.registry);
    assert.deepEqual(first, [...new Set(first)], "no token fetched twice for one scope");
    assertRefusedOnlyBeforeToken(far.proxy.records);

    far.proxy.clear();
    far.registry.tokenRequests.length = 0;
    assert.deepEqual(statuses(await syncWithCache(options, cache)), ["unchanged"]);
    assert.deepEqual(
      tokenScopes(far.registry),
      Array.from({ length: IMAGES }, (_, i) => [
        `repository:mirror/round/sync-${i}:pull,push`,
        `repository:round/sync-${i}:pull`,
      ]).flat().sort(),
      "one token per repository: pull for a source, pull and push for a target",
    );
    assert.deepEqual(kinds(far.proxy.records), Array(2 * IMAGES).fill("manifest-head 200"));
  },
});

Deno.test({
  name: "round trips, copy into a repository without tags that holds a blob already (a copy " +
    "that failed half-way): the lookup beside the upload keeps the blob from being sent again",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-copy-tagless-");
    const sample = await smallImage(dir.path);
    await using from = await watchedRegistry(false);
    await using to = await watchedRegistry(false);
    const seeded = await pusher(
      ["-f", sample.path, "-r", `${from.registry.host}/round/tagless:1`],
      join(dir.path, "seed"),
    );
    const config = await fetch(
      `${from.registry.url}/v2/round/tagless/blobs/${sample.configDigest}`,
    );
    assert.equal(config.status, 200);
    const held = new RegistryClient({
      reference: parseReference(`${to.registry.host}/round/tagless`),
    });
    try {
      const bytes = new Uint8Array(await config.arrayBuffer());
      await held.completeUpload(await held.startUpload(), sample.configDigest, bytes);
    } finally {
      held.close();
    }

    await pusher(
      ["copy", `${from.proxy.host}/round/tagless:1`, `${to.proxy.host}/round/tagless:1`],
      join(dir.path, "cache"),
    );
    const target = to.proxy.records;
    assert.deepEqual(
      kinds(target.filter((record) => record.kind === "tags-list")),
      ["tags-list 404"],
      "the repository has no tags: its blobs are read beside their lookups",
    );
    assertSentTogether(
      [
        ...from.proxy.records.filter((record) => record.kind === "blob-get"),
        ...target.filter((record) => ["blob-head", "upload-start"].includes(record.kind)),
      ],
      "blob GET, HEAD and POST",
    );
    const completed = target.filter((record) => record.kind === "upload-put")
      .map((record) => new URLSearchParams(record.query).get("digest"));
    assert.equal(completed.length, 3, "the three layers go up");
    assert.ok(!completed.includes(sample.configDigest), "the config it held is not sent again");
    assert.equal(count(target, "upload-delete"), 1, "the config's upload is cancelled");
    await pullAndVerify(`${to.registry.host}/round/tagless:1`, {
      expectedManifestDigest: pushedDigest(seeded),
      expectedConfigDigest: sample.configDigest,
      expectedDiffIds: sample.diffIds,
    });
  },
});
