/**
 * Resume across runs: a 320 MiB archive (four layers of compressible pseudo-random data, gzip
 * compressed on the way, sent in 16 MiB chunks) is pushed by the CLI, which is killed with
 * SIGKILL mid-layer, interrupted with Ctrl-C (SIGINT), or cut off from the registry; the same
 * command then completes. Finished layers are skipped (confirmed by HEAD), open sessions continue
 * where the registry stands (the compressed stream is regenerated and the bytes already sent are
 * skipped), and the bytes sent again are counted at the registry and must stay below one layer.
 * Runs against the spec-following registry in the test process, and against Distribution 2.8
 * (which drops a session whose chunk was cut, so only that layer starts over).
 */

import assert from "node:assert/strict";
import { createCipheriv, createHash } from "node:crypto";
import { UploadState } from "../../lib/state/upload_state.ts";
import { REPO_ROOT, runPusher } from "../helpers/cli.ts";
import { startFaultProxy } from "../helpers/fault_proxy.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { type MemoryRegistry, startMemoryRegistry } from "../helpers/memory_registry.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir, tempDirUntilExit } from "../helpers/temp_dir.ts";

const MiB = 1024 * 1024;
const LAYERS = 4;
const LAYER_DATA = 80 * MiB;
const CHUNK = 16 * MiB;
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// A large docker-save archive written as a stream
// ---------------------------------------------------------------------------------------------

function tarHeader(name: string, size: number): Uint8Array {
  const block = new Uint8Array(512);
  const field = (offset: number, length: number, value: string): void => {
    block.set(encoder.encode(value).subarray(0, length), offset);
  };
  const octal = (offset: number, length: number, value: number): void =>
    field(offset, length, value.toString(8).padStart(length - 1, "0"));
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 1700000000);
  field(148, 8, "        ");
  field(156, 1, "0");
  field(257, 6, "ustar");
  field(263, 2, "00");
  const sum = block.reduce((total, byte) => total + byte, 0);
  field(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

function padding(size: number): Uint8Array {
  return new Uint8Array((512 - (size % 512)) % 512);
}

/** Compressible pseudo-random bytes (16 letters: 4 bits of entropy per byte), by seed. */
function* layerData(seed: number, size: number): Generator<Uint8Array> {
  const cipher = createCipheriv("aes-128-ctr", new Uint8Array(16).fill(seed), new Uint8Array(16));
  const zeros = new Uint8Array(4 * MiB);
  for (let done = 0; done < size; done += zeros.length) {
    const bytes = new Uint8Array(
      cipher.update(zeros).subarray(0, Math.min(zeros.length, size - done)),
    );
    const words = new Uint32Array(bytes.buffer, 0, Math.floor(bytes.length / 4));
    for (let i = 0; i < words.length; i++) words[i] = ((words[i] ?? 0) & 0x0f0f0f0f) | 0x61616161;
    yield bytes;
  }
}

/** The inner tar of layer `index`: one file of {@link LAYER_DATA} bytes. */
function* layerTar(index: number): Generator<Uint8Array> {
  yield tarHeader(`data/blob-${index}.txt`, LAYER_DATA);
  yield* layerData(index + 1, LAYER_DATA);
  yield padding(LAYER_DATA);
  yield new Uint8Array(1024);
}

interface BigArchive {
  path: string;
  size: number;
  diffIds: string[];
  configDigest: string;
  configSize: number;
}

let archiveOnce: Promise<BigArchive> | undefined;

/** Writes the archive once per test process (removed at exit). */
function bigArchive(): Promise<BigArchive> {
  archiveOnce ??= (async () => {
    const dir = await tempDirUntilExit("kill-resume-");
    const path = `${dir}/big.tar`;
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    let size = 0;
    const write = async (bytes: Uint8Array): Promise<void> => {
      for (let offset = 0; offset < bytes.length;) {
        offset += await file.write(bytes.subarray(offset));
      }
      size += bytes.length;
    };
    const diffIds: string[] = [];
    const layerTarSize = 512 + LAYER_DATA + padding(LAYER_DATA).length + 1024;
    for (let i = 0; i < LAYERS; i++) {
      await write(tarHeader(`${i}/layer.tar`, layerTarSize));
      const hash = createHash("sha256");
      for (const piece of layerTar(i)) {
        hash.update(piece);
        await write(piece);
      }
      diffIds.push(`sha256:${hash.digest("hex")}`);
    }
    const config = encoder.encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: diffIds },
      history: diffIds.map(() => ({ created_by: "kill test layer" })),
    }));
    const configHex = createHash("sha256").update(config).digest("hex");
    const manifest = encoder.encode(JSON.stringify([{
      Config: `${configHex}.json`,
      RepoTags: ["big/app:latest"],
      Layers: diffIds.map((_, i) => `${i}/layer.tar`),
    }]));
    for (
      const [name, bytes] of [[`${configHex}.json`, config], ["manifest.json", manifest]] as const
    ) {
      await write(tarHeader(name, bytes.length));
      await write(bytes);
      await write(padding(bytes.length));
    }
    await write(new Uint8Array(1024));
    file.close();
    return {
      path,
      size,
      diffIds,
      configDigest: `sha256:${configHex}`,
      configSize: config.length,
    };
  })();
  return archiveOnce;
}

// ---------------------------------------------------------------------------------------------
// Running the CLI
// ---------------------------------------------------------------------------------------------

/** Starts the CLI as a child process, with JSON events on stdout. */
function spawnPusher(args: string[], cacheDir: string): Deno.ChildProcess {
  const env: Record<string, string> = { NO_COLOR: "1", DOCKER_PUSHER_CACHE_DIR: cacheDir };
  for (const name of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", `${REPO_ROOT}main.ts`, ...args, "--json"],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Polls `ready` every 20 ms (for at most `limitMs`); true once it holds. */
async function waitFor(ready: () => boolean, limitMs: number): Promise<boolean> {
  const end = performance.now() + limitMs;
  while (performance.now() < end) {
    if (ready()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

interface RunOutput {
  code: number;
  events: Array<Record<string, unknown>>;
  stderr: string;
}

async function finish(child: Deno.ChildProcess): Promise<RunOutput> {
  const output = await child.output();
  const events = new TextDecoder().decode(output.stdout).split("\n").filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { code: output.code, events, stderr: new TextDecoder().decode(output.stderr) };
}

/** The `resuming at byte N` offsets reported in a run. */
function resumes(events: RunOutput["events"]): number[] {
  return events.flatMap((event) => {
    const match = /^resuming at byte (\d+)$/.exec(String(event.reason ?? ""));
    return match ? [Number(match[1])] : [];
  });
}

/** Blob bytes the registry took in, by PATCH or in a closing PUT. */
function uploadedBytes(registry: MemoryRegistry): number {
  const received = registry.stats.bytesReceived;
  return (received["upload-patch"] ?? 0) + (received["upload-put"] ?? 0);
}

function states(events: RunOutput["events"], state: string): number {
  return events.filter((event) =>
    event.type === "blob" && event.state === state &&
    (event.blob as { role?: string } | undefined)?.role === "layer"
  ).length;
}

/** The upload sessions in the resume state file under `cacheDir` (none yet: []). */
function savedUploads(cacheDir: string): Array<{ location: string; offset: number }> {
  try {
    const file = [...Deno.readDirSync(cacheDir)].find((entry) => entry.name.startsWith("uploads-"));
    if (file === undefined) return [];
    const state = JSON.parse(Deno.readTextFileSync(`${cacheDir}/${file.name}`)) as {
      uploads?: Record<string, { location: string; offset: number }>;
    };
    return Object.values(state.uploads ?? {});
  } catch {
    return []; // being replaced right now
  }
}

function pushArgs(archive: BigArchive, target: string, extra: string[] = []): string[] {
  return [
    "-f",
    archive.path,
    "-r",
    target,
    "--large-layer-threshold",
    String(CHUNK),
    "--stall-timeout",
    "10",
    "--timeout",
    "300",
    ...extra,
  ];
}

/** Layer and config sizes of the pushed image, read back from the in-process registry. */
function pushedBlobBytes(registry: MemoryRegistry, repository: string): number[] {
  const manifest = registry.manifest(repository, "1");
  assert.ok(manifest, "the image is tagged");
  const parsed = JSON.parse(new TextDecoder().decode(manifest.bytes)) as {
    config: { size: number };
    layers: Array<{ size: number }>;
  };
  return [...parsed.layers.map((layer) => layer.size), parsed.config.size];
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

Deno.test("kill -9 mid-layer, then the same command: finishes and re-sends less than a layer", async () => {
  const archive = await bigArchive();
  await using cache = await tempDir("kill-cache-");
  const cacheDir = cache.path;
  // One layer at a time, each chunk held up for 400 ms (a layer then takes longer than the
  // state file's one-second write interval), so that the kill reliably lands after a layer
  // finished and while the next one is between chunks, with its session saved.
  await using registry = startMemoryRegistry({
    faults: (context) => context.kind === "upload-patch" ? { type: "stall", ms: 400 } : undefined,
  });
  const target = `http://${registry.host}/kill/app:1`;
  const started = performance.now();
  const child = spawnPusher(pushArgs(archive, target, ["--max-concurrent", "1"]), cacheDir);
  // The state file is written at most once a second: wait until it holds the open session.
  const midLayer = await waitFor(() => {
    const sessions = registry.sessions();
    const saved = savedUploads(cacheDir);
    // A layer's session (the config goes up in its closing PUT, with no PATCH).
    return sessions.filter((session) => session.state === "completed" && session.patches > 0)
          .length >= 1 &&
      sessions.some((session) =>
        session.state === "open" && session.size >= CHUNK &&
        saved.some((upload) => upload.location.includes(session.id) && upload.offset >= CHUNK)
      );
  }, 120_000);
  assert.ok(midLayer, "the push got a layer done and another one going, and saved it");
  child.kill("SIGKILL");
  const killed = await finish(child);
  assert.notEqual(killed.code, 0);
  const firstMs = performance.now() - started;
  const sentBefore = uploadedBytes(registry);
  const committedBefore =
    registry.sessions().filter((s) => s.state === "completed" && s.patches > 0).length;
  const savedState = [...Deno.readDirSync(cacheDir)].map((entry) => entry.name);
  assert.ok(savedState.some((name) => name.startsWith("uploads-")), "resume state was saved");

  registry.faults = undefined;
  registry.resetStats();
  const again = await finish(spawnPusher(pushArgs(archive, target), cacheDir));
  assert.equal(again.code, 0, again.stderr);
  const sentAfter = uploadedBytes(registry);
  const blobs = pushedBlobBytes(registry, "kill/app");
  const needed = blobs.reduce((sum, size) => sum + size, 0);
  const resent = sentBefore + sentAfter - needed;
  const smallestLayer = Math.min(...blobs.slice(0, -1));
  console.log(
    `kill -9 (spec registry): archive ${archive.size} bytes, ${needed} bytes of blobs; killed ` +
      `after ${Math.round(firstMs)} ms with ${sentBefore} bytes sent and ${committedBefore} ` +
      `layer(s) committed; the re-run skipped ${states(again.events, "exists")} layer(s), ` +
      `resumed at ${JSON.stringify(resumes(again.events))}, sent ${sentAfter} bytes; ` +
      `re-sent ${resent} bytes (one layer: ${smallestLayer})`,
  );
  assert.ok(states(again.events, "exists") >= 1, "finished layers were skipped");
  assert.ok(resumes(again.events).length >= 1, "an open session was continued");
  assert.ok(resent < smallestLayer, `re-sent ${resent} bytes, more than a layer`);
  await pullAndVerify(`${registry.host}/kill/app:1`, {
    expectedConfigDigest: archive.configDigest,
    expectedDiffIds: archive.diffIds,
  });
});

Deno.test("Ctrl-C stops cleanly with exit 130 and saved state; a lost link resumes too", async () => {
  const archive = await bigArchive();
  await using cache = await tempDir("sigint-cache-");
  const cacheDir = cache.path;
  await using registry = startMemoryRegistry();
  const target = `http://${registry.host}/sigint/app:1`;
  const child = spawnPusher(pushArgs(archive, target), cacheDir);
  // A second chunk arriving means the first one's acknowledgement went out.
  const going = await waitFor(
    () => registry.sessions().some((session) => session.size > CHUNK),
    120_000,
  );
  assert.ok(going);
  const interrupted = performance.now();
  child.kill("SIGINT");
  const first = await finish(child);
  const stopMs = performance.now() - interrupted;
  assert.equal(first.code, 130, first.stderr);
  assert.match(first.stderr, /interrupted by Ctrl-C; progress was saved/);
  assert.ok(stopMs < 10_000, `stopping took ${Math.round(stopMs)} ms`);
  const stateFile = [...Deno.readDirSync(cacheDir)].find((entry) =>
    entry.name.startsWith("uploads-")
  );
  assert.ok(stateFile, "a resume state file exists");
  const state = JSON.parse(await Deno.readTextFile(`${cacheDir}/${stateFile.name}`)) as {
    uploads: Record<string, { offset: number }>;
  };
  const saved = Object.values(state.uploads);
  assert.ok(saved.some((upload) => upload.offset >= CHUNK), "acknowledged chunks were saved");
  assert.deepEqual(registry.tags("sigint/app"), [], "no tag after an interrupted push");

  // The link goes down mid-upload: every upload request is cut until it comes back.
  const sentBeforeLoss = registry.stats.bytesReceived["upload-patch"] ?? 0;
  registry.faults = (context) =>
    context.kind === "upload-patch" &&
      (registry.stats.bytesReceived["upload-patch"] ?? 0) > sentBeforeLoss + 2 * CHUNK
      ? { type: "cut", afterBytes: 1000 }
      : undefined;
  const lost = await finish(
    spawnPusher(pushArgs(archive, target, ["--retry-attempts", "1"]), cacheDir),
  );
  assert.equal(lost.code, 5, lost.stderr);
  assert.deepEqual(registry.tags("sigint/app"), []);
  assert.ok(resumes(lost.events).length >= 1, "the run after Ctrl-C resumed");

  registry.faults = undefined;
  const last = await finish(spawnPusher(pushArgs(archive, target), cacheDir));
  assert.equal(last.code, 0, last.stderr);
  console.log(
    `Ctrl-C: stopped in ${Math.round(stopMs)} ms with exit 130 and ${saved.length} open ` +
      `session(s) saved; after a lost link (exit 5) the re-run resumed at ` +
      `${JSON.stringify(resumes(last.events))} and skipped ${
        states(last.events, "exists")
      } layer(s)`,
  );
  assert.ok(resumes(last.events).length >= 1, "the run after the lost link resumed");
  await pullAndVerify(`${registry.host}/sigint/app:1`, { expectedDiffIds: archive.diffIds });
});

Deno.test("kill -9 against Distribution 2.8: only the cut layer starts over", async () => {
  const archive = await bigArchive();
  await using cache = await tempDir("kill28-cache-");
  const cacheDir = cache.path;
  const registry = await startRegistry();
  try {
    await using proxy = startFaultProxy({ upstream: registry.url, seed: 1, rules: [] });
    const target = `http://${proxy.host}/kill/app:1`;
    const args = pushArgs(archive, target, ["--max-concurrent", "1"]);
    const child = spawnPusher(args, cacheDir);
    const midLayer = await waitFor(() => {
      // A layer committed (the config goes up at the start, in its closing PUT).
      const committed = proxy.log.filter((record) =>
        record.kind === "upload-put" && record.outcome === 201 &&
        !record.path.includes(archive.configDigest.slice("sha256:".length))
      ).length;
      return committed >= 1 && (proxy.stats.bytesReceived["upload-patch"] ?? 0) > 60 * MiB;
    }, 120_000);
    assert.ok(midLayer);
    child.kill("SIGKILL");
    await finish(child);
    const sent = (): number =>
      (proxy.stats.bytesReceived["upload-patch"] ?? 0) +
      (proxy.stats.bytesReceived["upload-put"] ?? 0);
    const sentBefore = sent();
    const again = await finish(spawnPusher(args, cacheDir));
    assert.equal(again.code, 0, again.stderr);
    const sentTotal = sent();
    const pulled = await pullAndVerify(`${registry.host}/kill/app:1`, {
      expectedConfigDigest: archive.configDigest,
      expectedDiffIds: archive.diffIds,
    });
    const layers = pulled.images[0]?.layers.map((layer) => layer.size) ?? [];
    const needed = layers.reduce((sum, size) => sum + size, archive.configSize);
    const resent = sentTotal - needed;
    console.log(
      `kill -9 (Distribution 2.8, one layer at a time): ${sentBefore} bytes sent before the ` +
        `kill; the re-run skipped ${states(again.events, "exists")} layer(s), resumed at ` +
        `${JSON.stringify(resumes(again.events))}, sent ${sentTotal - sentBefore}; re-sent ` +
        `${resent} bytes (one layer: ${Math.min(...layers)})`,
    );
    assert.ok(states(again.events, "exists") >= 1);
    assert.ok(resent < Math.min(...layers), `re-sent ${resent} bytes, more than a layer`);
  } finally {
    await registry.stop();
  }
});

Deno.test("a corrupt or foreign resume state file is ignored with a warning", async () => {
  const fixtures = await sharedFixtures();
  await using registry = startMemoryRegistry();
  await using cache = await tempDir("state-cache-");
  const cacheDir = cache.path;
  const path = UploadState.pathFor(cacheDir, registry.host);
  const foreign = JSON.stringify({
    format: "docker-image-pusher/uploads",
    version: 1,
    registry: "elsewhere.example",
    uploads: {},
  });
  for (const [i, text] of ["{corrupt", foreign].entries()) {
    await Deno.writeTextFile(path, text);
    const run = await runPusher(
      ["-f", fixtures["docker-archive"].path, "-r", `http://${registry.host}/state/app:${i}`],
      { cacheDir },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^warning: ignoring the resume state .*uploads-[0-9a-f]+\.json: /m);
    if (i > 0) continue;
    // The first push uploaded, so the state was written again, valid.
    const rewritten = JSON.parse(await Deno.readTextFile(path)) as { registry: string };
    assert.equal(rewritten.registry, registry.host, "replaced by a valid file");
  }
});
