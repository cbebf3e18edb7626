import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { CompressionPool } from "../../lib/pipeline/compress.ts";
import { sniffCompression } from "../../lib/bytes/compression_sniff.ts";
import { sha256Digest } from "../../lib/bytes/sha256.ts";
import { type LayerResult, transformLayer } from "../../lib/pipeline/layer_transform.ts";
import { zstdWithSkippableFrame } from "../helpers/byte_streams.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const BLOCK = 65536;

/** A real layer tar (made by `tar` in `dir`) of a few files, ~300 KiB. */
async function makeLayer(dir: string): Promise<Uint8Array> {
  await Deno.mkdir(`${dir}/root/etc`, { recursive: true });
  await Deno.writeTextFile(`${dir}/root/etc/hostname`, "pusher\n");
  const text = Array.from({ length: 6000 }, (_, index) => `line ${index} of a config file\n`);
  await Deno.writeTextFile(`${dir}/root/etc/long.conf`, text.join(""));
  const noise = new Uint8Array(100_000);
  crypto.getRandomValues(noise.subarray(0, 65536));
  crypto.getRandomValues(noise.subarray(65536));
  await Deno.writeFile(`${dir}/root/noise.bin`, noise);
  const made = await new Deno.Command("tar", {
    args: ["-C", `${dir}/root`, "--sort=name", "--mtime=@0", "-cf", `${dir}/layer.tar`, "."],
  }).output();
  assert.equal(made.code, 0);
  return await Deno.readFile(`${dir}/layer.tar`);
}

/** Streams `bytes` in chunks of `size`. */
function chunks(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const list: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) {
    list.push(bytes.subarray(offset, offset + size));
  }
  return ReadableStream.from(list);
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function tool(command: string, args: string[], stdin: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(command, { args, stdin: "piped", stdout: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(stdin);
  await writer.close();
  const output = await child.output();
  assert.equal(output.code, 0, `${command} ${args.join(" ")}`);
  return output.stdout;
}

function isVerifyError(...parts: string[]): (error: unknown) => boolean {
  return (error: unknown): boolean => {
    assert.ok(error instanceof PusherError, String(error));
    assert.equal(error.kind, "verify");
    for (const part of parts) assert.ok(error.message.includes(part), error.message);
    return true;
  };
}

Deno.test("layer: an uncompressed tar is hashed as diff_id, compressed, and hashed again", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const tar = await makeLayer(dir);
  const pool = new CompressionPool({ size: 2 });
  try {
    const diffId = sha256Digest(tar);
    for (const target of ["gzip", "zstd"] as const) {
      const { stream, result } = transformLayer(chunks(tar, 10_000), {
        target,
        expectedDiffId: diffId,
        expectedStoredDigest: diffId,
        pool,
        blockSize: BLOCK,
      });
      const blob = await collect(stream);
      assert.deepEqual(await result, {
        digest: sha256Digest(blob),
        size: blob.length,
        diffId,
        compression: target,
      });
      assert.equal(sniffCompression(blob), target);
      assert.deepEqual(await tool(target, ["-dc"], blob), tar);
      // Compression is deterministic: other chunking gives the same identity (the layer cache
      // relies on it).
      const again = transformLayer(chunks(tar, 777), { target, pool, blockSize: BLOCK });
      assert.deepEqual(await collect(again.stream), blob);
      assert.deepEqual(await again.result, await result);
    }
  } finally {
    pool.close();
  }
});

Deno.test("layer: target none and compressed layers pass through byte for byte", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const tar = await makeLayer(dir);
  const pool = new CompressionPool({ size: 2 });
  try {
    const diffId = sha256Digest(tar);
    const plain = transformLayer(chunks(tar, 4096), { target: "none", expectedDiffId: diffId });
    assert.deepEqual(await collect(plain.stream), tar);
    assert.deepEqual(await plain.result, {
      digest: diffId,
      size: tar.length,
      diffId,
      compression: "none",
    });

    const gzipped = await tool("gzip", ["-9c"], tar);
    const zstded = await tool("zstd", ["-19c"], tar);
    for (const [stored, bytes] of [["gzip", gzipped], ["zstd", zstded]] as const) {
      // Chunks of 1 byte make the sniffer gather its head from several reads.
      for (const size of [1, 1 << 20]) {
        if (size === 1 && bytes.length > 200_000) continue;
        const layer = transformLayer(chunks(bytes, size), {
          target: stored === "gzip" ? "zstd" : "gzip",
          expectedStoredDigest: sha256Digest(bytes),
          expectedDiffId: `sha256:${"f".repeat(64)}`, // not checkable without decompressing
          pool,
        });
        assert.deepEqual(await collect(layer.stream), bytes);
        const expected: LayerResult = {
          digest: sha256Digest(bytes),
          size: bytes.length,
          compression: stored,
        };
        assert.deepEqual(await layer.result, expected);
      }
    }
  } finally {
    pool.close();
  }
});

Deno.test("layer: a zstd layer opening with a skippable frame passes through as zstd", async () => {
  await using temp = await tempDir();
  const tar = await makeLayer(temp.path);
  const bytes = zstdWithSkippableFrame(tar);
  assert.deepEqual(await tool("zstd", ["-dc"], bytes), tar, "a valid zstd stream");
  for (const size of [1, 4096]) {
    // The diff_id is checked only for bytes taken as uncompressed: were the layer taken for a
    // tar, its digest would be compared with the diff_id and fail.
    const layer = transformLayer(chunks(bytes, size), {
      target: "gzip",
      expectedStoredDigest: sha256Digest(bytes),
      expectedDiffId: sha256Digest(tar),
      label: "layer blobs/sha256/skippable",
    });
    assert.deepEqual(await collect(layer.stream), bytes);
    const expected: LayerResult = {
      digest: sha256Digest(bytes),
      size: bytes.length,
      compression: "zstd",
    };
    assert.deepEqual(await layer.result, expected);
  }
});

Deno.test("layer: a stored digest mismatch errors the stream before it ends", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const tar = await makeLayer(dir);
  const gzipped = await tool("gzip", ["-c"], tar);
  const wrong = `sha256:${"a".repeat(64)}`;
  for (const [bytes, target] of [[gzipped, "gzip"], [tar, "none"], [tar, "zstd"]] as const) {
    const layer = transformLayer(chunks(bytes, 8192), {
      target,
      expectedStoredDigest: wrong,
      label: "layer blobs/sha256/aaaa",
      blockSize: BLOCK,
    });
    const reader = layer.stream.getReader();
    let received = 0;
    const failed = (async (): Promise<void> => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        received += value.length;
      }
    })();
    const matches = isVerifyError("layer blobs/sha256/aaaa", wrong, sha256Digest(bytes));
    await assert.rejects(failed, matches);
    await assert.rejects(layer.result, matches);
    assert.ok(received > 0, "bytes flowed before the check");
  }
});

Deno.test("layer: a diff_id mismatch of an uncompressed layer fails compressed output too", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const tar = await makeLayer(dir);
  const pool = new CompressionPool({ size: 2 });
  try {
    const wrong = `sha256:${"b".repeat(64)}`;
    for (const target of ["none", "gzip", "zstd"] as const) {
      const layer = transformLayer(chunks(tar, 8192), {
        target,
        expectedDiffId: wrong,
        pool,
        blockSize: BLOCK,
      });
      const matches = isVerifyError("layer (uncompressed)", wrong, sha256Digest(tar));
      await assert.rejects(collect(layer.stream), matches);
      await assert.rejects(layer.result, matches);
    }
  } finally {
    pool.close();
  }
});

Deno.test("layer: an empty layer compresses to a valid empty blob", async () => {
  const empty = sha256Digest(new Uint8Array(0));
  for (const target of ["gzip", "zstd"] as const) {
    const layer = transformLayer(ReadableStream.from<Uint8Array>([]), {
      target,
      expectedDiffId: empty,
    });
    const blob = await collect(layer.stream);
    assert.equal((await layer.result).diffId, empty);
    assert.equal((await layer.result).digest, sha256Digest(blob));
    assert.equal((await tool(target, ["-dc"], blob)).length, 0);
  }
});

Deno.test("layer: xz, bzip2 and lz4 layers, bad levels and non-sha256 digests are refused", async () => {
  const xz = Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3);
  const refusedFormats = [
    ["xz", xz],
    ["bzip2", new TextEncoder().encode("BZh91AY&SY")],
    ["lz4", Uint8Array.of(0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7)],
  ] as const;
  for (const [format, bytes] of refusedFormats) {
    const layer = transformLayer(ReadableStream.from([bytes]), {
      target: "gzip",
      label: "layer x",
    });
    const refused = (error: unknown): boolean => {
      assert.ok(error instanceof PusherError);
      assert.equal(error.kind, "input");
      assert.equal(error.message, `layer x is compressed with ${format}`);
      return true;
    };
    await assert.rejects(collect(layer.stream), refused);
    await assert.rejects(layer.result, refused);
  }

  assert.throws(
    () => transformLayer(ReadableStream.from([xz]), { target: "zstd", level: 99 }),
    (error: unknown) => error instanceof PusherError && error.kind === "usage",
  );
  assert.throws(
    () =>
      transformLayer(ReadableStream.from([xz]), {
        target: "none",
        expectedStoredDigest: `sha512:${"0".repeat(128)}`,
      }),
    (error: unknown) => error instanceof PusherError && /does not use sha256/.test(error.message),
  );
});

Deno.test("layer: cancelling the output cancels the source", async () => {
  let cancelled: unknown;
  const source = new ReadableStream<Uint8Array>({
    pull(controller): void {
      controller.enqueue(new Uint8Array(1024));
    },
    cancel(reason): void {
      cancelled = reason;
    },
  });
  const layer = transformLayer(source, { target: "gzip", blockSize: BLOCK });
  const reader = layer.stream.getReader();
  await reader.read();
  await reader.cancel("registry already has it");
  await assert.rejects(layer.result);
  assert.equal(cancelled, "registry already has it");
});

Deno.test("layer: skopeo (Go's gzip and zstd readers) reads compressed layers back to the tar", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const tar = await makeLayer(dir);
  const pool = new CompressionPool({ size: 2 });
  try {
    const diffId = sha256Digest(tar);
    for (const target of ["gzip", "zstd"] as const) {
      const layout = `${dir}/oci-${target}`;
      await Deno.mkdir(`${layout}/blobs/sha256`, { recursive: true });
      const writeBlob = async (bytes: Uint8Array): Promise<string> => {
        const digest = sha256Digest(bytes);
        await Deno.writeFile(`${layout}/blobs/sha256/${digest.slice(7)}`, bytes);
        return digest;
      };
      const layer = transformLayer(chunks(tar, 3000), { target, pool, blockSize: BLOCK });
      const blob = await collect(layer.stream);
      const { digest, size } = await layer.result;
      assert.equal(await writeBlob(blob), digest);
      const config = new TextEncoder().encode(JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: {},
        rootfs: { type: "layers", diff_ids: [diffId] },
      }));
      const manifest = new TextEncoder().encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: await writeBlob(config),
          size: config.length,
        },
        layers: [{ mediaType: `application/vnd.oci.image.layer.v1.tar+${target}`, digest, size }],
      }));
      const manifestDigest = await writeBlob(manifest);
      await Deno.writeTextFile(`${layout}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
      await Deno.writeTextFile(
        `${layout}/index.json`,
        JSON.stringify({
          schemaVersion: 2,
          manifests: [{
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: manifestDigest,
            size: manifest.length,
            annotations: { "org.opencontainers.image.ref.name": "t" },
          }],
        }),
      );
      // --dest-decompress makes skopeo decompress our layer with Go's readers and store the
      // result under its own digest, which must be the diff_id.
      const copy = `${dir}/copy-${target}`;
      const copied = await new Deno.Command("skopeo", {
        args: [
          "--insecure-policy",
          "copy",
          "--dest-decompress",
          `oci:${layout}:t`,
          `dir:${copy}`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(copied.code, 0, new TextDecoder().decode(copied.stderr));
      assert.deepEqual(await Deno.readFile(`${copy}/${diffId.slice(7)}`), tar);
    }
  } finally {
    pool.close();
  }
});

Deno.test("layer: reencode turns multi-frame zstd into gzip, checking the diff_id", async () => {
  await using temp = await tempDir();
  const tar = await makeLayer(temp.path);
  const pool = new CompressionPool({ size: 2 });
  try {
    const diffId = sha256Digest(tar);
    // This tool's own zstd output: one frame per block, which Deno's zstd decoder alone cuts short.
    const zstd = await collect(
      transformLayer(chunks(tar, 8192), {
        target: "zstd",
        pool,
        blockSize: BLOCK,
      }).stream,
    );
    const { stream, result } = transformLayer(chunks(zstd, 5000), {
      target: "gzip",
      reencode: true,
      expectedStoredDigest: sha256Digest(zstd),
      expectedDiffId: diffId,
      pool,
      blockSize: BLOCK,
    });
    const blob = await collect(stream);
    assert.deepEqual(await result, {
      digest: sha256Digest(blob),
      size: blob.length,
      diffId,
      compression: "gzip",
    });
    assert.deepEqual(await tool("gzip", ["-dc"], blob), tar);
    // The same tar compressed straight from the archive gives the same blob: one cache key.
    const direct = transformLayer(chunks(tar, 3000), { target: "gzip", pool, blockSize: BLOCK });
    assert.deepEqual(await collect(direct.stream), blob);
    // gzip stays gzip (no re-encoding), and a wrong diff_id fails the output.
    const gzip = await tool("gzip", ["-6c"], tar);
    const kept = transformLayer(chunks(gzip, 4096), { target: "gzip", reencode: true, pool });
    assert.deepEqual(await collect(kept.stream), gzip);
    const wrong = transformLayer(chunks(zstd, 4096), {
      target: "gzip",
      reencode: true,
      expectedDiffId: sha256Digest(new Uint8Array(1)),
      label: "layer 3",
      pool,
    });
    await assert.rejects(collect(wrong.stream), isVerifyError("layer 3 (uncompressed)"));
    await assert.rejects(wrong.result, isVerifyError("layer 3 (uncompressed)"));
  } finally {
    pool.close();
  }
});
