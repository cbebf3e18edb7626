import assert from "node:assert/strict";
import { LayerCache } from "../../lib/state/layer_cache.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;
const SOURCE = `sha256:${"b".repeat(64)}`;
const REGISTRY = "registry.example.com";

function digest(char: string): string {
  return `sha256:${char.repeat(64)}`;
}

Deno.test("the layer cache round-trips and keeps repositories newest first", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const cache = await LayerCache.load(dir, "localhost:5000");
  assert.equal(cache.lookup(SOURCE, "gzip-1"), undefined);
  cache.record(SOURCE, "gzip-1", { digest: DIGEST, size: 10, compression: "gzip" }, "one/app");
  cache.record(SOURCE, "gzip-1", { digest: DIGEST, size: 10, compression: "gzip" }, "two/app");
  await cache.save();
  const again = await LayerCache.load(dir, "localhost:5000");
  assert.deepEqual(again.lookup(SOURCE, "gzip-1"), {
    digest: DIGEST,
    size: 10,
    compression: "gzip",
    repositories: ["two/app", "one/app"],
  });
  assert.equal(again.lookup(SOURCE, "zstd-3"), undefined);
  const other = await LayerCache.load(dir, "other:5000");
  assert.equal(other.lookup(SOURCE, "gzip-1"), undefined);
});

Deno.test("a corrupt or foreign cache file is ignored, not trusted", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  await Deno.writeTextFile(LayerCache.pathFor(dir, "r:1"), "{not json");
  const corrupt = await LayerCache.load(dir, "r:1");
  assert.equal(corrupt.lookup(SOURCE, "gzip-1"), undefined);
  await Deno.writeTextFile(
    LayerCache.pathFor(dir, "r:2"),
    JSON.stringify({
      format: "docker-image-pusher/layer-cache",
      version: 1,
      registry: "r:2",
      layers: {
        [`${SOURCE}|gzip-1`]: {
          digest: "sha256:short",
          size: 1,
          compression: "gzip",
          repositories: [],
        },
      },
    }),
  );
  const invalid = await LayerCache.load(dir, "r:2");
  assert.equal(invalid.lookup(SOURCE, "gzip-1"), undefined);
});

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
