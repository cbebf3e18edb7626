/**
 * Layers above `--large-layer-threshold` against a real Distribution registry: from a plain tar
 * they go up as streamed chunks cut from one read of the layer; from a gzip-compressed archive or
 * stdin (one pass that can't be read again) as chunks held in memory with a Content-Length. Each
 * image is pulled back with skopeo and checked.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runPusher } from "../helpers/cli.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";

const MiB = 1024 * 1024;

Deno.test("layers above the threshold go up in chunks from a file, a gzip archive and stdin", async () => {
  await using dir = await tempDir();
  const registry = await startRegistry();
  try {
    // The last layer holds 13 MiB of random bytes: three chunks at a 5 MiB threshold.
    const sample = await writeSampleDockerArchive(join(dir.path, "big.tar"), {
      layers: 2,
      randomBytes: 13 * MiB,
      seed: 7,
    });
    const gzipped = await new Deno.Command("gzip", { args: ["-k", "-1", sample.path] }).output();
    assert.ok(gzipped.success, new TextDecoder().decode(gzipped.stderr));
    const compressed = `${sample.path}.gz`;
    const sources: Array<[string, string, Uint8Array | undefined]> = [
      ["file", sample.path, undefined],
      ["gzip-archive", compressed, undefined],
      ["stdin", "-", await Deno.readFile(compressed)],
    ];
    for (const [name, file, stdin] of sources) {
      const reference = `${registry.host}/large/${name}:1`;
      const run = await runPusher(
        ["-f", file, "-r", reference, "--large-layer-threshold", String(5 * MiB), "--quiet"],
        stdin === undefined ? {} : { stdin },
      );
      assert.equal(run.code, 0, `${name}: ${run.stderr}`);
      await pullAndVerify(reference, {
        expectedConfigDigest: sample.configDigest,
        expectedDiffIds: sample.diffIds,
      });
    }
  } finally {
    await registry.stop();
  }
});
