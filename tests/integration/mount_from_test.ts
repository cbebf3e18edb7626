/**
 * Skipping uploads without a local cache: a fresh machine pushing an image to a sibling
 * repository with `--mount-from` computes each layer's compressed digest (deterministic
 * compression, nothing uploaded) and mounts it; pushing the same image again on a fresh machine
 * uploads no layer either.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runPusher } from "../helpers/cli.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";

/** Final states of the layer blobs in a `--json` run. */
function layerStates(stdout: string): string[] {
  return stdout.split("\n").filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { type: string; state?: string; blob?: { role?: string } })
    .filter((event) =>
      event.type === "blob" && event.blob?.role === "layer" &&
      ["uploaded", "exists", "mounted"].includes(event.state ?? "")
    )
    .map((event) => event.state as string);
}

Deno.test("fresh machine: --mount-from mounts every layer; an unchanged re-push uploads none", async () => {
  await using dir = await tempDir();
  const registry = await startRegistry();
  try {
    const sample = await writeSampleDockerArchive(join(dir.path, "app.tar"), {
      layers: 3,
      randomBytes: 300_000,
    });
    const first = await runPusher([
      "-f",
      sample.path,
      "-r",
      `${registry.host}/team/app:1`,
      "--json",
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(layerStates(first.stdout), ["uploaded", "uploaded", "uploaded"]);

    // Each run gets an empty cache directory of its own: nothing is known locally.
    const sibling = await runPusher([
      ...["-f", sample.path, "-r", `${registry.host}/other/app:1`, "--json"],
      ...["--mount-from", "team/app"],
    ]);
    assert.equal(sibling.code, 0, sibling.stderr);
    assert.deepEqual(layerStates(sibling.stdout), ["mounted", "mounted", "mounted"]);

    const again = await runPusher([
      "-f",
      sample.path,
      "-r",
      `${registry.host}/team/app:1`,
      "--json",
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(layerStates(again.stdout), ["exists", "exists", "exists"]);

    // Without --mount-from, a new repository gets uploads (no digest computed beforehand).
    const plain = await runPusher([
      "-f",
      sample.path,
      "-r",
      `${registry.host}/third/app:1`,
      "--json",
    ]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(layerStates(plain.stdout), ["uploaded", "uploaded", "uploaded"]);
  } finally {
    await registry.stop();
  }
});
