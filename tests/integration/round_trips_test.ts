/**
 * The requests a push waits for, counted (not timed) by a recording proxy in front of the real
 * Distribution registry: a cold push of a small three-layer image sends no PATCH, starts the
 * config's upload beside the layers', checks the registry once and sends no HEAD or PUT twice; an
 * unchanged re-push stops at the tag's HEAD. With a token registry the token is fetched once per
 * run and a 401 costs one retry per request at most. A registry that refuses a blob in the closing
 * PUT gets it by PATCH, and no more blobs go that way in the run. Each push is pulled back with
 * skopeo.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pushedDigest, pushSample } from "./auth_tls_support.ts";
import { startMemoryRegistry } from "../helpers/memory_registry.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { type RecordedRequest, startRecordingProxy } from "../helpers/recording_proxy.ts";
import { assertNoRepeats, authorised, count } from "../helpers/request_counts.ts";
import { startRegistry } from "../helpers/registry.ts";
import { type SampleArchive, writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const USER = "roundtrip";
const PASSWORD = "round-trip-secret-7";

/** A three-layer image whose blobs are all small (the biggest layer holds 64 KiB of noise). */
async function smallImage(dir: string): Promise<SampleArchive> {
  return await writeSampleDockerArchive(join(dir, "image.tar"), {
    layers: 3,
    randomBytes: 64 * 1024,
    seed: 16,
    name: "round/trips:latest",
  });
}

/** The checks every cold push of the small image must pass. */
function assertColdPush(records: readonly RecordedRequest[], sample: SampleArchive): void {
  const answered = authorised(records);
  assert.equal(count(records, "ping"), 1, "one /v2/ request per run");
  assert.equal(count(records, "upload-patch"), 0, "small blobs go up in the closing PUT");
  assert.equal(count(answered, "upload-start"), 4, "three layers and the config");
  assert.equal(count(answered, "upload-put"), 4);
  assert.equal(count(answered, "manifest-put"), 1);
  assertNoRepeats(answered, ["blob-head", "manifest-head", "upload-put", "manifest-put"]);
  const configPut = answered.find((record) =>
    record.kind === "upload-put" && record.query.includes(encodeURIComponent(sample.configDigest))
  );
  assert.ok(configPut, "the config was uploaded");
  const layerPuts = answered.filter((record) =>
    record.kind === "upload-put" && record !== configPut
  );
  const firstLayerDone = Math.min(...layerPuts.map((record) => record.answeredAt));
  for (const start of answered.filter((record) => record.kind === "upload-start")) {
    assert.ok(
      start.startedAt < firstLayerDone,
      "every upload, the config's too, started before any layer was finished",
    );
  }
}

Deno.test({
  name: "round trips, plain HTTP: a cold push waits for no PATCH and no phase it does not need; " +
    "an unchanged re-push is one HEAD",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-");
    const sample = await smallImage(dir.path);
    const registry = await startRegistry();
    await using proxy = startRecordingProxy(registry.url);
    try {
      const reference = `${proxy.host}/round/plain:1`;
      const cache = join(dir.path, "cache");
      const cold = await pushSample(sample, reference, cache);
      assertColdPush(proxy.records, sample);
      assert.equal(count(proxy.records, "upload-delete"), 0, "no session was wasted");
      await pullAndVerify(`${registry.host}/round/plain:1`, {
        expectedManifestDigest: pushedDigest(cold),
        expectedConfigDigest: sample.configDigest,
        expectedDiffIds: sample.diffIds,
      });

      proxy.clear();
      await pushSample(sample, reference, cache);
      assert.deepEqual(
        proxy.records.map((record) => record.kind).sort(),
        ["manifest-head", "ping"],
        "the re-push checks the registry and the tag, and stops",
      );

      proxy.clear();
      await pushSample(sample, reference, join(dir.path, "fresh-cache"));
      assert.equal(count(proxy.records, "upload-put"), 0, "no blob goes up again");
      assert.equal(count(proxy.records, "upload-patch"), 0);
      assert.equal(count(proxy.records, "manifest-put"), 0, "the tag already names the manifest");
      assert.equal(count(proxy.records, "ping"), 1);
    } finally {
      await registry.stop();
    }
  },
});

Deno.test({
  name: "round trips, bearer token: one token per run and scope, a 401 costs one retry at most, " +
    "the realm is remembered",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-token-");
    const sample = await smallImage(dir.path);
    const registry = await startRegistry({ token: { users: { [USER]: PASSWORD } } });
    await using proxy = startRecordingProxy(registry.url);
    const credentials = ["-u", USER, "-p", PASSWORD];
    try {
      const reference = `${proxy.host}/round/token:1`;
      const cache = join(dir.path, "cache");
      const cold = await pushSample(sample, reference, cache, credentials);
      assertColdPush(proxy.records, sample);
      assert.deepEqual(
        registry.tokenRequests.map((request) => request.scopes),
        [["repository:round/token:pull,push"]],
        "one token for the run's one scope",
      );
      const refused = proxy.records.filter((record) => record.status === 401);
      assertNoRepeats(refused, ["ping", "blob-head", "manifest-head"]);
      assert.ok(count(refused, "upload-start") <= 4, "at most one refused start per blob");
      const firstToken = Math.min(
        ...authorised(proxy.records).filter((record) => record.kind !== "ping").map((record) =>
          record.startedAt
        ),
      );
      assert.ok(
        refused.every((record) => record.startedAt < firstToken),
        "no request is refused once the token is there",
      );
      await pullAndVerify(`${registry.host}/round/token:1`, {
        expectedManifestDigest: pushedDigest(cold),
        expectedConfigDigest: sample.configDigest,
        expectedDiffIds: sample.diffIds,
        creds: `${USER}:${PASSWORD}`,
      });

      proxy.clear();
      registry.tokenRequests.length = 0;
      await pushSample(sample, reference, cache, credentials);
      assert.equal(registry.tokenRequests.length, 1, "one token for the re-push");
      assert.deepEqual(
        proxy.records.map((record) => `${record.kind} ${record.status}`).sort(),
        ["manifest-head 200", "ping 401"],
        "the token came from the remembered realm: only the registry check met a challenge",
      );
    } finally {
      await registry.stop();
    }
  },
});

Deno.test({
  name: "round trips: a registry that refuses the blob in the closing PUT gets it by PATCH, and " +
    "the run sends no more blobs that way",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("round-trips-refused-");
    const sample = await smallImage(dir.path);
    let refusals = 0;
    await using registry = startMemoryRegistry({
      faults: ({ kind }) => {
        if (kind !== "upload-put" || refusals > 0) return undefined;
        refusals++;
        return { type: "status", status: 413, body: "<html>413 Request Entity Too Large</html>" };
      },
    });
    const run = await pushSample(sample, `${registry.host}/round/refused:1`, join(dir.path, "c"), [
      "--max-concurrent",
      "1",
    ]);
    const puts = registry.log.filter((record) => record.kind === "upload-put");
    const carrying = puts.filter((record) => record.bytes > 0);
    // The config goes up beside the first layer, so two PUTs may carry bytes before the refusal
    // is known; every blob after that goes by PATCH.
    assert.ok(carrying.length <= 2, `${carrying.length} PUTs carried a blob`);
    assert.ok(
      registry.log.filter((record) => record.kind === "upload-patch").length >= 3,
      "the refused blob and the layers after it went by PATCH",
    );
    assert.equal(refusals, 1);
    const stored = registry.manifest("round/refused", "1");
    assert.equal(stored?.digest, pushedDigest(run), "the image landed");
    assert.ok(registry.hasBlob("round/refused", sample.configDigest), "with its config");
  },
});
