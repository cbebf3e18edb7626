import assert from "node:assert/strict";
import { chunkedStream, collectBytes } from "../helpers/byte_streams.ts";
import { PusherError } from "../../lib/errors.ts";
import { EntryTable } from "../../lib/image/entry_table.ts";
import { indexTarFile, type TarIndexEntry } from "../../lib/image/tar_index.ts";
import { normalizeEntryPath, resolveSymlinkTarget } from "../../lib/image/tar_path.ts";
import { parseTarStream } from "../../lib/image/tar_stream.ts";
import { concat, type TarEntrySpec, writeTar } from "../helpers/fixtures.ts";
import { tempDir, withTempFile } from "../helpers/temp_dir.ts";

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** Index a tar file and read each regular entry's bytes straight from the file by offset. */
async function indexAndRead(
  bytes: Uint8Array,
): Promise<{ entries: TarIndexEntry[]; data: Map<string, string> }> {
  return await withTempFile("archive.tar", bytes, async (path) => {
    const index = await indexTarFile(path);
    const data = new Map<string, string>();
    for (const entry of index.entries) {
      if (entry.type !== "file") continue;
      data.set(entry.path, text(bytes.subarray(entry.dataOffset, entry.dataOffset + entry.size)));
    }
    return { entries: index.entries, data };
  });
}

async function assertInputError(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PusherError, `expected PusherError, got ${error}`);
    assert.equal(error.kind, "input");
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"), "one-line message");
    return true;
  });
}

const longDir = "very-long-directory-name-".repeat(5);
const longName = `${longDir}/${"file-".repeat(30)}end.txt`; // > 255 bytes: no ustar split
const prefixName = `${"d".repeat(120)}/short.txt`; // fits the ustar prefix field
const SAMPLE: TarEntrySpec[] = [
  { name: "./", type: "directory" },
  { name: "./dir/", type: "directory" },
  { name: "./dir/a.txt", data: "alpha" },
  { name: prefixName, data: "prefixed" },
  { name: longName, data: "pax named", longNames: "pax" },
  { name: `gnu/${longName}`, data: "gnu named", longNames: "gnu" },
  { name: "dir/link", type: "symlink", linkname: "a.txt" },
  { name: "dir/hard", type: "hardlink", linkname: "./dir/a.txt" },
  { name: `longlink`, type: "symlink", linkname: longName, longNames: "gnu" },
  { name: "big256", data: "base-256 sized", base256Size: true },
  { name: "empty.txt", data: "" },
];

Deno.test("tar index: ustar prefix, PAX and GNU long names, links, base-256 sizes", async () => {
  const tar = writeTar(SAMPLE);
  const { entries, data } = await indexAndRead(tar);
  assert.deepEqual(entries.map((e) => [e.path, e.type]), [
    ["dir", "directory"],
    ["dir/a.txt", "file"],
    [prefixName, "file"],
    [longName, "file"],
    [`gnu/${longName}`, "file"],
    ["dir/link", "symlink"],
    ["dir/hard", "hardlink"],
    ["longlink", "symlink"],
    ["big256", "file"],
    ["empty.txt", "file"],
  ]);
  assert.equal(data.get("dir/a.txt"), "alpha");
  assert.equal(data.get(prefixName), "prefixed");
  assert.equal(data.get(longName), "pax named");
  assert.equal(data.get(`gnu/${longName}`), "gnu named");
  assert.equal(data.get("big256"), "base-256 sized");
  assert.equal(data.get("empty.txt"), "");
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.equal(byPath.get("dir/link")?.linkTarget, "a.txt");
  assert.equal(byPath.get("dir/hard")?.linkTarget, "dir/a.txt");
  assert.equal(byPath.get("longlink")?.linkTarget, longName);
  assert.equal(byPath.get("dir/hard")?.size, 0);
});

Deno.test("tar index: a PAX size record overrides the header size", async () => {
  const data = "0123456789";
  const header = writeTar([{ name: "f", data }]).subarray(0, 512);
  // Same entry with a lying size field (3) and a PAX header carrying the real one.
  const lying = header.slice();
  lying.set(new TextEncoder().encode("00000000003\0"), 124);
  let sum = 0;
  lying.fill(0x20, 148, 156);
  for (const byte of lying) sum += byte;
  lying.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
  const pax = writeTar([{ name: "PaxHeader", data: "11 size=10\n" }]).subarray(0, 1024);
  pax[156] = "x".charCodeAt(0);
  let paxSum = 0;
  pax.fill(0x20, 148, 156);
  for (const byte of pax.subarray(0, 512)) paxSum += byte;
  pax.set(new TextEncoder().encode(`${paxSum.toString(8).padStart(6, "0")}\0 `), 148);
  const body = new Uint8Array(512);
  body.set(new TextEncoder().encode(data));
  const tar = concat([pax, lying, body, new Uint8Array(1024)]);
  const { entries, data: contents } = await indexAndRead(tar);
  assert.equal(entries[0]?.size, 10);
  assert.equal(contents.get("f"), data);
});

Deno.test("tar index: names leaving the archive are input errors", async () => {
  for (
    const spec of [
      { name: "../escape.txt", data: "x" },
      { name: "/etc/passwd", data: "x" },
      { name: "a/../../b", data: "x" },
      { name: "hard", type: "hardlink", linkname: "../outside" },
    ] satisfies TarEntrySpec[]
  ) {
    await withTempFile(
      "archive.tar",
      writeTar([spec]),
      (path) => assertInputError(indexTarFile(path), /points outside the archive/),
    );
  }
});

Deno.test("tar index: truncated, non-tar, empty and missing files are one-line input errors", async () => {
  const tar = writeTar([{ name: "a.txt", data: "x".repeat(3000) }, { name: "b.txt", data: "b" }]);
  await withTempFile(
    "archive.tar",
    tar.subarray(0, 2000),
    (p) => assertInputError(indexTarFile(p), /truncated/),
  );
  await withTempFile(
    "archive.tar",
    tar.subarray(0, 300),
    (p) => assertInputError(indexTarFile(p), /truncated/),
  );
  // Cut exactly after the last entry: no end-of-archive marker.
  await withTempFile(
    "archive.tar",
    tar.subarray(0, tar.length - 1024),
    (p) => assertInputError(indexTarFile(p), /without the end-of-archive marker/),
  );
  await withTempFile(
    "archive.tar",
    new TextEncoder().encode("just some text, definitely not a tar archive\n".repeat(20)),
    (p) => assertInputError(indexTarFile(p), /is not a tar archive/),
  );
  const corrupt = tar.slice();
  corrupt[1024 + 3584] = 0x41; // scribble over b.txt's header
  await withTempFile(
    "archive.tar",
    corrupt,
    (p) => assertInputError(indexTarFile(p), /bad tar header checksum/),
  );
  await withTempFile(
    "archive.tar",
    new Uint8Array(0),
    (p) => assertInputError(indexTarFile(p), /is empty/),
  );
  await assertInputError(indexTarFile("/nonexistent/archive.tar"), /does not exist/);
  await using dir = await tempDir();
  await assertInputError(indexTarFile(dir.path), /is a directory/);
});

Deno.test("tar stream: same entries and bytes as the index, across chunk boundaries", async () => {
  const tar = writeTar(SAMPLE);
  const { entries, data } = await indexAndRead(tar);
  for (const chunkSize of [1, 511, 512, 4096, tar.length]) {
    const seen: Array<[string, string]> = [];
    for await (
      const { header, body } of parseTarStream(chunkedStream(tar, chunkSize), "sample.tar")
    ) {
      const bytes = await collectBytes(body);
      seen.push([header.path, header.type]);
      if (header.type === "file") assert.equal(text(bytes), data.get(header.path));
      else assert.equal(bytes.length, 0);
    }
    assert.deepEqual(seen, entries.map((e) => [e.path, e.type]));
  }
});

Deno.test("tar stream: unread and cancelled bodies are skipped", async () => {
  const tar = writeTar([
    { name: "skip-me", data: "s".repeat(5000) },
    { name: "cancel-me", data: "c".repeat(5000) },
    { name: "read-me", data: "payload" },
  ]);
  const seen: string[] = [];
  for await (const { header, body } of parseTarStream(chunkedStream(tar, 700), "t.tar")) {
    if (header.path === "cancel-me") {
      const reader = body.getReader();
      await reader.read();
      await reader.cancel();
    }
    if (header.path === "read-me") seen.push(text(await collectBytes(body)));
  }
  assert.deepEqual(seen, ["payload"]);
});

Deno.test("tar stream: truncation and escaping names are input errors", async () => {
  const tar = writeTar([{ name: "a", data: "x".repeat(3000) }]);
  const drain = async (bytes: Uint8Array): Promise<void> => {
    for await (const { body } of parseTarStream(chunkedStream(bytes, 1000), "cut.tar")) {
      await collectBytes(body);
    }
  };
  await assertInputError(drain(tar.subarray(0, 2000)), /truncated/);
  await assertInputError(drain(tar.subarray(0, tar.length - 1024)), /end-of-archive marker/);
  await assertInputError(drain(writeTar([{ name: "../x", data: "x" }])), /outside the archive/);
  await assertInputError(drain(new TextEncoder().encode("x".repeat(600))), /not a tar archive/);
});

Deno.test("tar paths: normalisation and symlink resolution", () => {
  assert.equal(normalizeEntryPath("./a//b/./c/"), "a/b/c");
  assert.equal(normalizeEntryPath("a/../b"), "b");
  assert.equal(normalizeEntryPath("./"), "");
  assert.equal(normalizeEntryPath("../a"), undefined);
  assert.equal(normalizeEntryPath("/a"), undefined);
  assert.equal(resolveSymlinkTarget("id/layer.tar", "../abc.tar"), "abc.tar");
  assert.equal(resolveSymlinkTarget("layer.tar", "../abc.tar"), undefined);
  assert.equal(resolveSymlinkTarget("a/b", "/etc/passwd"), undefined);
});

Deno.test("entry table: follows symlink and hardlink chains, reports broken ones", () => {
  const table = new EntryTable("t.tar");
  const add = (path: string, type: TarIndexEntry["type"], size = 0, linkTarget?: string): void =>
    table.add({
      path,
      type,
      size,
      headerOffset: 0,
      ...(linkTarget === undefined ? {} : { linkTarget }),
    });
  add("abc.tar", "file", 42);
  add("id/layer.tar", "symlink", 0, "../abc.tar");
  add("id2/layer.tar", "symlink", 0, "../id/layer.tar");
  add("hard", "hardlink", 0, "id2/layer.tar");
  add("escape", "symlink", 0, "../../etc/passwd");
  add("loop-a", "symlink", 0, "loop-b");
  add("loop-b", "symlink", 0, "loop-a");
  add("dir", "directory");
  assert.deepEqual(table.paths(), ["abc.tar"]);
  assert.equal(table.resolve("./hard"), "abc.tar");
  assert.equal(table.size("id2/layer.tar"), 42);
  assert.equal(table.has("escape"), false);
  assert.equal(table.has("dir"), false);
  assert.throws(() => table.resolve("escape"), /points outside the archive/);
  assert.throws(() => table.resolve("loop-a"), /link loop/);
  assert.throws(() => table.resolve("missing"), /not in the archive/);
  assert.throws(() => table.size("dir"), /is a directory/);
  // A later entry with the same path replaces the earlier one.
  add("abc.tar", "file", 7);
  assert.equal(table.size("id/layer.tar"), 7);
});

Deno.test("tar index and stream: archives written by GNU tar (gnu and posix formats)", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const tree = `${dir}/tree`;
  const deep = `${"nested-directory-name/".repeat(7)}${"long-file-name-".repeat(8)}.txt`;
  await Deno.mkdir(`${tree}/${deep.slice(0, deep.lastIndexOf("/"))}`, { recursive: true });
  await Deno.writeTextFile(`${tree}/${deep}`, "deep file");
  await Deno.writeTextFile(`${tree}/plain.txt`, "plain");
  await Deno.link(`${tree}/plain.txt`, `${tree}/hardlinked.txt`);
  await Deno.symlink(deep, `${tree}/long-symlink`);
  for (const format of ["gnu", "posix"]) {
    const archive = `${dir}/${format}.tar`;
    const tar = await new Deno.Command("tar", {
      args: [`--format=${format}`, "--sort=name", "-cf", archive, "-C", tree, "."],
    }).output();
    assert.ok(tar.success, new TextDecoder().decode(tar.stderr));
    const bytes = await Deno.readFile(archive);
    const { entries, data } = await indexAndRead(bytes);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.equal(data.get(deep), "deep file", format);
    assert.equal(byPath.get("long-symlink")?.linkTarget, deep, format);
    const links = ["hardlinked.txt", "plain.txt"].map((p) => byPath.get(p)?.type).sort();
    assert.deepEqual(links, ["file", "hardlink"], format);
    const table = new EntryTable("t");
    for (const entry of entries) table.add(entry);
    assert.equal(table.resolve("long-symlink"), deep);
    assert.equal(table.size("hardlinked.txt"), 5);
    const streamed: string[] = [];
    for await (const { header, body } of parseTarStream(chunkedStream(bytes, 4096), archive)) {
      await collectBytes(body);
      streamed.push(header.path);
    }
    assert.deepEqual(streamed, entries.map((e) => e.path), format);
  }
});
