import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { sha256Digest } from "../../lib/bytes/sha256.ts";
import { createHash } from "node:crypto";
import { checkedBlobStream, DigestStream, verifyDigest } from "../../lib/pipeline/digest.ts";
import { tempDir } from "../helpers/temp_dir.ts";

/** sha256 of a file as `sha256sum` prints it, as a `sha256:<hex>` digest. */
async function sha256sum(path: string): Promise<string> {
  const output = await new Deno.Command("sha256sum", { args: [path], stdout: "piped" }).output();
  assert.equal(output.code, 0);
  return `sha256:${new TextDecoder().decode(output.stdout).split(" ")[0]}`;
}

/** A stream of `bytes` in chunks of `size`, each a view into `bytes` (no copies). */
function views(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) {
    chunks.push(bytes.subarray(offset, offset + size));
  }
  return ReadableStream.from(chunks);
}

Deno.test("digest: matches sha256sum for files of several sizes and any chunking", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  for (const size of [0, 1, 63, 64, 65, 100_000, 1_000_003]) {
    const bytes = new Uint8Array(size);
    for (let offset = 0; offset < size; offset += 65536) {
      crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65536)));
    }
    const path = `${dir}/blob-${size}`;
    await Deno.writeFile(path, bytes);
    const expected = await sha256sum(path);
    assert.equal(sha256Digest(bytes), expected);
    for (const chunk of [1, 7, 4096, 1 << 20]) {
      if (size > 100_000 && chunk < 4096) continue;
      const digest = new DigestStream();
      const seen: Uint8Array[] = [];
      await views(bytes, chunk).pipeThrough(digest).pipeTo(
        new WritableStream({ write: (piece) => void seen.push(piece) }),
      );
      assert.deepEqual(await digest.result, { digest: expected, size });
      // Chunks pass through as views of the source buffer: nothing was copied.
      assert.equal(seen.length, Math.ceil(size / chunk));
      assert.ok(seen.every((piece) => piece.buffer === bytes.buffer));
    }
    // The file read through Deno's own stream hashes the same.
    const file = await Deno.open(path);
    const digest = new DigestStream();
    await file.readable.pipeThrough(digest).pipeTo(new WritableStream());
    assert.equal((await digest.result).digest, expected);
  }
});

Deno.test("digest: a failing check errors the stream instead of closing it", async () => {
  const bytes = new TextEncoder().encode("hello");
  const wrong = `sha256:${"0".repeat(64)}`;
  const digest = new DigestStream({
    check: ({ digest }) => verifyDigest("blob hello", wrong, digest),
  });
  const reader = ReadableStream.from([bytes]).pipeThrough(digest).getReader();
  assert.deepEqual((await reader.read()).value, bytes);
  await assert.rejects(reader.read(), (error: unknown) => {
    assert.ok(error instanceof PusherError);
    assert.equal(error.kind, "verify");
    assert.match(error.message, new RegExp(`blob hello: expected digest ${wrong}`));
    assert.ok(error.message.includes(sha256Digest(bytes)));
    return true;
  });
  await assert.rejects(digest.result, PusherError);
});

Deno.test("digest: a cancelled or failed input rejects the result", async () => {
  const digest = new DigestStream();
  const readable = new ReadableStream<Uint8Array>({ pull: () => {} }).pipeThrough(digest);
  await readable.cancel(new Error("upload abandoned"));
  await assert.rejects(digest.result, /upload abandoned/);

  const failing = new DigestStream();
  const source = new ReadableStream<Uint8Array>({
    start(controller): void {
      controller.enqueue(new Uint8Array(3));
      controller.error(new Error("disk read failed"));
    },
  });
  await assert.rejects(
    source.pipeThrough(failing).pipeTo(new WritableStream()),
    /disk read failed/,
  );
  await assert.rejects(failing.result, /disk read failed/);
});

Deno.test("digest: verifyDigest accepts equal digests", () => {
  const digest = sha256Digest(new Uint8Array(0));
  assert.equal(digest, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  verifyDigest("empty", digest, digest);
});

/** Reads `stream` to its end or its error: the chunks read, and the error. */
async function drain(
  stream: ReadableStream<Uint8Array>,
): Promise<{ chunks: Uint8Array[]; error: unknown }> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { chunks, error: undefined };
      chunks.push(value);
    }
  } catch (error) {
    return { chunks, error };
  }
}

Deno.test("checkedBlobStream: passes matching bytes as they are; more, fewer or other bytes are verify errors", async () => {
  const bytes = new TextEncoder().encode("0123456789");
  const blob = { digest: sha256Digest(bytes), size: bytes.length };
  const pieces = [bytes.subarray(0, 4), bytes.subarray(4)];
  const good = await drain(checkedBlobStream(blob, ReadableStream.from(pieces), "blob x"));
  assert.equal(good.error, undefined);
  assert.deepEqual(good.chunks, pieces);

  const longer = [bytes.subarray(0, 6), bytes, bytes];
  const tooMany = await drain(checkedBlobStream(blob, ReadableStream.from(longer), "blob x"));
  assert.ok(tooMany.error instanceof PusherError && tooMany.error.kind === "verify");
  assert.match(tooMany.error.message, /^blob x has more than the 10 bytes/);
  assert.equal(tooMany.chunks.length, 1, "fails at the chunk that overruns, not at the end");

  const tooFew = await drain(checkedBlobStream(blob, ReadableStream.from(pieces.slice(0, 1)), "b"));
  assert.ok(tooFew.error instanceof PusherError && tooFew.error.kind === "verify");
  assert.match(tooFew.error.message, /^b ended after 4 of the 10 bytes/);

  const other = new TextEncoder().encode("9876543210");
  const changed = await drain(checkedBlobStream(blob, ReadableStream.from([other]), "blob x"));
  assert.ok(changed.error instanceof PusherError && changed.error.kind === "verify");
  assert.equal(
    changed.error.message,
    `blob x: expected digest ${blob.digest} but the bytes hash to ${sha256Digest(other)}`,
  );
});

Deno.test("digest: an expected sha512 digest is checked with sha512", async () => {
  const bytes = new TextEncoder().encode("hello");
  const sha512 = `sha512:${createHash("sha512").update(bytes).digest("hex")}`;
  const digest = new DigestStream({ expected: { digest: sha512, size: 5, what: "b", hint: "" } });
  await ReadableStream.from([bytes]).pipeThrough(digest).pipeTo(new WritableStream());
  assert.deepEqual(await digest.result, { digest: sha512, size: 5 });
});
