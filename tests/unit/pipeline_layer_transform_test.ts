import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { CompressionPool } from "../../lib/pipeline/compress.ts";
import { sha256Digest } from "../../lib/pipeline/digest.ts";
import {
  detectCompression,
  type LayerResult,
  measureLayer,
  transformLayer,
} from "../../lib/pipeline/layer_transform.ts";

const BLOCK = 65536;

/** A temp dir holding a real layer tar (made by `tar`) of a few files, ~300 KiB. */
async function makeLayer(): Promise<{ dir: string; tar: Uint8Array }> {
  const dir = await Deno.makeTempDir();
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
  return { dir, tar: await Deno.readFile(`${dir}/layer.tar`) };
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

Deno.test("layer: detectCompression reads magic bytes", () => {
  assert.equal(detectCompression(Uint8Array.of(0x1f, 0x8b, 8, 0)), "gzip");
  assert.equal(detectCompression(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0)), "zstd");
  assert.equal(detectCompression(Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0)), "xz");
  assert.equal(detectCompression(new TextEncoder().encode("BZh91AY")), "bzip2");
  assert.equal(detectCompression(new TextEncoder().encode("./etc/hostname")), "none");
  assert.equal(detectCompression(Uint8Array.of(0x1f)), "none");
  assert.equal(detectCompression(new Uint8Array(0)), "none");
});

Deno.test("layer: an uncompressed tar is hashed as diff_id, compressed, and hashed again", async () => {
  const { dir, tar } = await makeLayer();
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
      assert.equal(detectCompression(blob), target);
      assert.deepEqual(await tool(target, ["-dc"], blob), tar);
      // Measuring without uploading gives the same identity (compression is deterministic).
      const measured = await measureLayer(chunks(tar, 777), { target, pool, blockSize: BLOCK });
      assert.deepEqual(measured, await result);
    }
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("layer: target none and compressed layers pass through byte for byte", async () => {
  const { dir, tar } = await makeLayer();
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
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("layer: a stored digest mismatch errors the stream before it ends", async () => {
  const { dir, tar } = await makeLayer();
  try {
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
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("layer: a diff_id mismatch of an uncompressed layer fails compressed output too", async () => {
  const { dir, tar } = await makeLayer();
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
      await assert.rejects(
        measureLayer(chunks(tar, 8192), { target, expectedDiffId: wrong }),
        matches,
      );
    }
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
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

Deno.test("layer: xz layers, bad levels and non-sha256 digests are refused", async () => {
  const xz = Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3);
  const layer = transformLayer(ReadableStream.from([xz]), { target: "gzip", label: "layer x" });
  const refused = (error: unknown): boolean => {
    assert.ok(error instanceof PusherError);
    assert.equal(error.kind, "input");
    assert.match(error.message, /layer x is compressed with xz/);
    return true;
  };
  await assert.rejects(collect(layer.stream), refused);
  await assert.rejects(layer.result, refused);

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
  const { dir, tar } = await makeLayer();
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
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("layer: reencode turns multi-frame zstd into gzip, checking the diff_id", async () => {
  const { dir, tar } = await makeLayer();
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
    const direct = await measureLayer(chunks(tar, 3000), {
      target: "gzip",
      pool,
      blockSize: BLOCK,
    });
    assert.equal(direct.digest, sha256Digest(blob));
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
    await Deno.remove(dir, { recursive: true });
  }
});
