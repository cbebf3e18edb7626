/** The request-body size kept per registry: saved, read back, only lowered, not saved with `--no-cache`. */

import assert from "node:assert/strict";
import { ChunkLimit } from "../../lib/state/chunk_limit.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const MiB = 1024 * 1024;

Deno.test("chunk limit: the size that passed is saved per registry and read back", async () => {
  await using temp = await tempDir();
  const limit = await ChunkLimit.load(temp.path, "registry.example:443");
  assert.equal(limit.bytes, undefined);
  limit.learnt(8 * MiB);
  await limit.flush();
  assert.equal((await ChunkLimit.load(temp.path, "registry.example:443")).bytes, 8 * MiB);
  assert.equal((await ChunkLimit.load(temp.path, "other.example:443")).bytes, undefined);
});

Deno.test("chunk limit: a larger size does not replace a smaller one", async () => {
  await using temp = await tempDir();
  const limit = await ChunkLimit.load(temp.path, "r:1");
  limit.learnt(4 * MiB);
  limit.learnt(16 * MiB);
  assert.equal(limit.bytes, 4 * MiB);
  limit.learnt(1 * MiB);
  await limit.flush();
  assert.equal((await ChunkLimit.load(temp.path, "r:1")).bytes, 1 * MiB);
});

Deno.test("chunk limit: kept for the run only, nothing written (--no-cache)", async () => {
  await using temp = await tempDir();
  const limit = ChunkLimit.unsaved("r:1");
  limit.learnt(2 * MiB);
  await limit.flush();
  assert.equal(limit.bytes, 2 * MiB);
  assert.deepEqual([...Deno.readDirSync(temp.path)], []);
});

Deno.test("chunk limit: a corrupt, foreign or nonsensical file is ignored", async () => {
  await using temp = await tempDir();
  const write = (registry: string, text: string): Promise<void> =>
    Deno.writeTextFile(ChunkLimit.pathFor(temp.path, registry), text);
  const file = (registry: string, bytes: unknown): string =>
    JSON.stringify({ format: "docker-image-pusher/chunk-limit", version: 1, registry, bytes });
  await write("r:1", "{not json");
  await write("r:2", file("someone-else:5000", MiB));
  await write("r:3", file("r:3", -5));
  await write("r:4", file("r:4", "1m"));
  for (const registry of ["r:1", "r:2", "r:3", "r:4"]) {
    assert.equal((await ChunkLimit.load(temp.path, registry)).bytes, undefined, registry);
  }
});
