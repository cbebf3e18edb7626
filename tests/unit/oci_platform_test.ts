/**
 * `--platform` values: parsing `OS/ARCH[/VARIANT]` (lower-cased, anything else a usage error) and
 * matching a wanted platform against an image's as containerd does (architecture aliases, default
 * variants, other variants exact).
 */

import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { parsePlatform, platformMatches, platformName } from "../../lib/oci/platform.ts";

Deno.test("parsePlatform reads OS/ARCH[/VARIANT], lower-cased, and refuses anything else as a usage error", () => {
  assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform(" Linux/ARM64/v8 "), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  for (const bad of ["linux", "linux/", "a/b/c/d", "linux/amd 64", "linux/am$d64", ""]) {
    assert.throws(() => parsePlatform(bad), (error) => {
      assert.ok(error instanceof PusherError, bad);
      assert.equal(error.kind, "usage", bad);
      assert.ok(error.message.includes(JSON.stringify(bad)), error.message);
      return true;
    });
  }
});

Deno.test("platformName writes what parsePlatform reads", () => {
  for (const text of ["linux/amd64", "linux/arm64/v8", "windows/amd64"]) {
    assert.equal(platformName(parsePlatform(text)), text);
  }
});

Deno.test("platformMatches: default variants (arm64 is arm64/v8) and architecture aliases, other variants exact", () => {
  const p = parsePlatform;
  const arm64v8 = { os: "linux", architecture: "arm64", variant: "v8" };
  assert.ok(platformMatches(p("linux/arm64"), arm64v8));
  assert.ok(platformMatches(p("linux/arm64/v8"), arm64v8));
  assert.ok(platformMatches(p("linux/arm64/v8"), { os: "linux", architecture: "arm64" }));
  assert.ok(!platformMatches(p("linux/arm64/v7"), arm64v8));
  assert.ok(platformMatches(p("linux/arm"), { os: "linux", architecture: "arm", variant: "v7" }));
  assert.ok(!platformMatches(p("linux/arm"), { os: "linux", architecture: "arm", variant: "v6" }));
  assert.ok(platformMatches(p("linux/x86_64"), { os: "linux", architecture: "amd64" }));
  assert.ok(platformMatches(p("linux/amd64"), { os: "Linux", architecture: "x86_64" }));
  assert.ok(!platformMatches(p("linux/amd64"), { os: "windows", architecture: "amd64" }));
  assert.ok(!platformMatches(p("linux/amd64"), arm64v8));
  assert.ok(!platformMatches(p("linux/amd64/v3"), { os: "linux", architecture: "amd64" }));
  assert.ok(!platformMatches(p("linux/amd64"), undefined), "an entry without a platform");
});
