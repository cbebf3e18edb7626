/**
 * Pushes through a real nginx with a request-body limit (`client_max_body_size` 10 MB and its
 * 1 MB default) in front of a real Distribution registry, with default flags: the layer's single
 * PATCH is refused (413), the chunks shrink until one passes, and the image is pulled back intact
 * with skopeo. A second push of another image to the same registry starts with chunks of the size
 * that passed, so nginx answers no 413 at all; with `--no-cache` that size is not used.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runPusher } from "../helpers/cli.ts";
import { type NginxProxy, startNginx } from "../helpers/nginx.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { type SampleArchive, writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const MiB = 1024 * 1024;

/** How many requests nginx refused as too large since the log had `since` lines. */
async function refusals(proxy: NginxProxy, since: number): Promise<number> {
  return (await proxy.requests()).slice(since).filter((entry) => entry.status === 413).length;
}

/**
 * Pushes `sample` through `proxy` with default flags (and `extra`), checks it landed intact in
 * `registry`, and returns how many 413s nginx answered during the push.
 */
async function pushThrough(
  proxy: NginxProxy,
  registry: TestRegistry,
  sample: SampleArchive,
  repository: string,
  cacheDir: string,
  extra: string[] = [],
): Promise<number> {
  const since = (await proxy.requests()).length;
  const run = await runPusher(
    ["-f", sample.path, "-r", `${proxy.host}/${repository}:1`, "--quiet", ...extra],
    { cacheDir },
  );
  assert.equal(run.code, 0, `${repository}: ${run.stderr}`);
  await pullAndVerify(`${registry.host}/${repository}:1`, {
    expectedConfigDigest: sample.configDigest,
    expectedDiffIds: sample.diffIds,
  });
  return await refusals(proxy, since);
}

/** Two different images, each with one layer of `randomMiB` MiB of incompressible bytes. */
async function twoImages(dir: string, randomMiB: number): Promise<SampleArchive[]> {
  return await Promise.all(
    [1, 2].map((seed) =>
      writeSampleDockerArchive(join(dir, `image-${seed}.tar`), {
        layers: 2,
        randomBytes: randomMiB * MiB,
        seed,
      })
    ),
  );
}

for (const [limit, randomMiB] of [["10m", 24], ["1m", 12]] as const) {
  Deno.test(`body limit: a ${randomMiB} MiB layer through nginx with client_max_body_size ${limit}`, async () => {
    await using dir = await tempDir();
    await using cache = await tempDir("pusher-cache-");
    const registry = await startRegistry();
    try {
      await using proxy = await startNginx({ upstream: registry.host, maxBodySize: limit });
      const [first, second] = await twoImages(dir.path, randomMiB) as [
        SampleArchive,
        SampleArchive,
      ];
      const learning = await pushThrough(proxy, registry, first, "limit/first", cache.path);
      assert.ok(learning > 0, "the first push ran into the limit");
      const remembered = await pushThrough(proxy, registry, second, "limit/second", cache.path);
      assert.equal(remembered, 0, "the second push started with chunks that pass");
      if (limit === "1m") {
        const forgotten = await pushThrough(proxy, registry, second, "limit/third", cache.path, [
          "--no-cache",
        ]);
        assert.ok(forgotten > 0, "--no-cache does not use the remembered size");
      }
    } finally {
      await registry.stop();
    }
  });
}
