import assert from "node:assert/strict";
import { sha256Digest } from "../../lib/bytes/sha256.ts";

/** sha256 of some bytes as `sha256sum` (coreutils) prints it, as a `sha256:<hex>` digest. */
async function sha256sum(bytes: Uint8Array): Promise<string> {
  const child = new Deno.Command("sha256sum", { stdin: "piped", stdout: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(bytes);
  await writer.close();
  const output = await child.output();
  assert.equal(output.code, 0);
  return `sha256:${new TextDecoder().decode(output.stdout).split(" ")[0]}`;
}

Deno.test("sha256: known vectors", () => {
  assert.equal(
    sha256Digest(new Uint8Array(0)),
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    sha256Digest(new TextEncoder().encode("abc")),
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("sha256: agrees with sha256sum, also for a view into a larger buffer", async () => {
  const buffer = new Uint8Array(70_000);
  crypto.getRandomValues(buffer.subarray(0, 65536));
  crypto.getRandomValues(buffer.subarray(65536));
  const view = buffer.subarray(1000, 69_001);
  assert.equal(sha256Digest(view), await sha256sum(view.slice()));
  assert.equal(sha256Digest(buffer), await sha256sum(buffer));
});
