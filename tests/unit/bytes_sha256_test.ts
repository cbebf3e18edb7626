import assert from "node:assert/strict";
import { digestAlgorithm, digestOf, Hasher, sha256Digest } from "../../lib/bytes/sha256.ts";

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

Deno.test("Hasher: readable midway and after, equal to the digest of the bytes so far; reset forgets", () => {
  const bytes = new TextEncoder().encode("the quick brown fox");
  const hasher = new Hasher();
  hasher.update(bytes.subarray(0, 9));
  assert.equal(hasher.digest(), sha256Digest(bytes.subarray(0, 9)));
  hasher.update(bytes.subarray(9));
  assert.equal(hasher.digest(), sha256Digest(bytes));
  assert.equal(hasher.digest(), sha256Digest(bytes), "reading does not end the hash");
  hasher.reset();
  assert.equal(hasher.digest(), sha256Digest(new Uint8Array(0)));
  assert.equal(new Hasher().update("abc").digest(), sha256Digest(new TextEncoder().encode("abc")));
});

Deno.test("sha512: digestOf and Hasher agree with sha512sum; digestAlgorithm reads the prefix", async () => {
  const bytes = crypto.getRandomValues(new Uint8Array(5000));
  const child = new Deno.Command("sha512sum", { stdin: "piped", stdout: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(bytes);
  await writer.close();
  const expected = `sha512:${
    new TextDecoder().decode((await child.output()).stdout).split(" ")[0]
  }`;
  assert.equal(digestOf(bytes, "sha512"), expected);
  assert.equal(
    new Hasher("sha512").update(bytes.subarray(0, 10)).update(bytes.subarray(10)).digest(),
    expected,
  );
  assert.equal(digestAlgorithm(expected), "sha512");
  assert.equal(digestAlgorithm(sha256Digest(bytes)), "sha256");
});
