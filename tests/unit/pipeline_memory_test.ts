import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { deflateRawSync, gunzipSync, inflateRawSync, zstdDecompressSync } from "node:zlib";
import { fileRangeStream } from "../../lib/image/file_io.ts";
import { CompressionPool, CompressStream } from "../../lib/pipeline/compress.ts";
import { compressBlock, incompressible, outputBound } from "../../lib/pipeline/compress_block.ts";
import { isOwned, markOwned } from "../../lib/bytes/owned_chunk.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const MIB = 1024 * 1024;

/** Incompressible bytes: an AES-CTR keystream. */
function noise(size: number, seed = 1): Uint8Array {
  const key = new Uint8Array(16).fill(seed);
  return new Uint8Array(
    createCipheriv("aes-128-ctr", key, new Uint8Array(16)).update(new Uint8Array(size)),
  );
}

/** Compressible bytes: numbered text lines. */
function text(size: number): Uint8Array {
  const lines: string[] = [];
  let length = 0;
  for (let line = 0; length < size; line++) {
    const next = `line ${line}: the quick brown fox jumps over the lazy dog ${line % 97}\n`;
    lines.push(next);
    length += next.length;
  }
  return new TextEncoder().encode(lines.join("")).subarray(0, size);
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  await stream.pipeTo(new WritableStream({ write: (chunk) => void chunks.push(chunk) }));
  return chunks;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

Deno.test("owned chunks: file ranges are marked only when asked", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const bytes = text(3 * MIB + 5);
  await Deno.writeFile(`${dir}/file`, bytes);
  const owned = await collect(fileRangeStream(`${dir}/file`, 7, 2 * MIB, "range", true));
  assert.ok(owned.length >= 2);
  assert.ok(owned.every(isOwned));
  assert.deepEqual(concat(owned), bytes.subarray(7, 7 + 2 * MIB));
  const plain = await collect(fileRangeStream(`${dir}/file`, 0, MIB, "range"));
  assert.ok(plain.every((chunk) => !isOwned(chunk)));
});

Deno.test("compress block: random blocks are stored, compressible ones deflated", () => {
  const random = noise(MIB);
  const words = text(MIB);
  assert.equal(incompressible(random), true);
  assert.equal(incompressible(words), false);
  // Text after a long stretch of noise: one sample compresses, so the block is deflated.
  const mixed = random.slice();
  mixed.set(words.subarray(0, 300_000), MIB - 300_000);
  assert.equal(incompressible(mixed), false);
  assert.equal(incompressible(noise(100_000)), false, "small blocks are always deflated");

  const stored = new Uint8Array(compressBlock("gzip", 6, random, true));
  // Stored deflate blocks: 5 bytes of header per 64 KiB at most.
  assert.ok(stored.byteLength <= random.byteLength + 5 * 17, `${stored.byteLength}`);
  assert.deepEqual(new Uint8Array(inflateRawSync(stored)), random);
  const packed = new Uint8Array(compressBlock("gzip", 6, words, true));
  assert.ok(packed.byteLength < words.byteLength / 4, `${packed.byteLength}`);
  assert.deepEqual(new Uint8Array(inflateRawSync(packed)), words);
  assert.ok(outputBound(MIB) > MIB + 5 * 17);
  assert.equal(outputBound(10), 64 * 1024);
});

Deno.test("compress block: the output is a buffer of exactly its length", () => {
  const words = text(MIB);
  const random = noise(MIB);
  const gzipped = compressBlock("gzip", 3, words, true);
  assert.equal(gzipped.byteLength, deflateRawSync(words, { level: 3 }).byteLength);
  const stored = compressBlock("gzip", 3, random, true);
  // Stored blocks depend on zlib's output room: the bound is fixed by the input length.
  const bound = outputBound(MIB);
  assert.equal(
    stored.byteLength,
    deflateRawSync(random, { level: 0, chunkSize: bound }).byteLength,
  );
  // Trailing bytes after the frame would make the zstd decoder fail.
  const zstd = compressBlock("zstd", 3, words, true);
  assert.deepEqual(new Uint8Array(zstdDecompressSync(new Uint8Array(zstd))), words);
});

Deno.test("compress stream: owned input is freed, output is owned, gzip reads it back", async () => {
  const pool = new CompressionPool({ size: 2 });
  try {
    const input = concat([text(MIB + 100), noise(2 * MIB), text(MIB / 2)]);
    const chunks: Uint8Array[] = [];
    for (let offset = 0; offset < input.length; offset += 300_000) {
      chunks.push(markOwned(input.slice(offset, offset + 300_000)));
    }
    const outputs = await collect(
      ReadableStream.from(chunks).pipeThrough(new CompressStream("gzip", { pool, blockSize: MIB })),
    );
    assert.ok(chunks.every((chunk) => chunk.byteLength === 0), "every input chunk was freed");
    // Header and trailer are small constants; every block's output is owned.
    assert.deepEqual(
      outputs.map(isOwned),
      outputs.map((_, index) => index > 0 && index < outputs.length - 1),
    );
    const gzipped = concat(outputs);
    assert.deepEqual(new Uint8Array(gunzipSync(gzipped)), input);
    // The noise went out stored, not inflated by a failed search for matches.
    assert.ok(gzipped.byteLength < 2 * MIB + 400_000, `${gzipped.byteLength}`);
    assert.equal(pool.buffersInUse, 0, "the stream gave its buffers back");
  } finally {
    pool.close();
  }
});

Deno.test("compress stream: streams share the pool's buffer budget and each keeps going", async () => {
  const pool = new CompressionPool({ size: 2, bufferBudget: 3 });
  let peak = 0;
  try {
    const inputs = [0, 1, 2, 3, 4].map((index) => text(3 * MIB + index * 1000));
    const results = await Promise.all(inputs.map(async (input) => {
      const source = new ReadableStream<Uint8Array>({
        start(controller): void {
          for (let offset = 0; offset < input.length; offset += 256 * 1024) {
            controller.enqueue(input.slice(offset, offset + 256 * 1024));
          }
          controller.close();
        },
      });
      const outputs = await collect(
        source.pipeThrough(new CompressStream("gzip", { pool, blockSize: 256 * 1024 })).pipeThrough(
          new TransformStream({
            transform(chunk, controller): void {
              peak = Math.max(peak, pool.buffersInUse);
              controller.enqueue(chunk);
            },
          }),
        ),
      );
      return new Uint8Array(gunzipSync(concat(outputs)));
    }));
    results.forEach((result, index) => assert.deepEqual(result, inputs[index]));
    // Five streams, one buffer each at least, the budget of three not exceeded beyond that.
    assert.ok(peak <= 5, `peak ${peak} buffers`);
    assert.ok(peak >= 3, `peak ${peak} buffers: the budget was used`);
    assert.equal(pool.buffersInUse, 0);
  } finally {
    pool.close();
  }
});
