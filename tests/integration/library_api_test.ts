/**
 * The library API used the way an application would: two `push()` calls from `lib/mod.ts` at
 * the same time in one process, each to its own real Distribution registry, both compressing
 * with gzip on the worker pool. The short push ends while the long one is still compressing; each
 * run owns its pool, so the end of one must not stop the other. Both images are pulled back with
 * skopeo and checked blob by blob.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_PUSH_SETTINGS, push, type PushOptions } from "../../lib/mod.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const MIB = 1024 * 1024;
/**
 * Text in the large image's last layer: compressing it keeps both workers busy (gzip is slower
 * than the upload of its output) for longer than the whole small push takes.
 */
const LARGE_TEXT_BYTES = 96 * MIB;
/** Read progress of the large layer that shows its compression is under way. */
const STARTED_BYTES = 4 * MIB;

function pushOptions(file: string, target: string): PushOptions {
  return {
    ...DEFAULT_PUSH_SETTINGS,
    file,
    targets: [target],
    compression: "gzip",
    skipTls: false,
    caCertFiles: [],
    dryRun: false,
    forceUpload: false,
    noCache: true,
  };
}

Deno.test("two concurrent push() calls with gzip each land intact; the first to end stops nothing of the other", async () => {
  await using temp = await tempDir();
  const small = await writeSampleDockerArchive(join(temp.path, "small.tar"), {
    layers: 2,
    randomBytes: 64 * 1024,
    seed: 11,
  });
  const large = await writeSampleDockerArchive(join(temp.path, "large.tar"), {
    layers: 2,
    randomBytes: 0,
    textBytes: LARGE_TEXT_BYTES,
    seed: 12,
  });
  const largeLayerSize = Math.max(...large.layerSizes);
  const first = await startRegistry();
  const second = await startRegistry();
  try {
    const smallTarget = `${first.host}/library/small:1`;
    const largeTarget = `${second.host}/library/large:1`;
    const retries: string[] = [];
    let largeRead = 0;
    const { promise: compressing, resolve: compressionStarted } = Promise.withResolvers<void>();
    const largePush = push(pushOptions(large.path, largeTarget), {
      events: (event) => {
        if (event.type === "retry") retries.push(`large: ${event.what}: ${event.reason}`);
        if (event.type === "progress" && event.total === largeLayerSize) {
          largeRead = Math.max(largeRead, event.bytes);
          if (largeRead >= STARTED_BYTES) compressionStarted();
        }
      },
    });
    largePush.catch(() => {});
    await Promise.race([compressing, largePush]);
    const smallResult = await push(pushOptions(small.path, smallTarget), {
      events: (event) => {
        if (event.type === "retry") retries.push(`small: ${event.what}: ${event.reason}`);
      },
    });
    const readWhenSmallEnded = largeRead;
    const largeResult = await largePush;
    assert.ok(
      readWhenSmallEnded < largeLayerSize,
      `the large layer was still being read and compressed when the small push ended ` +
        `(${readWhenSmallEnded} of ${largeLayerSize} bytes)`,
    );
    assert.deepEqual(retries, [], "neither push was disturbed by the other");

    for (
      const [result, sample, target] of [
        [smallResult, small, smallTarget],
        [largeResult, large, largeTarget],
      ] as const
    ) {
      const pulled = await pullAndVerify(target, {
        expectedManifestDigest: result.digest,
        expectedConfigDigest: sample.configDigest,
        expectedDiffIds: sample.diffIds,
      });
      assert.deepEqual(
        pulled.images[0]?.layers.map((layer) => layer.compression),
        sample.diffIds.map(() => "gzip"),
        `every layer of ${target} went up gzip-compressed`,
      );
    }
  } finally {
    await first.stop();
    await second.stop();
  }
});
