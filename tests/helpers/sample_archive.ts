/**
 * Writes a sample image as a legacy `docker save` archive (the layout before Docker 25: one
 * directory per layer with `VERSION`, `json` and `layer.tar`, a `<config-hex>.json`,
 * `manifest.json` and `repositories`) with no external tools, for the demo and for tests on a
 * machine that only has Deno. Everything is deterministic: the same options give the same bytes.
 *
 * ```ts
 * const sample = await writeSampleDockerArchive("/tmp/sample.tar", { randomBytes: 1 << 20 });
 * sample.configDigest; // sha256:…
 * ```
 *
 * @module
 */

import { createCipheriv, createHash } from "node:crypto";
import { PusherError } from "../../lib/errors.ts";

/** Options for {@link writeSampleDockerArchive}. */
export interface SampleArchiveOptions {
  /** Number of layers, at least 1; 3 by default. */
  layers?: number;
  /** Size of the pseudo-random file in the last layer; 256 KiB by default, 0 for none. */
  randomBytes?: number;
  /**
   * Size of a compressible text file (seeded pseudo-random words; gzip makes it about a quarter
   * of its size, slowly enough that compressing it takes real CPU time) in the last layer; 0 (none)
   * by default.
   */
  textBytes?: number;
  /** Seed of all generated content; 1 by default. */
  seed?: number;
  /** Repository and tag recorded in the archive; `sample/app:latest` by default. */
  name?: string;
}

/** What {@link writeSampleDockerArchive} wrote. */
export interface SampleArchive {
  /** The archive file. */
  path: string;
  /** The `RepoTags` entry. */
  repoTag: string;
  /** Digest of the config JSON. */
  configDigest: string;
  /** sha256 of each uncompressed layer tar, in order (the config's `rootfs.diff_ids`). */
  diffIds: string[];
  /** Size of each layer tar, in order. */
  layerSizes: number[];
  /** Size of the archive. */
  size: number;
}

/** A tar entry whose data can be produced more than once (to hash it, then to write it). */
interface TarEntry {
  name: string;
  type: "file" | "directory";
  size: number;
  data?: () => Iterable<Uint8Array>;
}

const MTIME = 1700000000;
const CREATED = new Date(MTIME * 1000).toISOString().replace(".000", "");
const CHUNK = 1 << 20;
const encoder = new TextEncoder();

function writeField(block: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > length) {
    throw new PusherError("internal", `tar field longer than ${length} bytes: ${value}`);
  }
  block.set(bytes, offset);
}

function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  writeField(block, offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
}

/** A ustar header block: regular file or directory, root-owned, fixed mtime. */
function ustarHeader(entry: TarEntry): Uint8Array {
  const block = new Uint8Array(512);
  writeField(block, 0, 100, entry.name);
  writeOctal(block, 100, 8, entry.type === "directory" ? 0o755 : 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, entry.size);
  writeOctal(block, 136, 12, MTIME);
  block.fill(0x20, 148, 156);
  writeField(block, 156, 1, entry.type === "directory" ? "5" : "0");
  writeField(block, 257, 8, "ustar\u000000");
  writeField(block, 265, 32, "root");
  writeField(block, 297, 32, "root");
  const checksum = block.reduce((sum, byte) => sum + byte, 0);
  writeField(block, 148, 8, `${checksum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

function padding(size: number): number {
  return (512 - (size % 512)) % 512;
}

function tarSize(entries: readonly TarEntry[]): number {
  return entries.reduce((sum, entry) => sum + 512 + entry.size + padding(entry.size), 1024);
}

function* tarChunks(entries: readonly TarEntry[]): Generator<Uint8Array> {
  for (const entry of entries) {
    yield ustarHeader(entry);
    let written = 0;
    for (const chunk of entry.data?.() ?? []) {
      written += chunk.length;
      yield chunk;
    }
    if (written !== entry.size) {
      throw new PusherError(
        "internal",
        `tar entry ${entry.name}: ${written} bytes written, ${entry.size} declared`,
      );
    }
    if (padding(entry.size) > 0) yield new Uint8Array(padding(entry.size));
  }
  yield new Uint8Array(1024);
}

function directory(name: string): TarEntry {
  return { name, type: "directory", size: 0 };
}

function file(name: string, content: Uint8Array | string): TarEntry {
  const bytes = typeof content === "string" ? encoder.encode(content) : content;
  return { name, type: "file", size: bytes.length, data: () => [bytes] };
}

/** `size` pseudo-random bytes in chunks: the AES-128-CTR keystream of a key derived from the seed. */
function* keystream(size: number, seed: number): Generator<Uint8Array> {
  const key = createHash("sha256").update(`sample-archive:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, new Uint8Array(16));
  for (let offset = 0; offset < size; offset += CHUNK) {
    yield new Uint8Array(cipher.update(new Uint8Array(Math.min(CHUNK, size - offset))));
  }
}

/** A file of pseudo-random bytes. */
function randomFile(name: string, size: number, seed: number): TarEntry {
  return { name, type: "file", size, data: () => keystream(size, seed) };
}

/** The words a text file is made of, each with its trailing space. */
const WORDS = [
  "usr",
  "lib",
  "share",
  "doc",
  "bin",
  "etc",
  "linux",
  "gnu",
  "x86_64",
  "so",
  "conf",
  "locale",
  "python3",
  "site-packages",
  "include",
  "man\n",
].map((word) => encoder.encode(`${word} `));

/** A file of pseudo-random words: each keystream byte picks a word, each chunk is cut to size. */
function textFile(name: string, size: number, seed: number): TarEntry {
  return {
    name,
    type: "file",
    size,
    data: function* (): Generator<Uint8Array> {
      for (const random of keystream(size, seed)) {
        const chunk = new Uint8Array(random.length);
        let filled = 0;
        for (let pick = 0; filled < chunk.length; pick++) {
          const word = WORDS[(random[pick] ?? 0) % WORDS.length] as Uint8Array;
          const count = Math.min(word.length, chunk.length - filled);
          chunk.set(word.subarray(0, count), filled);
          filled += count;
        }
        yield chunk;
      }
    },
  };
}

function sha256Hex(chunks: Iterable<Uint8Array>): string {
  const hash = createHash("sha256");
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest("hex");
}

function layerEntries(
  index: number,
  count: number,
  options: { randomBytes: number; textBytes: number; seed: number },
): TarEntry[] {
  const { randomBytes, textBytes, seed } = options;
  const entries: TarEntry[] = [];
  if (index === 0) {
    entries.push(
      directory("etc/"),
      file("etc/os-release", 'NAME="Sample"\nID=sample\nVERSION_ID="1"\n'),
      file("hello.txt", `Hello from a sample image (seed ${seed}).\n`),
    );
  }
  const lines = Array.from(
    { length: 20 + index },
    (_, line) => `layer ${index + 1} of ${count}, seed ${seed}, line ${line + 1}\n`,
  );
  entries.push(
    directory(`layer${index + 1}/`),
    file(`layer${index + 1}/README.txt`, lines.join("")),
  );
  if (index === count - 1 && randomBytes > 0) {
    entries.push(directory("data/"), randomFile("data/random.bin", randomBytes, seed));
  }
  if (index === count - 1 && textBytes > 0) {
    entries.push(directory("text/"), textFile("text/words.txt", textBytes, seed));
  }
  return entries;
}

function splitName(name: string): [string, string] {
  const colon = name.lastIndexOf(":");
  if (colon <= name.lastIndexOf("/")) return [name, "latest"];
  return [name.slice(0, colon), name.slice(colon + 1)];
}

async function writeChunks(path: string, chunks: Iterable<Uint8Array>): Promise<void> {
  using out = await Deno.open(path, { write: true, create: true, truncate: true });
  for (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.length) offset += await out.write(chunk.subarray(offset));
  }
}

/**
 * Writes a legacy `docker save` archive to `path`: `layers` layers of small text files, the last
 * one also holding `randomBytes` seeded pseudo-random bytes (and `textBytes` of words), a config whose `rootfs.diff_ids` are
 * the layer tars' digests, `manifest.json` and `repositories`. Entries are in lexical order with
 * a fixed mtime, as Docker wrote them. Layer data is generated twice (hash, then write), so memory
 * stays small for large samples.
 */
export async function writeSampleDockerArchive(
  path: string,
  options: SampleArchiveOptions = {},
): Promise<SampleArchive> {
  const {
    layers = 3,
    randomBytes = 256 * 1024,
    textBytes = 0,
    seed = 1,
    name = "sample/app:latest",
  } = options;
  if (!Number.isSafeInteger(layers) || layers < 1) {
    throw new PusherError("usage", `sample archive needs at least one layer, got ${layers}`);
  }
  const [repository, tag] = splitName(name);
  const layerTars = Array.from(
    { length: layers },
    (_, i) => layerEntries(i, layers, { randomBytes, textBytes, seed }),
  );
  const diffIds = layerTars.map((entries) => `sha256:${sha256Hex(tarChunks(entries))}`);
  const layerIds: string[] = [];
  for (const diffId of diffIds) {
    layerIds.push(createHash("sha256").update(`${layerIds.at(-1) ?? ""} ${diffId}`).digest("hex"));
  }
  const config = JSON.stringify({
    architecture: "amd64",
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: ["/bin/sh"],
    },
    created: CREATED,
    history: diffIds.map((_, i) => ({ created: CREATED, created_by: `sample layer ${i + 1}` })),
    os: "linux",
    rootfs: { type: "layers", diff_ids: diffIds },
  });
  const configHex = sha256Hex([encoder.encode(config)]);
  const topId = layerIds.at(-1) ?? "";

  const roots = new Map<string, TarEntry[]>();
  roots.set(`${configHex}.json`, [file(`${configHex}.json`, config)]);
  layerIds.forEach((id, i) => {
    const parent = i > 0 ? { parent: layerIds[i - 1] } : {};
    const v1 = JSON.stringify({ id, ...parent, created: CREATED, os: "linux" });
    const entries = layerTars[i] ?? [];
    roots.set(id, [
      directory(`${id}/`),
      file(`${id}/VERSION`, "1.0"),
      file(`${id}/json`, v1),
      {
        name: `${id}/layer.tar`,
        type: "file",
        size: tarSize(entries),
        data: () => tarChunks(entries),
      },
    ]);
  });
  const manifest = [{
    Config: `${configHex}.json`,
    RepoTags: [name],
    Layers: layerIds.map((id) => `${id}/layer.tar`),
  }];
  roots.set("manifest.json", [file("manifest.json", JSON.stringify(manifest))]);
  roots.set("repositories", [
    file("repositories", JSON.stringify({ [repository]: { [tag]: topId } })),
  ]);
  const entries = [...roots.keys()].sort().flatMap((key) => roots.get(key) ?? []);

  await writeChunks(path, tarChunks(entries));
  return {
    path,
    repoTag: name,
    configDigest: `sha256:${configHex}`,
    diffIds,
    layerSizes: layerTars.map(tarSize),
    size: tarSize(entries),
  };
}
