/**
 * The archive writer's tar headers: fixed metadata, ustar prefixes and PAX records for long
 * names, base-256 plus PAX for sizes past 8 GiB — read back by this project's tar parser and,
 * where the data is at hand, by GNU tar.
 */

import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { readNextEntry, type TarSource } from "../../lib/image/tar_header.ts";
import {
  endOfArchive,
  tarEntryHeader,
  tarPadding,
  type TarWriteEntry,
} from "../../lib/image/tar_writer.ts";
import { concat } from "../helpers/fixtures.ts";
import { tempDir } from "../helpers/temp_dir.ts";

/** Tar bytes in memory, read the way the archive readers read files. */
class BytesSource implements TarSource {
  position = 0;
  constructor(private readonly bytes: Uint8Array) {}

  read(length: number): Promise<Uint8Array | undefined> {
    if (this.position >= this.bytes.length) return Promise.resolve(undefined);
    const chunk = this.bytes.slice(this.position, this.position + length);
    this.position += length;
    return Promise.resolve(chunk);
  }

  skip(length: number): Promise<void> {
    this.position += length;
    return Promise.resolve();
  }
}

const decoder = new TextDecoder();

function field(block: Uint8Array, offset: number, length: number): string {
  return decoder.decode(block.subarray(offset, offset + length));
}

/** A whole archive of one entry with `size` bytes of data (zeros). */
function archiveOf(entry: TarWriteEntry): Uint8Array {
  const data = new Uint8Array(entry.size);
  return concat([tarEntryHeader(entry), data, tarPadding(entry.size), endOfArchive()]);
}

async function gnuTarList(bytes: Uint8Array): Promise<string[]> {
  await using dir = await tempDir();
  const path = `${dir.path}/entry.tar`;
  await Deno.writeFile(path, bytes);
  const output = await new Deno.Command("tar", { args: ["-tf", path], stdout: "piped" }).output();
  assert.ok(output.success, "GNU tar could not list the archive");
  return decoder.decode(output.stdout).trim().split("\n");
}

Deno.test("tar writer: a file header is one ustar block with mtime 0, root owner and mode 0644", async () => {
  const header = tarEntryHeader({ path: "blobs/sha256/abc", type: "file", size: 1234 });
  assert.equal(header.length, 512);
  assert.equal(field(header, 100, 8), "0000644\0");
  assert.equal(field(header, 108, 8), "0000000\0");
  assert.equal(field(header, 116, 8), "0000000\0");
  assert.equal(field(header, 124, 12), "00000002322\0");
  assert.equal(field(header, 136, 12), "00000000000\0");
  assert.equal(field(header, 257, 8), "ustar\x0000");
  assert.equal(field(header, 265, 64), "\0".repeat(64), "no user or group names");
  const record = await readNextEntry(
    new BytesSource(archiveOf({
      path: "blobs/sha256/abc",
      type: "file",
      size: 1234,
    })),
    "test",
  );
  assert.equal(record?.header.path, "blobs/sha256/abc");
  assert.equal(record?.header.type, "file");
  assert.equal(record?.dataSize, 1234);
});

Deno.test("tar writer: a directory gets a trailing slash, mode 0755 and type 5", () => {
  const header = tarEntryHeader({ path: "blobs/sha256", type: "directory", size: 0 });
  assert.equal(field(header, 0, 14), "blobs/sha256/\0");
  assert.equal(field(header, 100, 8), "0000755\0");
  assert.equal(String.fromCharCode(header[156] ?? 0), "5");
});

Deno.test("tar writer: a 150-byte path is split into the ustar prefix and name", async () => {
  const path = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(28)}`;
  assert.equal(path.length, 150);
  const header = tarEntryHeader({ path, type: "file", size: 3 });
  assert.equal(header.length, 512, "no PAX header is needed");
  assert.equal(field(header, 345, 61), `${"d".repeat(60)}\0`);
  assert.equal(field(header, 0, 90), `${"e".repeat(60)}/${"f".repeat(28)}\0`);
  const bytes = archiveOf({ path, type: "file", size: 3 });
  assert.equal((await readNextEntry(new BytesSource(bytes), "test"))?.header.path, path);
  assert.deepEqual(await gnuTarList(bytes), [path]);
});

Deno.test("tar writer: a 300-byte path goes in a PAX path record", async () => {
  const path = `${"a".repeat(200)}/${"b".repeat(99)}`;
  const header = tarEntryHeader({ path, type: "file", size: 5 });
  assert.ok(header.length > 512, "a PAX header precedes the entry");
  assert.equal(String.fromCharCode(header[156] ?? 0), "x");
  assert.match(decoder.decode(header.subarray(512, 1024)), new RegExp(`^310 path=${path}\n`));
  const bytes = archiveOf({ path, type: "file", size: 5 });
  assert.equal((await readNextEntry(new BytesSource(bytes), "test"))?.header.path, path);
  assert.deepEqual(await gnuTarList(bytes), [path]);
});

Deno.test("tar writer: a 10 GiB size is written in base-256 and as a PAX size record", async () => {
  const size = 10 * 1024 ** 3;
  const header = tarEntryHeader({ path: "blobs/sha256/big", type: "file", size });
  const pax = decoder.decode(header.subarray(512, header.length - 512));
  assert.match(pax, /^20 size=10737418240\n/);
  const ustar = header.subarray(header.length - 512);
  assert.equal(ustar[124], 0x80, "base-256 marker");
  const record = await readNextEntry(new BytesSource(concat([header, new Uint8Array(512)])), "t");
  assert.equal(record?.header.path, "blobs/sha256/big");
  assert.equal(record?.dataSize, size);
});

Deno.test("tar writer: a bad entry is an internal error", () => {
  for (
    const entry of [
      { path: "blobs/", type: "file", size: 1 },
      { path: "/abs", type: "file", size: 1 },
      { path: "x", type: "file", size: -1 },
      { path: "x", type: "directory", size: 4 },
    ] satisfies TarWriteEntry[]
  ) {
    assert.throws(
      () => tarEntryHeader(entry),
      (error: unknown) => error instanceof PusherError && error.kind === "internal",
    );
  }
});

Deno.test("tar writer: padding fills to the next block and the end marker is two zero blocks", () => {
  assert.equal(tarPadding(0).length, 0);
  assert.equal(tarPadding(1).length, 511);
  assert.equal(tarPadding(512).length, 0);
  assert.deepEqual(endOfArchive(), new Uint8Array(1024));
});
