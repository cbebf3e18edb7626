import assert from "node:assert/strict";
import { chunkedStream, collectBytes, zstdWithSkippableFrame } from "../helpers/byte_streams.ts";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { PusherError } from "../../lib/errors.ts";
import { openArchive } from "../../lib/image/open_archive.ts";
import { openRandomAccessArchive } from "../../lib/image/random_access.ts";
import { scanArchiveStream } from "../../lib/image/stream_scan.ts";
import { concat, digestOf, sharedFixtures, writeTar } from "../helpers/fixtures.ts";
import { tempDir, withTempFile } from "../helpers/temp_dir.ts";

async function assertInputError(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PusherError, `expected PusherError, got ${error}`);
    assert.equal(error.kind, "input");
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"));
    return true;
  });
}

/** 3 MiB of bytes that differ everywhere, so offsets are checked byte for byte. */
const big = new Uint8Array(3 * 1024 * 1024 + 123);
for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
const TAR = writeTar([
  { name: "small.json", data: '{"a":1}' },
  { name: "big.bin", data: big },
  { name: "links/", type: "directory" },
  { name: "links/big", type: "symlink", linkname: "../big.bin" },
  { name: "medium.bin", data: big.subarray(0, 200_000) },
]);

Deno.test("random access: read, openEntry with offsets, several streams at once", async () => {
  await withTempFile("archive.tar", TAR, async (path) => {
    const archive = await openRandomAccessArchive(path);
    assert.deepEqual(archive.paths(), ["small.json", "big.bin", "medium.bin"]);
    assert.equal(archive.resolve("links/big"), "big.bin");
    assert.equal(archive.size("links/big"), big.length);
    assert.equal(new TextDecoder().decode(await archive.read("small.json")), '{"a":1}');
    const [whole, tail, viaLink, end] = await Promise.all([
      collectBytes(archive.openEntry("big.bin")),
      collectBytes(archive.openEntry("big.bin", 1_048_577)),
      collectBytes(archive.openEntry("links/big", 5)),
      collectBytes(archive.openEntry("big.bin", big.length)),
    ]);
    assert.equal(digestOf(whole), digestOf(big));
    assert.equal(digestOf(tail), digestOf(big.subarray(1_048_577)));
    assert.equal(digestOf(viaLink), digestOf(big.subarray(5)));
    assert.equal(end.length, 0);
    const chunks: number[] = [];
    for await (const chunk of archive.openEntry("big.bin")) chunks.push(chunk.length);
    assert.equal(chunks[0], 1024 * 1024, "reads are 1 MiB");
    assert.throws(() => archive.openEntry("nope"), /not in the archive/);
    assert.throws(() => archive.openEntry("big.bin", big.length + 1), /outside entry/);
    await assertInputError(archive.read("missing.json"), /"missing.json" is not in the archive/);
  });
});

Deno.test("random access: a file shortened after indexing fails the entry stream", async () => {
  await withTempFile("archive.tar", TAR, async (path) => {
    const archive = await openRandomAccessArchive(path);
    await Deno.truncate(path, 2 * 1024 * 1024);
    await assertInputError(
      collectBytes(archive.openEntry("big.bin")),
      /truncated: entry "big.bin"/,
    );
  });
});

Deno.test("scan: small entries buffered, large ones handed over in archive order", async () => {
  for (const compression of ["none", "gzip", "zstd"] as const) {
    const bytes = compression === "gzip"
      ? new Uint8Array(gzipSync(TAR))
      : compression === "zstd"
      ? new Uint8Array(zstdCompressSync(TAR))
      : TAR;
    const calls: string[] = [];
    const result = await scanArchiveStream(
      chunkedStream(bytes, 10_000),
      async (path, size, body) => {
        calls.push(path);
        const data = await collectBytes(body);
        assert.equal(data.length, size);
        return digestOf(data);
      },
      { name: "t.tar", memoryLimit: 100_000 },
    );
    assert.equal(result.compression, compression);
    assert.deepEqual(calls, ["big.bin", "medium.bin"]);
    assert.equal(result.large.get("big.bin"), digestOf(big));
    assert.equal(result.large.get("medium.bin"), digestOf(big.subarray(0, 200_000)));
    assert.deepEqual(result.view.paths(), ["small.json", "big.bin", "medium.bin"]);
    assert.equal(result.view.resolve("links/big"), "big.bin");
    assert.equal(result.view.size("links/big"), big.length);
    assert.equal(new TextDecoder().decode(await result.view.read("small.json")), '{"a":1}');
    await assertInputError(result.view.read("links/big"), /"big.bin" \(\d+ bytes\) is too large/);
  }
});

Deno.test("scan: a handler that leaves the body unread still gets the next entry", async () => {
  const seen: string[] = [];
  const result = await scanArchiveStream(
    chunkedStream(TAR, 7000),
    (path) => {
      seen.push(path);
      return Promise.resolve(path.length);
    },
    { memoryLimit: 1000 },
  );
  assert.deepEqual(seen, ["big.bin", "medium.bin"]);
  assert.equal(result.large.get("medium.bin"), "medium.bin".length);
});

Deno.test("scan: a handler error stops the pass and is rethrown", async () => {
  let cancelled = false;
  const source = chunkedStream(TAR, 4096);
  const reader = source.getReader();
  const watched = new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(): void {
      cancelled = true;
    },
  });
  await assert.rejects(
    scanArchiveStream(watched, () => Promise.reject(new PusherError("network", "upload failed")), {
      memoryLimit: 1000,
    }),
    /upload failed/,
  );
  assert.ok(cancelled, "the source stream is cancelled");
});

Deno.test("scan: empty, truncated and unsupported input are input errors", async () => {
  const noop = (): Promise<null> => Promise.resolve(null);
  await assertInputError(
    scanArchiveStream(chunkedStream(new Uint8Array(0), 64 * 1024), noop),
    /is empty/,
  );
  await assertInputError(
    scanArchiveStream(
      chunkedStream(new Uint8Array(gzipSync(TAR)).subarray(0, 5000), 64 * 1024),
      noop,
      {
        name: "cut.tar.gz",
      },
    ),
    /cut.tar.gz: corrupt gzip data/,
  );
  // zstd cut short inside a frame: the frame scanner notices before the tar parser does.
  const zstd = new Uint8Array(zstdCompressSync(TAR));
  await assertInputError(
    scanArchiveStream(chunkedStream(zstd.subarray(0, zstd.length - 100), 64 * 1024), noop, {
      name: "cut.zst",
    }),
    /^cut.zst: the zstd data is cut short$/,
  );
  await assertInputError(
    scanArchiveStream(
      chunkedStream(new Uint8Array([0x42, 0x5a, 0x68, 0x39, 1, 2, 3]), 64 * 1024),
      noop,
      {
        name: "x.tar.bz2",
      },
    ),
    /x.tar.bz2 is bzip2-compressed/,
  );
});

Deno.test("openArchive: plain tar → random access; gzip/zstd by magic bytes → stream", async () => {
  const fixtures = await sharedFixtures();
  const plain = await openArchive(fixtures["docker-legacy"].path);
  assert.equal(plain.mode, "random");
  // Compression is told by content, whatever the file is called.
  await withTempFile("archive.tar", new Uint8Array(gzipSync(TAR)), async (path) => {
    const source = await openArchive(path);
    assert.ok(source.mode === "stream" && source.compression === "gzip");
    await source.stream.cancel();
  });
  const zstd = await openArchive(fixtures["docker-archive-zstd"].path);
  assert.ok(zstd.mode === "stream" && zstd.compression === "zstd");
  const result = await scanArchiveStream(zstd.stream, (_p, _s, body) => collectBytes(body));
  assert.ok(result.view.has("manifest.json"));
});

/** Runs the `zstd` command line tool on `input`, giving its output. */
async function zstdCli(args: string[], input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("zstd", { args, stdin: "piped", stdout: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  const output = child.output();
  await writer.write(input);
  await writer.close();
  const { code, stdout } = await output;
  assert.equal(code, 0, `zstd ${args.join(" ")}`);
  return stdout;
}

Deno.test("openArchive: a .tar.zst of several zstd frames after a skippable frame reads whole", async () => {
  const fixtures = await sharedFixtures();
  const fixture = fixtures["docker-archive"];
  const tar = await Deno.readFile(fixture.path);
  const cut = Math.floor(tar.length / 3);
  // A skippable frame (as seekable zstd and pzstd write) and the first part, then two more
  // frames as `cat a.zst b.zst c.zst` makes them (one without, one with a checksum).
  const archive = concat([
    zstdWithSkippableFrame(tar.subarray(0, cut)),
    await zstdCli(["-q", "-c", "--no-check"], tar.subarray(cut, 2 * cut)),
    await zstdCli(["-q", "-c", "--check"], tar.subarray(2 * cut)),
  ]);
  // The zstd tool itself reads the same bytes back.
  assert.deepEqual(await zstdCli(["-q", "-d", "-c"], archive), tar);
  await withTempFile("multi-frame.tar.zst", archive, async (path) => {
    const source = await openArchive(path);
    assert.ok(source.mode === "stream" && source.compression === "zstd");
    const scanned = await scanArchiveStream(source.stream, (_path, _size, body) => {
      return collectBytes(body);
    }, { memoryLimit: 64 * 1024 });
    assert.ok(scanned.large.size > 0, "the layers came through the large-entry handler");
    const plain = await openRandomAccessArchive(fixture.path);
    assert.deepEqual(scanned.view.paths(), plain.paths());
    for (const entry of plain.paths()) {
      const bytes = scanned.large.get(entry) ?? await scanned.view.read(entry);
      assert.equal(digestOf(bytes), digestOf(await plain.read(entry)), entry);
    }
  });
});

Deno.test("openArchive: missing, directory, empty and non-archive files are one-line input errors", async () => {
  await assertInputError(openArchive("/nonexistent/image.tar"), /does not exist/);
  await using dir = await tempDir();
  await assertInputError(openArchive(dir.path), /is a directory/);
  await withTempFile(
    "archive.tar",
    new Uint8Array(0),
    (p) => assertInputError(openArchive(p), /is empty/),
  );
  await withTempFile(
    "archive.tar",
    new TextEncoder().encode("<html>not an archive</html>\n".repeat(40)),
    (p) => assertInputError(openArchive(p), /is not a tar archive/),
  );
  await withTempFile(
    "archive.tar.xz",
    new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]),
    (p) => assertInputError(openArchive(p), /is xz-compressed/),
  );
});

Deno.test("openArchive: '-' reads standard input in one pass", async () => {
  const fixtures = await sharedFixtures();
  const script = `
    import { openArchive } from "${new URL("../../lib/image/open_archive.ts", import.meta.url)}";
    import { scanArchiveStream } from "${new URL(
    "../../lib/image/stream_scan.ts",
    import.meta.url,
  )}";
    import { resolveLayout } from "${new URL("../../lib/image/layout.ts", import.meta.url)}";
    const source = await openArchive("-");
    if (source.mode !== "stream") throw new Error("expected stream mode");
    const scan = await scanArchiveStream(source.stream, async (_p, size, body) => {
      for await (const _ of body) { /* consume */ }
      return size;
    }, { name: source.name, memoryLimit: 65536 });
    const selection = await resolveLayout(scan.view);
    console.log(JSON.stringify([source.name, source.compression, selection.images[0].config.digest]));
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const file = await Deno.open(fixtures["docker-legacy-gzip"].path);
  await file.readable.pipeTo(child.stdin);
  const output = await child.output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(output.stdout)), [
    "stdin",
    "gzip",
    fixtures["docker-legacy-gzip"].configDigest,
  ]);
});
