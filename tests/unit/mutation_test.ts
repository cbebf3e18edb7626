/**
 * Seeded mutations of good archives (every fixture layout): flipped bytes anywhere, in a tar
 * header or in an entry's data; cut lengths; edited JSON documents (keys dropped, types changed,
 * digests and sizes altered, text cut). Each case is pushed in-process to the spec-following
 * registry and must end as a verified push (manifest, config and every layer read back and
 * checked against their digests and the config's diff_ids) or as a typed error — never a crash,
 * a hang (each case has a time limit) or a tag left by a failed push. A handful of the cases
 * also go through the CLI into real Distribution and are pulled back with skopeo.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { PusherError } from "../../lib/errors.ts";
import { indexTarFile } from "../../lib/image/tar_index.ts";
import { openRandomAccessArchive } from "../../lib/image/random_access.ts";
import { DEFAULT_PUSH_SETTINGS, type PushOptions } from "../../lib/options.ts";
import { push, type PushResult } from "../../lib/push/push.ts";
import { type CliRun, runPusher } from "../helpers/cli.ts";
import { type LayoutName, sharedFixtures, writeTar } from "../helpers/fixtures.ts";
import { type MemoryRegistry, startMemoryRegistry } from "../helpers/memory_registry.ts";
import { pullAndVerify, type PullOptions } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const CASE_LIMIT_MS = 20_000;
const CASES_PER_LAYOUT = 12;
const LAYOUTS: readonly LayoutName[] = [
  "docker-archive",
  "oci-archive",
  "docker-legacy",
  "docker-v25",
  "docker-containerd",
  "oci-multi-platform",
  "docker-legacy-gzip",
  "docker-archive-zstd",
];
/** Layouts stored as a plain tar (the others are one gzip or zstd stream). */
const PLAIN: ReadonlySet<LayoutName> = new Set(
  LAYOUTS.filter((layout) => !layout.endsWith("-gzip") && !layout.endsWith("-zstd")),
);
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A small seeded generator (mulberry32). */
function generator(seed: number): { next: () => number; int: (limit: number) => number } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return { next, int: (limit) => Math.floor(next() * limit) };
}

type Random = ReturnType<typeof generator>;

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function flip(bytes: Uint8Array, at: number, random: Random): void {
  bytes[at] = (bytes[at] ?? 0) ^ (1 + random.int(255));
}

/** Edits one JSON value somewhere inside `value`; returns a description. */
function editJson(value: unknown, random: Random): string {
  const containers: Array<Record<string, unknown> | unknown[]> = [];
  const walk = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    containers.push(node as Record<string, unknown> | unknown[]);
    for (const child of Object.values(node)) walk(child);
  };
  walk(value);
  const container = containers[random.int(containers.length)];
  if (container === undefined) return "nothing to edit";
  const keys = Array.isArray(container) ? container.map((_, i) => i) : Object.keys(container);
  if (keys.length === 0) return "empty container";
  const key = keys[random.int(keys.length)] as string & number;
  const old = (container as Record<string, unknown>)[key];
  const action = random.int(6);
  const set = (next: unknown): void => {
    (container as Record<string, unknown>)[key] = next;
  };
  if (action === 0) {
    if (Array.isArray(container)) container.splice(key, 1);
    else delete container[key];
    return `dropped ${key}`;
  }
  if (action === 1) {
    set(typeof old === "number" ? String(old) : typeof old === "string" ? 7 : "x");
    return `retyped ${key}`;
  }
  if (action === 2 && typeof old === "string" && old.length > 0) {
    const at = random.int(old.length);
    set(old.slice(0, at) + (old[at] === "0" ? "1" : "0") + old.slice(at + 1));
    return `changed a character of ${key}`;
  }
  if (action === 3 && typeof old === "number") {
    set(old + (random.next() < 0.5 ? 1 : -1));
    return `changed number ${key}`;
  }
  if (action === 4) {
    set(Array.isArray(old) ? [] : {});
    return `emptied ${key}`;
  }
  set(null);
  return `nulled ${key}`;
}

interface Mutated {
  bytes: Uint8Array;
  description: string;
}

/** One seeded mutation of the archive at `path`. */
async function mutate(layout: LayoutName, path: string, random: Random): Promise<Mutated> {
  const original = await Deno.readFile(path);
  const bytes = original.slice();
  const choice = random.int(PLAIN.has(layout) ? 5 : 2);
  if (choice === 0) {
    const count = 1 + random.int(4);
    for (let i = 0; i < count; i++) flip(bytes, random.int(bytes.length), random);
    return { bytes, description: `${count} random byte flips` };
  }
  if (choice === 1) {
    const length = random.int(bytes.length);
    return { bytes: bytes.subarray(0, length), description: `cut to ${length} bytes` };
  }
  const index = await indexTarFile(path);
  const entry = index.entries[random.int(index.entries.length)];
  if (entry === undefined) return { bytes, description: "no entries" };
  if (choice === 2) {
    const at = Math.max(0, entry.dataOffset - 512) + random.int(512);
    flip(bytes, at, random);
    return { bytes, description: `flipped header byte ${at} of ${entry.path}` };
  }
  if (choice === 3 && entry.size > 0) {
    const at = entry.dataOffset + random.int(entry.size);
    flip(bytes, at, random);
    return { bytes, description: `flipped data byte ${at} of ${entry.path}` };
  }
  const archive = await openRandomAccessArchive(path);
  const entries = new Map<string, Uint8Array>();
  const documents: string[] = [];
  for (const name of archive.paths()) {
    const data = new Uint8Array(await new Response(archive.openEntry(name)).arrayBuffer());
    entries.set(name, data);
    if (data.length < 64 * 1024 && (data[0] === 0x7b || data[0] === 0x5b)) documents.push(name);
  }
  const name = documents[random.int(documents.length)];
  const text = name === undefined ? undefined : entries.get(name);
  if (name === undefined || text === undefined) return { bytes, description: "no JSON" };
  let edited: string;
  let description: string;
  try {
    const value: unknown = JSON.parse(decoder.decode(text));
    description = editJson(value, random);
    edited = JSON.stringify(value);
  } catch {
    description = "cut the text";
    edited = decoder.decode(text).slice(0, random.int(text.length));
  }
  if (random.next() < 0.2) {
    edited = edited.slice(0, random.int(edited.length));
    description += ", then cut the text";
  }
  entries.set(name, encoder.encode(edited));
  const tar = writeTar([...entries].map(([entryName, data]) => ({ name: entryName, data })));
  return { bytes: tar, description: `${name}: ${description}` };
}

/** The tar inside a layer blob: gunzipped, or as it is (the fixtures hold gzip and plain layers). */
function decompress(blob: Uint8Array): Uint8Array {
  return blob[0] === 0x1f && blob[1] === 0x8b ? gunzipSync(blob) : blob;
}

interface Descriptor {
  digest: string;
  size: number;
}

function json(bytes: Uint8Array | undefined, what: string): Record<string, unknown> {
  assert.ok(bytes, `${what} is stored`);
  return JSON.parse(decoder.decode(bytes)) as Record<string, unknown>;
}

/** Reads an image manifest back from the registry and checks config and layers. */
function verifyImage(registry: MemoryRegistry, repository: string, digest: string): void {
  const stored = registry.manifest(repository, digest);
  assert.ok(stored, `manifest ${digest} is stored`);
  assert.equal(sha256(stored.bytes), digest);
  const manifest = json(stored.bytes, "manifest");
  if (Array.isArray(manifest.manifests)) {
    for (const child of manifest.manifests as Descriptor[]) {
      verifyImage(registry, repository, child.digest);
    }
    return;
  }
  const config = manifest.config as Descriptor;
  const configBytes = registry.blob(config.digest);
  assert.ok(configBytes && registry.hasBlob(repository, config.digest), "config is there");
  assert.equal(sha256(configBytes), config.digest);
  const diffIds = (json(configBytes, "config").rootfs as { diff_ids: string[] }).diff_ids;
  const layers = manifest.layers as Descriptor[];
  assert.equal(layers.length, diffIds.length);
  layers.forEach((layer, i) => {
    const blob = registry.blob(layer.digest);
    assert.ok(blob && registry.hasBlob(repository, layer.digest), `layer ${i} is there`);
    assert.equal(sha256(blob), layer.digest);
    assert.equal(blob.length, layer.size);
    assert.equal(sha256(decompress(blob)), diffIds[i], `layer ${i} matches its diff_id`);
  });
}

function options(file: string, target: string): PushOptions {
  return {
    ...DEFAULT_PUSH_SETTINGS,
    file,
    targets: [target],
    timeoutSeconds: 30,
    stallTimeoutSeconds: 5,
    retryAttempts: 0,
    skipTls: false,
    caCertFiles: [],
    dryRun: false,
    forceUpload: false,
    noCache: true,
  };
}

interface CaseResult {
  layout: LayoutName;
  description: string;
  path: string;
  outcome: "pushed" | string;
}

/** Pushes `file` in-process to `target` with a time limit. */
async function pushWithin(
  file: string,
  target: string,
  image: string | undefined,
): Promise<PushResult> {
  const run = options(file, target);
  if (image !== undefined) run.image = image;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("hang")), CASE_LIMIT_MS);
  try {
    return await push(run, { signal: controller.signal });
  } catch (error) {
    assert.equal(controller.signal.aborted, false, `${file} hung`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Pushes `file` through the CLI into Distribution as `target` (host/repository:tag). */
async function pushThroughCli(
  file: string,
  target: string,
  image: string | undefined,
): Promise<CliRun> {
  const args = ["-f", file, "-r", `http://${target}`, "--quiet"];
  if (image !== undefined) args.push("--image", image);
  return await runPusher(args);
}

Deno.test("mutations: a mutated archive is refused with a typed error, or pushes the undamaged image and pulls back intact", async () => {
  const fixtures = await sharedFixtures();
  await using dir = await tempDir("mutation-");
  await using registry = startMemoryRegistry();
  const results: CaseResult[] = [];
  // What each undamaged fixture pushes: a mutation that is accepted must push the same image.
  const intact = new Map<LayoutName, string>();
  for (const layout of LAYOUTS) {
    const fixture = fixtures[layout];
    const target = `http://${registry.host}/mutation/original-${layout}:1`;
    intact.set(layout, (await pushWithin(fixture.path, target, fixture.choose)).digest);
  }
  let number = 0;
  for (const layout of LAYOUTS) {
    const fixture = fixtures[layout];
    for (let i = 0; i < CASES_PER_LAYOUT; i++) {
      number++;
      const random = generator(1000 * number + 17);
      const mutated = await mutate(layout, fixture.path, random);
      const path = `${dir.path}/case${number}.tar`;
      await Deno.writeFile(path, mutated.bytes);
      const repository = `mutation/case${number}`;
      const what = `case ${number} (${layout}: ${mutated.description})`;
      let outcome: string;
      try {
        const result = await pushWithin(
          path,
          `http://${registry.host}/${repository}:1`,
          fixture.choose,
        );
        verifyImage(registry, repository, result.digest);
        assert.equal(registry.manifest(repository, "1")?.bytes.length, result.size);
        assert.equal(result.digest, intact.get(layout), `${what} pushed a different image`);
        outcome = "pushed";
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        assert.ok(error instanceof PusherError, `${what} crashed: ${String(error)}`);
        assert.notEqual(error.kind, "internal", `${what}: ${error.message}`);
        assert.doesNotMatch(error.message, /\n/, `${what}: one line`);
        assert.deepEqual(registry.tags(repository), [], `${what} left a tag`);
        outcome = error.kind;
      }
      results.push({ layout, description: mutated.description, path, outcome });
    }
  }
  const tally: Record<string, number> = {};
  for (const result of results) tally[result.outcome] = (tally[result.outcome] ?? 0) + 1;
  console.log(`mutations: ${results.length} seeded cases → ${JSON.stringify(tally)}`);
  assert.ok((tally.pushed ?? 0) > 0, "some mutations leave a valid image");
  assert.ok(results.length - (tally.pushed ?? 0) > results.length / 2, "most are refused");

  // Through the CLI into Distribution: every accepted mutation, pulled back with skopeo and
  // compared with the undamaged fixture pushed the same way; a sample of the refused ones.
  const real = await startRegistry();
  try {
    const accepted = results.filter((result) => result.outcome === "pushed");
    const refused = results.filter((result, i) => result.outcome !== "pushed" && i % 13 === 5);
    const undamaged = new Map<LayoutName, string>();
    for (const layout of new Set(accepted.map((result) => result.layout))) {
      const fixture = fixtures[layout];
      const target = `${real.host}/mutation/original-${layout}:1`;
      const run = await pushThroughCli(fixture.path, target, fixture.choose);
      assert.equal(run.code, 0, `undamaged ${layout}: ${run.stderr}`);
      undamaged.set(layout, (await pullAndVerify(target, { all: true })).manifestDigest);
    }
    for (const [i, result] of [...accepted, ...refused].entries()) {
      const fixture = fixtures[result.layout];
      const target = `${real.host}/mutation/cli${i}:1`;
      const run = await pushThroughCli(result.path, target, fixture.choose);
      const what = `CLI ${result.layout}: ${result.description}: ${run.stderr}`;
      if (result.outcome === "pushed") {
        assert.equal(run.code, 0, what);
        const expected: PullOptions = {
          all: true,
          expectedConfigDigest: fixture.configDigest,
          expectedDiffIds: fixture.diffIds,
        };
        const manifestDigest = undamaged.get(result.layout);
        if (manifestDigest !== undefined) expected.expectedManifestDigest = manifestDigest;
        await pullAndVerify(target, expected);
      } else {
        assert.notEqual(run.code, 0, what);
        assert.notEqual(run.code, 1, `no internal error: ${what}`);
        assert.match(run.stderr, /^error: [^\n]+\n$/, what);
        const response = await fetch(`${real.url}/v2/mutation/cli${i}/manifests/1`);
        await response.body?.cancel();
        assert.equal(response.status, 404, `no tag: ${what}`);
      }
    }
    console.log(
      `mutations through the CLI into Distribution: ${accepted.length} accepted ones pulled back ` +
        `intact, ${refused.length} refused ones refused again`,
    );
  } finally {
    await real.stop();
  }
});

Deno.test("mutations: a compressed archive damaged anywhere fails with a typed error", async () => {
  const fixtures = await sharedFixtures();
  await using dir = await tempDir("mutation-compressed-");
  await using registry = startMemoryRegistry();
  const kinds: Record<string, number> = {};
  for (const layout of ["docker-archive-zstd", "docker-legacy-gzip"] as const) {
    const original = await Deno.readFile(fixtures[layout].path);
    for (let step = 1; step < 16; step++) {
      const bytes = original.slice();
      const at = Math.floor((bytes.length * step) / 16);
      bytes[at] = (bytes[at] ?? 0) ^ 0x55;
      const path = `${dir.path}/${layout}-${step}`;
      await Deno.writeFile(path, bytes);
      const repository = `compressed/${layout}-${step}`;
      const run = options(path, `http://${registry.host}/${repository}:1`);
      const error = await push(run).then(() => undefined, (thrown: unknown) => thrown);
      assert.ok(error instanceof PusherError, `${layout} at ${at}: ${String(error ?? "pushed")}`);
      assert.ok(["input", "verify"].includes(error.kind), `${layout} at ${at}: ${error.message}`);
      assert.deepEqual(registry.tags(repository), []);
      kinds[error.kind] = (kinds[error.kind] ?? 0) + 1;
    }
  }
  console.log(`damaged compressed archives: ${JSON.stringify(kinds)}`);
  assert.ok((kinds.input ?? 0) > 0, "some damage is found by the decompressor itself");
});
