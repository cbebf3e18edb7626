import assert from "node:assert/strict";
import { cacheDirectory } from "../../lib/state/cache_dir.ts";

Deno.test("the cache directory: the override, else this OS's user cache (XDG or ~/.cache; LOCALAPPDATA on Windows)", () => {
  const override = { DOCKER_PUSHER_CACHE_DIR: "/x", XDG_CACHE_HOME: "/xdg", LOCALAPPDATA: "/l" };
  assert.equal(cacheDirectory((name) => override[name as keyof typeof override]), "/x");
  if (Deno.build.os === "windows") {
    assert.equal(
      cacheDirectory((name) => ({ LOCALAPPDATA: "C:\\Local" })[name]),
      "C:\\Local\\docker-image-pusher",
    );
    assert.equal(
      cacheDirectory((name) => ({ USERPROFILE: "C:\\Users\\u" })[name]),
      "C:\\Users\\u\\AppData\\Local\\docker-image-pusher",
    );
  } else {
    assert.equal(
      cacheDirectory((name) => ({ XDG_CACHE_HOME: "/xdg", HOME: "/home/u" })[name]),
      "/xdg/docker-image-pusher",
    );
    assert.equal(
      cacheDirectory((name) => ({ HOME: "/home/u" })[name]),
      "/home/u/.cache/docker-image-pusher",
    );
  }
});
