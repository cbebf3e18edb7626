/**
 * Builds the benchmark's image: a skopeo-style docker-archive (`manifest.json`, `<hex>.json`
 * config, one `<hex>.tar` per layer) made of real files from this machine (shared libraries
 * first, then any other file under the source directories) plus pseudo-random, incompressible
 * bytes, written with GNU tar. The archive and a copy of its layer tars (for uploads without our
 * client) are kept in a cache directory and reused while the description file says they were
 * built from the same plan and the files are still there.
 *
 * @module
 */

import { createCipheriv, createHash } from "node:crypto";
import { join } from "node:path";

/** What to put in the archive. */
export interface ArchivePlan {
  /** Bytes of real files (approximate: whole files are taken until the sum reaches it). */
  realBytes: number;
  /** Bytes of pseudo-random data, in a layer of its own. */
  randomBytes: number;
  /** Directories the real files come from, in order of preference. */
  sources: readonly string[];
}

/** What a layer holds. */
export type LayerKind = "real" | "random" | "small";

/** One layer of a built archive. */
export interface BuiltLayer {
  /** What the layer holds. */
  kind: LayerKind;
  /** Described in words. */
  label: string;
  /** Size of the layer tar. */
  size: number;
  /** sha256 of the layer tar. */
  diffId: string;
  /** Its entry in the archive (`<hex>.tar`). */
  entry: string;
  /** A copy of the layer tar beside the archive, for uploads without our client. */
  path: string;
}

/** A built archive. */
export interface BuiltArchive {
  /** The docker-archive file. */
  path: string;
  /** What it was built from. */
  plan: ArchivePlan;
  /** Its size in bytes. */
  size: number;
  /** The image's layers, bottom first. */
  layers: BuiltLayer[];
  /** Digest of the config. */
  configDigest: string;
  /** Bytes of real files in it. */
  realBytes: number;
  /** Bytes of random data in it. */
  randomBytes: number;
}

/** Shares of the real bytes per layer, largest first; images rarely have one giant layer. */
const REAL_LAYER_SHARES: readonly number[] = [0.45, 0.3, 0.15, 0.1];
const DESCRIPTION = "archive.json";
const MTIME = 1_700_000_000;
const CHUNK = 1 << 20;

/** A file picked for the archive. */
interface Picked {
  path: string;
  size: number;
}

/**
 * Regular files under `root`, depth first in name order, each inode once (`seen` holds
 * `dev:ino` of the files already taken); unreadable directories are skipped.
 */
async function* walk(root: string, seen: Set<string>): AsyncGenerator<Picked> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(root));
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(root, entry.name);
    if (entry.isDirectory) {
      yield* walk(path, seen);
    } else if (entry.isFile) {
      const info = await Deno.lstat(path).catch(() => undefined);
      if (info === undefined || info.size === 0) continue;
      const inode = `${info.dev}:${info.ino}`;
      if (seen.has(inode)) continue;
      seen.add(inode);
      yield { path, size: info.size };
    }
  }
}

/** Whether a file name is a shared library (`libz.so`, `libz.so.1.3`). */
export function isSharedLibrary(path: string): boolean {
  return /\.so(\.[0-9.]+)?$/.test(path);
}

/** Picks files until their sizes add up to `bytes`: shared libraries first, then anything. */
async function pickFiles(sources: readonly string[], bytes: number): Promise<Picked[]> {
  const libraries: Picked[] = [];
  const others: Picked[] = [];
  const seen = new Set<string>();
  for (const source of sources) {
    for await (const file of walk(source, seen)) {
      (isSharedLibrary(file.path) ? libraries : others).push(file);
    }
  }
  const picked: Picked[] = [];
  let total = 0;
  for (const file of [...libraries, ...others]) {
    if (total >= bytes) break;
    picked.push(file);
    total += file.size;
  }
  if (total < bytes) {
    throw new Error(
      `only ${total} bytes of readable files under ${sources.join(", ")}; ${bytes} wanted ` +
        "(lower --size or add sources)",
    );
  }
  return picked;
}

/** Splits files into groups whose sizes follow `shares` of the total, in order. */
export function splitByShares<T extends { size: number }>(
  files: readonly T[],
  shares: readonly number[],
): T[][] {
  const total = files.reduce((sum, file) => sum + file.size, 0);
  const groups: T[][] = shares.map(() => []);
  let group = 0;
  let filled = 0;
  let boundary = (shares[0] ?? 1) * total;
  for (const file of files) {
    while (group < shares.length - 1 && filled >= boundary) {
      group++;
      boundary += (shares[group] ?? 0) * total;
    }
    (groups[group] as T[]).push(file);
    filled += file.size;
  }
  return groups.filter((members) => members.length > 0);
}

/** Runs a command; throws with its stderr when it fails. */
async function run(command: string, args: string[], cwd?: string): Promise<void> {
  const output = await new Deno.Command(command, {
    args,
    stdout: "null",
    stderr: "piped",
    ...(cwd !== undefined ? { cwd } : {}),
  }).output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
}

/** GNU tar options that make the same input give the same bytes. */
const TAR_STABLE = [
  "--format=gnu",
  "--owner=0",
  "--group=0",
  "--numeric-owner",
  `--mtime=@${MTIME}`,
];

/** sha256 and size of a file, read in 1 MiB pieces. */
async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  using file = await Deno.open(path);
  const buffer = new Uint8Array(CHUNK);
  for (;;) {
    const count = await file.read(buffer);
    if (count === null) break;
    hash.update(buffer.subarray(0, count));
    size += count;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/** Writes `size` pseudo-random bytes (AES-128-CTR keystream of a fixed key) to `path`. */
async function writeRandomFile(path: string, size: number): Promise<void> {
  const key = createHash("sha256").update("docker-image-pusher-bench").digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, new Uint8Array(16));
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const zeros = new Uint8Array(CHUNK);
  for (let offset = 0; offset < size; offset += CHUNK) {
    const piece = cipher.update(zeros.subarray(0, Math.min(CHUNK, size - offset)));
    let written = 0;
    while (written < piece.length) written += await file.write(piece.subarray(written));
  }
}

/** Writes a layer tar of absolute file paths (stored relative to `/`). */
async function tarFiles(target: string, files: readonly Picked[], listPath: string): Promise<void> {
  const list = files.map((file) => file.path.replace(/^\/+/, "")).join("\0") + "\0";
  await Deno.writeTextFile(listPath, list);
  await run("tar", [
    ...TAR_STABLE,
    "--create",
    "--file",
    target,
    "--directory",
    "/",
    "--null",
    "--no-recursion",
    "--files-from",
    listPath,
  ]);
}

/** A stable name for a plan, used as the cache sub-directory. */
export function planKey(plan: ArchivePlan): string {
  const text = JSON.stringify([plan.realBytes, plan.randomBytes, plan.sources, REAL_LAYER_SHARES]);
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** Returns the cached archive for `plan` under `cacheRoot`, building it first when needed. */
export async function ensureArchive(
  cacheRoot: string,
  plan: ArchivePlan,
  log: (line: string) => void,
): Promise<BuiltArchive> {
  const dir = join(cacheRoot, `archive-${planKey(plan)}`);
  const description = join(dir, DESCRIPTION);
  try {
    const built = JSON.parse(await Deno.readTextFile(description)) as BuiltArchive;
    const sizes = await Promise.all(
      [built.path, ...built.layers.map((layer) => layer.path)].map(async (path) =>
        (await Deno.stat(path)).size
      ),
    );
    const expected = [built.size, ...built.layers.map((layer) => layer.size)];
    if (sizes.every((size, index) => size === expected[index])) return built;
  } catch {
    // not built yet, or incomplete: build it again
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const gigabytes = ((plan.realBytes + plan.randomBytes) / 1e9).toFixed(2);
  log(`building a ${gigabytes} GB archive in ${dir}`);
  const built = await buildArchive(dir, plan);
  await Deno.writeTextFile(description, JSON.stringify(built, null, 2));
  return built;
}

/** Builds the archive in `dir` (see the module doc). */
async function buildArchive(dir: string, plan: ArchivePlan): Promise<BuiltArchive> {
  const staging = join(dir, "staging");
  const image = join(dir, "image");
  await Deno.mkdir(staging, { recursive: true });
  await Deno.mkdir(image, { recursive: true });
  const layerFiles: { kind: LayerKind; label: string; path: string }[] = [];
  let realBytes = 0;
  if (plan.realBytes > 0) {
    const files = await pickFiles(plan.sources, plan.realBytes);
    realBytes = files.reduce((sum, file) => sum + file.size, 0);
    const groups = splitByShares(files, REAL_LAYER_SHARES);
    for (const [index, group] of groups.entries()) {
      const path = join(staging, `real-${index}.tar`);
      await tarFiles(path, group, join(staging, `real-${index}.list`));
      const bytes = group.reduce((sum, file) => sum + file.size, 0);
      layerFiles.push({ kind: "real", label: `${group.length} real files, ${bytes} bytes`, path });
    }
  }
  if (plan.randomBytes > 0) {
    const data = join(staging, "random");
    await Deno.mkdir(data);
    await writeRandomFile(join(data, "data.bin"), plan.randomBytes);
    const path = join(staging, "random.tar");
    await run("tar", [...TAR_STABLE, "--create", "--file", path, "--directory", data, "data.bin"]);
    layerFiles.push({ kind: "random", label: `${plan.randomBytes} random bytes`, path });
  }
  const small = join(staging, "small");
  await Deno.mkdir(small);
  await Deno.writeTextFile(join(small, "app.conf"), "# benchmark image\nmode=bench\n".repeat(64));
  const smallTar = join(staging, "small.tar");
  await run("tar", [
    ...TAR_STABLE,
    "--create",
    "--file",
    smallTar,
    "--directory",
    small,
    "app.conf",
  ]);
  layerFiles.push({ kind: "small", label: "one small file", path: smallTar });

  const layers: BuiltLayer[] = [];
  const names: string[] = [];
  for (const layer of layerFiles) {
    const { digest, size } = await hashFile(layer.path);
    const name = `${digest.slice("sha256:".length)}.tar`;
    const path = join(image, name);
    await Deno.rename(layer.path, path);
    layers.push({ kind: layer.kind, label: layer.label, size, diffId: digest, entry: name, path });
    names.push(name);
  }
  const config = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    created: new Date(MTIME * 1000).toISOString(),
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map((layer) => ({
      created: new Date(MTIME * 1000).toISOString(),
      created_by: `bench: ${layer.label}`,
    })),
  });
  const configHex = createHash("sha256").update(config).digest("hex");
  await Deno.writeTextFile(join(image, `${configHex}.json`), config);
  await Deno.writeTextFile(
    join(image, "manifest.json"),
    JSON.stringify([{
      Config: `${configHex}.json`,
      RepoTags: ["bench/app:latest"],
      Layers: names,
    }]),
  );
  const path = join(dir, "image.tar");
  await run("tar", [
    ...TAR_STABLE,
    "--create",
    "--file",
    path,
    "--directory",
    image,
    "manifest.json",
    `${configHex}.json`,
    ...names,
  ]);
  await Deno.remove(staging, { recursive: true });
  const info = await Deno.stat(path);
  return {
    path,
    plan,
    size: info.size,
    layers,
    configDigest: `sha256:${configHex}`,
    realBytes,
    randomBytes: plan.randomBytes,
  };
}
