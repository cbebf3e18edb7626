import assert from "node:assert/strict";
import { constants, zstdCompressSync } from "node:zlib";
import { PusherError } from "../../lib/errors.ts";
import { decompressStream } from "../../lib/image/compression.ts";
import { ZstdFrameScanner } from "../../lib/image/zstd_frames.ts";
import { chunkedStream } from "../helpers/byte_streams.ts";
import { concat } from "../helpers/fixtures.ts";

const encoder = new TextEncoder();

function frame(text: string | Uint8Array, checksum = false): Uint8Array {
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  return new Uint8Array(
    zstdCompressSync(bytes, { params: { [constants.ZSTD_c_checksumFlag]: checksum ? 1 : 0 } }),
  );
}

/** A skippable frame (magic 0x184D2A5?) holding `size` bytes of metadata. */
function skippable(size: number): Uint8Array {
  const bytes = new Uint8Array(8 + size).fill(7);
  bytes.set([0x53, 0x2a, 0x4d, 0x18, size & 0xff, size >> 8, 0, 0]);
  return bytes;
}

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

Deno.test("zstd frames: every frame is decoded, skippable frames are left out, in any chunking", async () => {
  const noisy = new Uint8Array(300_000).map((_, index) => (index * 7919) % 251);
  const expected = "first " + new TextDecoder().decode(noisy) + "x".repeat(50_000) + " last";
  const input = concat([
    skippable(5),
    frame("first ", true),
    frame(noisy),
    frame("x".repeat(50_000)),
    skippable(0),
    frame(" last", true),
  ]);
  for (const size of [1, 3, 1000, input.length]) {
    assert.equal(
      await text(decompressStream(chunkedStream(input, size), "zstd", "layer")),
      expected,
    );
  }
});

Deno.test("zstd frames: the scanner marks where each frame ends", () => {
  const first = frame("one");
  const second = frame("two", true);
  const scanner = new ZstdFrameScanner("layer");
  assert.equal(scanner.atFrameBoundary, true);
  const pieces = scanner.feed(concat([first, second.subarray(0, 4)]));
  assert.deepEqual(pieces.map((piece) => [piece.bytes.length, piece.frameEnd]), [
    [first.length, true],
    [4, false],
  ]);
  assert.equal(scanner.atFrameBoundary, false);
  const rest = scanner.feed(second.subarray(4));
  assert.deepEqual(rest.map((piece) => [piece.bytes.length, piece.frameEnd]), [
    [second.length - 4, true],
  ]);
  assert.equal(scanner.atFrameBoundary, true);
});

Deno.test("zstd frames: cut-short and non-zstd input fail with an input error naming the layer", async () => {
  const whole = concat([frame("one"), frame("two".repeat(1000))]);
  const isInputError = (part: string) => (error: unknown): boolean => {
    assert.ok(error instanceof PusherError, String(error));
    assert.equal(error.kind, "input");
    assert.ok(error.message.startsWith("layer 2: "), error.message);
    assert.ok(error.message.includes(part), error.message);
    return true;
  };
  await assert.rejects(
    text(
      decompressStream(chunkedStream(whole.subarray(0, whole.length - 3), 7), "zstd", "layer 2"),
    ),
    isInputError("cut short"),
  );
  await assert.rejects(
    text(decompressStream(chunkedStream(encoder.encode("plain tar bytes"), 4), "zstd", "layer 2")),
    isInputError("no frame at byte 0"),
  );
});
