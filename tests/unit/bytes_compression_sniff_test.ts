import assert from "node:assert/strict";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { SNIFF_LENGTH, sniffCompression } from "../../lib/bytes/compression_sniff.ts";
import { zstdWithSkippableFrame } from "../helpers/byte_streams.ts";

const sample = new TextEncoder().encode("layer bytes, ".repeat(50_000));

/** Runs a command on `input` and returns its standard output. */
async function tool(command: string, args: string[], input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(command, { args, stdin: "piped", stdout: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(input);
  await writer.close();
  const output = await child.output();
  assert.equal(output.code, 0, `${command} ${args.join(" ")}`);
  return output.stdout;
}

Deno.test("compression sniff: what real compressors write is told by its first bytes", async () => {
  const cases: Array<[string, Uint8Array]> = [
    ["gzip", new Uint8Array(gzipSync(sample))],
    ["zstd", new Uint8Array(zstdCompressSync(sample))],
    ["xz", await tool("xz", ["-c"], sample)],
    ["bzip2", await tool("bzip2", ["-c"], sample)],
    ["lz4", await tool("lz4", ["-c"], sample)],
    // pzstd opens every frame with a skippable frame holding its size.
    ["zstd", await tool("pzstd", ["-c", "-q"], sample)],
  ];
  for (const [expected, bytes] of cases) {
    assert.equal(sniffCompression(bytes.subarray(0, SNIFF_LENGTH)), expected);
  }
});

Deno.test("compression sniff: every skippable frame magic, lz4 and short heads", () => {
  for (let low = 0; low < 16; low++) {
    assert.equal(sniffCompression(Uint8Array.of(0x50 | low, 0x2a, 0x4d, 0x18, 4, 0)), "zstd");
  }
  assert.equal(sniffCompression(zstdWithSkippableFrame(sample).subarray(0, 6)), "zstd");
  assert.equal(sniffCompression(Uint8Array.of(0x60, 0x2a, 0x4d, 0x18, 4, 0)), "none");
  assert.equal(sniffCompression(Uint8Array.of(0x04, 0x22, 0x4d, 0x18, 0x64, 0x40)), "lz4");
  assert.equal(sniffCompression(new TextEncoder().encode("./etc/hostname")), "none");
  assert.equal(sniffCompression(sample), "none");
  // A head shorter than a magic is never taken for it.
  assert.equal(sniffCompression(Uint8Array.of(0x1f)), "none");
  assert.equal(sniffCompression(Uint8Array.of(0x28, 0xb5, 0x2f)), "none");
  assert.equal(sniffCompression(Uint8Array.of(0x50, 0x2a, 0x4d)), "none");
  assert.equal(sniffCompression(new Uint8Array(0)), "none");
});
