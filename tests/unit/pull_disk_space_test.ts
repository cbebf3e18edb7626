/**
 * The free-space check before a pull: a need the filesystem can meet passes; one it cannot is an
 * `input` error naming both sizes; a directory that does not exist is an `input` error too.
 */

import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { freeBytes, requireFreeSpace } from "../../lib/pull/disk_space.ts";
import { tempDir } from "../helpers/temp_dir.ts";

Deno.test("a pull that fits passes; one larger than the free space fails with both sizes", async () => {
  await using dir = await tempDir("pull-space-");
  const free = await freeBytes(dir.path);
  assert.ok(free > 0);
  await requireFreeSpace(dir.path, 1024, "the archive x.tar");
  await assert.rejects(requireFreeSpace(dir.path, free + 2 ** 40, "the archive x.tar"), (error) => {
    assert.ok(error instanceof PusherError);
    assert.equal(error.kind, "input");
    assert.match(error.message, /not enough disk space for the archive x\.tar: it needs .* free/);
    return true;
  });
});

Deno.test("a missing output directory is an input error", async () => {
  await using dir = await tempDir("pull-space-");
  await assert.rejects(requireFreeSpace(`${dir.path}/missing`, 1, "x"), (error) => {
    assert.ok(error instanceof PusherError);
    assert.equal(error.kind, "input");
    return true;
  });
});
