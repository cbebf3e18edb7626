import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { layerUpload } from "../../lib/push/layer_source.ts";

Deno.test("layer source: asking what a layer became before it was opened is an internal error", () => {
  const upload = layerUpload(
    { entry: "blobs/sha256/abc", size: 3, compression: "none" },
    () => ReadableStream.from([new Uint8Array([1, 2, 3])]),
    { target: "none" },
    true,
  );
  assert.throws(
    () => upload.pushed(),
    (error: unknown) =>
      error instanceof PusherError && error.kind === "internal" &&
      error.message === "layer blobs/sha256/abc was never opened",
  );
});
