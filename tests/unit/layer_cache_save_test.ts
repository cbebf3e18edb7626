import assert from "node:assert/strict";
import { LayerCache } from "../../lib/state/layer_cache.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const REGISTRY = "registry.example.com";

function digest(char: string): string {
  return `sha256:${char.repeat(64)}`;
}

Deno.test("layer cache: a layer recorded while the file is being written is saved next time", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const cache = await LayerCache.load(dir, REGISTRY);
  const layer = (char: string) => ({
    digest: digest(char),
    size: 10,
    compression: "gzip" as const,
  });
  cache.record(digest("1"), "gzip-2", layer("a"), "team/app");
  const first = cache.save();
  // Another layer finishes while the first save is still writing.
  cache.record(digest("2"), "gzip-2", layer("b"), "team/app");
  await first;
  await cache.save();
  const reloaded = await LayerCache.load(dir, REGISTRY);
  assert.equal(reloaded.lookup(digest("1"), "gzip-2")?.digest, digest("a"));
  assert.equal(reloaded.lookup(digest("2"), "gzip-2")?.digest, digest("b"));
});
