/**
 * `copy()` against real Distribution registries: images put into a source registry by skopeo
 * (from fixture archives of every layout the fixtures have) are copied to a second registry, and
 * skopeo pulls them back from there with every blob checked; digests are the source's. Within one
 * registry blobs are mounted (no upload request reaches the registry), with a token that allows
 * the mounts from the first request on; a second copy sends no
 * blob byte; a multi-platform index is copied whole or filtered by platform; a Basic-auth source
 * takes its own credentials; faults on either side (fault proxy in front of Distribution, and a
 * download or an upload cut mid-blob by the in-process registry) still land the image intact —
 * the download goes on with `Range`, the upload in its session; a failed copy
 * writes no tag; a dry run writes nothing.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copy, type CopyResult } from "../../lib/copy/copy.ts";
import type { CopyOptions } from "../../lib/copy/options.ts";
import { PusherError } from "../../lib/errors.ts";
import type { PushEvent } from "../../lib/logging/events.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import { startFaultProxy } from "../helpers/fault_proxy.ts";
import { type FixtureInfo, type LayoutName, sharedFixtures } from "../helpers/fixtures.ts";
import { type MemoryRegistry, startMemoryRegistry } from "../helpers/memory_registry.ts";
import { pullAndVerify, skopeoInspect } from "../helpers/pull_verify.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** How skopeo reads each fixture layout it can read (the gzip/zstd copies it cannot). */
const SKOPEO_SOURCES: Partial<Record<LayoutName, (path: string) => string>> = {
  "oci-archive": (path) => `oci-archive:${path}:v1`,
  "docker-archive": (path) => `docker-archive:${path}`,
  "docker-legacy": (path) => `docker-archive:${path}`,
  "docker-legacy-multi": (path) => `docker-archive:${path}:tools:v2`,
  "docker-v25": (path) => `docker-archive:${path}:app:v1`,
  "docker-containerd": (path) => `docker-archive:${path}`,
  "oci-multi-platform": (path) => `oci-archive:${path}:v1`,
  "oci-multi-image": (path) => `oci-archive:${path}:v2`,
};

/** Puts a fixture into a registry with `skopeo copy --all --preserve-digests`. */
async function seed(fixture: FixtureInfo, target: string, creds?: string): Promise<void> {
  const source = SKOPEO_SOURCES[fixture.layout];
  assert.ok(source !== undefined, `no skopeo transport for ${fixture.layout}`);
  const output = await new Deno.Command("skopeo", {
    args: [
      ...["--insecure-policy", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false"],
      ...(creds === undefined ? [] : ["--dest-creds", creds]),
      source(fixture.path),
      `docker://${target}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(output.success, `skopeo copy failed: ${new TextDecoder().decode(output.stderr)}`);
}

function options(source: string, target: string, extra: Partial<CopyOptions> = {}): CopyOptions {
  return {
    source,
    target,
    platforms: [],
    timeoutSeconds: 120,
    stallTimeoutSeconds: 20,
    maxConcurrent: 3,
    retryAttempts: 4,
    skipTls: false,
    caCertFiles: [],
    dryRun: false,
    ...extra,
  };
}

/** Runs a copy, keeping its events. */
async function recordedCopy(
  settings: CopyOptions,
): Promise<{ result: CopyResult; events: PushEvent[] }> {
  const events: PushEvent[] = [];
  const result = await copy(settings, { events: (event) => events.push(event) });
  return { result, events };
}

/** The final state of each blob, by digest. */
function finalStates(events: readonly PushEvent[]): Map<string, string> {
  const states = new Map<string, string>();
  for (const event of events) {
    if (event.type !== "blob") continue;
    if (["exists", "mounted", "uploaded", "planned"].includes(event.state)) {
      states.set(event.blob.id, event.state);
    }
  }
  return states;
}

function reader(registry: { host: string; url: string }, repository: string): RegistryClient {
  return new RegistryClient({
    reference: { registry: registry.host, apiBase: new URL(registry.url), repository },
    access: "pull",
  });
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function withRegistries(
  count: number,
  body: (registries: TestRegistry[]) => Promise<void>,
): Promise<void> {
  const registries: TestRegistry[] = [];
  try {
    for (let i = 0; i < count; i++) registries.push(await startRegistry());
    await body(registries);
  } finally {
    for (const registry of registries) await registry.stop();
  }
}

Deno.test("between two registries, every fixture layout: the target has the source's digests and pulls back intact", async (t) => {
  const fixtures = await sharedFixtures();
  await withRegistries(2, async ([source, target]) => {
    assert.ok(source !== undefined && target !== undefined);
    for (const layout of Object.keys(SKOPEO_SOURCES) as LayoutName[]) {
      await t.step(layout, async () => {
        const fixture = fixtures[layout];
        const from = `${source.host}/src/${layout}:v1`;
        await seed(fixture, from);
        const original = await skopeoInspect(from);
        const to = `${target.host}/dst/${layout}:copied`;
        const { result, events } = await recordedCopy(options(from, to));
        assert.equal(result.digest, original.digest);
        assert.equal(result.sourceDigest, original.digest);
        assert.equal(result.mediaType, original.mediaType);
        assert.deepEqual(result.references, [to]);
        assert.equal(result.digestReference, `${target.host}/dst/${layout}@${original.digest}`);
        const copied = await skopeoInspect(to);
        assert.deepEqual(copied.raw, original.raw, "the manifest bytes are the source's");
        const pulled = await pullAndVerify(to, {
          all: true,
          expectedManifestDigest: original.digest,
        });
        const expectedImages = original.mediaType === OCI_INDEX
          ? (original.manifest.manifests as unknown[]).length
          : 1;
        assert.equal(pulled.images.length, expectedImages);
        const states = [...finalStates(events).values()];
        assert.ok(states.length > 0 && states.every((state) => state === "uploaded"), `${states}`);
        const start = events.find((event) => event.type === "start");
        assert.ok(start?.type === "start" && start.blobs.length === states.length);
        assert.equal(result.bytesSent, start.totalBytes, "every blob sent once, in full");
      });
    }
  });
});

Deno.test("a second copy sends no blob byte: every blob is already there", async () => {
  const fixtures = await sharedFixtures();
  await withRegistries(2, async ([source, target]) => {
    assert.ok(source !== undefined && target !== undefined);
    const from = `${source.host}/src/app:v1`;
    await seed(fixtures["docker-archive"], from);
    const to = `${target.host}/dst/app:v1`;
    const first = await recordedCopy(options(from, to));
    assert.ok(first.result.bytesSent > 0);
    const second = await recordedCopy(options(from, to));
    assert.equal(second.result.bytesSent, 0);
    assert.equal(second.result.digest, first.result.digest);
    const states = [...finalStates(second.events).values()];
    assert.deepEqual(states, states.map(() => "exists"));
    assert.equal(states.length, fixtures["docker-archive"].diffIds.length + 1);
  });
});

Deno.test("within one registry, every blob is mounted: no upload request reaches the registry", async () => {
  const fixtures = await sharedFixtures();
  await withRegistries(1, async ([registry]) => {
    assert.ok(registry !== undefined);
    const from = `${registry.host}/team/app:v1`;
    await seed(fixtures["oci-archive"], from);
    await using proxy = startFaultProxy({ upstream: registry.url, seed: 1 });
    const { result, events } = await recordedCopy(
      options(`${proxy.host}/team/app:v1`, `${proxy.host}/other/app:v1`),
    );
    assert.equal(result.bytesSent, 0);
    const states = [...finalStates(events).values()];
    assert.equal(states.length, fixtures["oci-archive"].diffIds.length + 1);
    assert.deepEqual(states, states.map(() => "mounted"));
    assert.equal(proxy.stats.requests["upload-patch"], undefined);
    assert.equal(proxy.stats.requests["upload-put"], undefined);
    assert.equal(proxy.stats.requests["blob-get"], undefined);
    assert.ok(
      proxy.log.every((entry) => entry.kind !== "upload-start" || /mount=/.test(entry.path)),
    );
    await pullAndVerify(`${registry.host}/other/app:v1`, {
      expectedManifestDigest: (await skopeoInspect(from)).digest,
    });
  });
});

Deno.test("within one token registry, the target's first token already allows the mounts: no token fetched again", async () => {
  const fixtures = await sharedFixtures();
  await using cache = await tempDir("copy-mount-token-");
  const registry = await startRegistry({ token: { users: { mounter: "mount-Pa55" } } });
  Deno.env.set("DOCKER_PUSHER_CACHE_DIR", cache.path);
  try {
    await seed(fixtures["oci-archive"], `${registry.host}/team/app:v1`, "mounter:mount-Pa55");
    registry.tokenRequests.length = 0;
    const credentials = { username: "mounter", password: "mount-Pa55" };
    const { events } = await recordedCopy(
      options(`${registry.host}/team/app:v1`, `${registry.host}/other/app:v1`, {
        credentials,
        sourceCredentials: credentials,
      }),
    );
    const states = [...finalStates(events).values()];
    assert.equal(states.length, fixtures["oci-archive"].diffIds.length + 1);
    assert.deepEqual(states, states.map(() => "mounted"));
    assert.deepEqual(
      registry.tokenRequests.map((request) => request.scopes.join(" ")).sort(),
      ["repository:other/app:pull,push repository:team/app:pull", "repository:team/app:pull"],
      "one token for the source, one for the target that also reads the source",
    );
  } finally {
    Deno.env.delete("DOCKER_PUSHER_CACHE_DIR");
    await registry.stop();
  }
});

Deno.test("a multi-platform index: copied whole with its digest, or filtered to one platform with a new index", async () => {
  const fixtures = await sharedFixtures();
  const fixture = fixtures["oci-multi-platform"];
  const amdDigest = fixture.images[0]?.manifestDigest;
  const armDigest = fixture.images[1]?.manifestDigest;
  const attestationDigest = fixture.images[2]?.manifestDigest;
  const indexDigest = fixture.indexDigest;
  assert.ok(amdDigest !== undefined && armDigest !== undefined && indexDigest !== undefined);
  await withRegistries(2, async ([source, target]) => {
    assert.ok(source !== undefined && target !== undefined);
    const from = `${source.host}/multi/app:v1`;
    await seed(fixture, from);

    const whole = await recordedCopy(options(from, `${target.host}/whole/app:v1`));
    assert.equal(whole.result.digest, indexDigest);
    const pulledWhole = await pullAndVerify(`${target.host}/whole/app:v1`, {
      all: true,
      expectedManifestDigest: indexDigest,
    });
    assert.equal(pulledWhole.images.length, 3);

    const armOnly = await recordedCopy(
      options(from, `${target.host}/arm/app:v1`, { platforms: ["linux/arm64"] }),
    );
    assert.notEqual(armOnly.result.digest, indexDigest);
    assert.equal(armOnly.result.sourceDigest, indexDigest);
    const warning = armOnly.events.find((event) => event.type === "warning");
    assert.ok(
      warning?.type === "warning" && warning.message.includes("index digest changed"),
      JSON.stringify(warning),
    );
    const index = await skopeoInspect(`${target.host}/arm/app:v1`);
    assert.equal(index.digest, armOnly.result.digest);
    assert.deepEqual(
      (index.manifest.manifests as Array<{ digest: string }>).map((entry) => entry.digest),
      [armDigest],
    );
    const pulledArm = await pullAndVerify(`${target.host}/arm/app:v1`, { all: true });
    assert.deepEqual(pulledArm.images.map((image) => image.platform), ["linux/arm64/v8"]);
    const armClient = reader(target, "arm/app");
    try {
      assert.equal(await armClient.headManifest(amdDigest), undefined);
      assert.equal(
        (await armClient.getManifest(armDigest)).digest,
        armDigest,
        "the child keeps its digest",
      );
    } finally {
      armClient.close();
    }

    // amd64 keeps its attestation manifest, which describes it.
    const amdOnly = await recordedCopy(
      options(from, `${target.host}/amd/app:v1`, { platforms: ["linux/amd64"] }),
    );
    const amdIndex = await skopeoInspect(`${target.host}/amd/app:v1`);
    assert.equal(amdIndex.digest, amdOnly.result.digest);
    const kept = (amdIndex.manifest.manifests as Array<{ digest: string }>).map((e) => e.digest);
    assert.deepEqual(kept, [amdDigest, attestationDigest]);

    await assert.rejects(
      copy(options(from, `${target.host}/none/app:v1`, { platforms: ["linux/s390x"] })),
      (error) => error instanceof PusherError && error.kind === "usage",
    );
  });
});

Deno.test("a Basic-auth source and target, each with its own credentials; no secret in the events", async () => {
  const fixtures = await sharedFixtures();
  const sourceUser = { username: "reader", password: "src-Secret:1" };
  const targetUser = { username: "writer", password: "dst-Secret:2" };
  const source = await startRegistry({ htpasswd: { [sourceUser.username]: sourceUser.password } });
  const target = await startRegistry({ htpasswd: { [targetUser.username]: targetUser.password } });
  try {
    const from = `${source.host}/secure/app:v1`;
    await seed(fixtures["docker-v25"], from, `${sourceUser.username}:${sourceUser.password}`);
    const to = `${target.host}/secure/app:v1`;
    await assert.rejects(
      copy(options(from, to, { credentials: targetUser })),
      (error) => error instanceof PusherError && error.kind === "auth",
      "the source refuses the target's credentials",
    );
    const { result, events } = await recordedCopy(
      options(from, to, { sourceCredentials: sourceUser, credentials: targetUser }),
    );
    const creds = `${targetUser.username}:${targetUser.password}`;
    await pullAndVerify(to, { creds, expectedManifestDigest: result.sourceDigest });
    const text = JSON.stringify(events);
    assert.ok(!text.includes(sourceUser.password) && !text.includes(targetUser.password));
  } finally {
    await source.stop();
    await target.stop();
  }
});

Deno.test("faults on the source side (503, dropped connections, dropped answers) still land the image intact", async () => {
  const fixtures = await sharedFixtures();
  await withRegistries(2, async ([source, target]) => {
    assert.ok(source !== undefined && target !== undefined);
    await seed(fixtures["oci-multi-platform"], `${source.host}/faulty/app:v1`);
    await using proxy = startFaultProxy({
      upstream: source.url,
      seed: 11,
      rules: [
        { type: "unavailable", rate: 0.3, kinds: ["blob-get", "manifest-get"] },
        { type: "cut", rate: 0.2, kinds: ["blob-get"] },
        { type: "drop-response", rate: 0.2, kinds: ["blob-get"] },
      ],
      maxFaults: 8,
    });
    const to = `${target.host}/copied/app:v1`;
    const { result } = await recordedCopy(
      options(`${proxy.host}/faulty/app:v1`, to, { retryAttempts: 6 }),
    );
    const injected = Object.values(proxy.stats.faults).reduce((sum, n) => sum + (n ?? 0), 0);
    assert.ok(injected >= 3, `only ${injected} faults were injected`);
    assert.equal(result.digest, fixtures["oci-multi-platform"].indexDigest);
    await pullAndVerify(to, { all: true, expectedManifestDigest: result.digest });
  });
});

Deno.test("faults on the target side (cut uploads, 503, lost final answers) still land the image intact", async () => {
  const fixtures = await sharedFixtures();
  await withRegistries(2, async ([source, target]) => {
    assert.ok(source !== undefined && target !== undefined);
    const from = `${source.host}/src/app:v1`;
    await seed(fixtures["docker-archive"], from);
    await using proxy = startFaultProxy({
      upstream: target.url,
      seed: 5,
      rules: [
        { type: "cut", rate: 0.3, kinds: ["upload-patch"] },
        { type: "unavailable", rate: 0.2, kinds: ["upload-start", "upload-put", "manifest-put"] },
        { type: "drop-response", rate: 0.3, kinds: ["upload-put"] },
      ],
      maxFaults: 6,
      cutBytes: [1024, 200_000],
    });
    const { result } = await recordedCopy(
      options(from, `${proxy.host}/dst/app:v1`, { retryAttempts: 6 }),
    );
    const injected = Object.values(proxy.stats.faults).reduce((sum, n) => sum + (n ?? 0), 0);
    assert.ok(injected >= 2, `only ${injected} faults were injected`);
    assert.equal(result.digest, (await skopeoInspect(from)).digest);
    await pullAndVerify(`${target.host}/dst/app:v1`, {
      expectedManifestDigest: result.digest,
      expectedDiffIds: fixtures["docker-archive"].diffIds,
    });
  });
});

/** A one-layer image of `layerSize` pseudo-random bytes, put into an in-process registry. */
interface MemoryImage {
  layerDigest: string;
  layerSize: number;
  configSize: number;
  manifestDigest: string;
}

async function seedMemoryImage(
  registry: MemoryRegistry,
  repository: string,
  layerSize: number,
): Promise<MemoryImage> {
  const layer = new Uint8Array(layerSize).map((_, i) => (i * 7919) % 251);
  const config = new TextEncoder().encode(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
    }),
  );
  const layerDigest = registry.seedBlob(repository, layer);
  const configDigest = registry.seedBlob(repository, config);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.byteLength,
    },
    layers: [{
      mediaType: "application/vnd.oci.image.layer.v1.tar",
      digest: layerDigest,
      size: layerSize,
    }],
  }));
  const writer = new RegistryClient({
    reference: { registry: registry.host, apiBase: new URL(registry.url), repository },
  });
  try {
    await writer.putManifest("v1", manifest, OCI_MANIFEST);
  } finally {
    writer.close();
  }
  return {
    layerDigest,
    layerSize,
    configSize: config.byteLength,
    manifestDigest: sha256(manifest),
  };
}

/** Reads a blob back from a registry and checks it hashes to its digest. */
async function assertBlobIntact(
  registry: { host: string; url: string },
  repository: string,
  digest: string,
): Promise<void> {
  const check = reader(registry, repository);
  try {
    const download = await check.getBlob(digest);
    const copied = new Uint8Array(await new Response(download.body).arrayBuffer());
    assert.equal(sha256(copied), digest);
  } finally {
    check.close();
  }
}

Deno.test("a download cut mid-body goes on from the byte it reached (Range): the blob is uploaded once", async () => {
  const source = startMemoryRegistry();
  try {
    const image = await seedMemoryImage(source, "mem/app", 3 * 1024 * 1024);
    let cut = false;
    source.faults = (context) => {
      if (cut || context.kind !== "blob-get" || !context.path.endsWith(image.layerDigest)) {
        return undefined;
      }
      cut = true;
      return { type: "cut-response", afterBytes: 1024 * 1024 };
    };
    await withRegistries(1, async ([target]) => {
      assert.ok(target !== undefined);
      const { result } = await recordedCopy(
        options(`${source.host}/mem/app:v1`, `${target.host}/dst/app:v1`),
      );
      assert.equal(result.digest, image.manifestDigest);
      assert.equal(result.bytesSent, image.layerSize + image.configSize, "nothing sent twice");
      const gets = source.log.filter((entry) =>
        entry.kind === "blob-get" && entry.path.endsWith(image.layerDigest)
      );
      assert.equal(gets.length, 2);
      assert.equal(gets[0]?.range, undefined);
      const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]?.range ?? "")?.[1]);
      assert.ok(resumedAt > 0 && resumedAt <= 1024 * 1024, `resumed with ${gets[1]?.range}`);
      await assertBlobIntact(target, "dst/app", image.layerDigest);
    });
  } finally {
    await source.close();
  }
});

Deno.test("an upload cut mid-blob on a registry that keeps sessions continues where the target stopped", async () => {
  const source = startMemoryRegistry();
  const target = startMemoryRegistry();
  try {
    const image = await seedMemoryImage(source, "mem/app", 3 * 1024 * 1024);
    const cutAt = 1024 * 1024;
    target.faults = (context) =>
      context.kind === "upload-patch" && context.attempt === 1
        ? { type: "cut", afterBytes: cutAt }
        : undefined;
    // One blob at a time, largest first: the first PATCH is the layer's.
    const { result, events } = await recordedCopy(
      options(`${source.host}/mem/app:v1`, `${target.host}/dst/app:v1`, { maxConcurrent: 1 }),
    );
    assert.equal(result.digest, image.manifestDigest);
    assert.ok(
      events.some((event) => event.type === "blob" && /resuming at byte/.test(event.reason ?? "")),
      "the upload resumed in its session",
    );
    const patched = target.log.filter((entry) => entry.kind === "upload-patch")
      .reduce((sum, entry) => sum + entry.bytes, 0);
    assert.ok(
      patched < image.layerSize + cutAt + image.configSize + 256 * 1024,
      `${patched} bytes reached the target: the part it held was not sent again`,
    );
    assert.equal(target.sessions().filter((session) => session.state === "completed").length, 2);
    await assertBlobIntact(target, "dst/app", image.layerDigest);
  } finally {
    await source.close();
    await target.close();
  }
});

Deno.test("a copy that fails on a blob writes no manifest and no tag", async () => {
  const fixtures = await sharedFixtures();
  await withRegistries(2, async ([source, target]) => {
    assert.ok(source !== undefined && target !== undefined);
    const from = `${source.host}/src/app:v1`;
    await seed(fixtures["docker-archive"], from);
    await using proxy = startFaultProxy({
      upstream: target.url,
      seed: 3,
      rules: [{ type: "unavailable", rate: 1, kinds: ["upload-start"] }],
    });
    // No retries at all: a registry refusing every upload (503) would otherwise be waited for
    // through the outage budget.
    await assert.rejects(
      copy(options(from, `${proxy.host}/dst/app:v1`, { retryAttempts: 0 })),
      (error) => error instanceof PusherError,
    );
    assert.equal(proxy.stats.requests["manifest-put"], undefined);
    const check = reader(target, "dst/app");
    try {
      assert.equal(await check.headManifest("v1"), undefined);
    } finally {
      check.close();
    }
  });
});

Deno.test("--dry-run reads and looks, and writes nothing", async () => {
  const fixtures = await sharedFixtures();
  await withRegistries(2, async ([source, target]) => {
    assert.ok(source !== undefined && target !== undefined);
    const from = `${source.host}/src/app:v1`;
    await seed(fixtures["oci-multi-platform"], from);
    await using proxy = startFaultProxy({ upstream: target.url, seed: 2 });
    const { result, events } = await recordedCopy(
      options(from, `${proxy.host}/dst/app:v1`, { dryRun: true }),
    );
    assert.equal(result.dryRun, true);
    assert.equal(result.bytesSent, 0);
    assert.equal(result.digest, fixtures["oci-multi-platform"].indexDigest);
    const states = [...finalStates(events).values()];
    assert.ok(states.length > 0);
    assert.deepEqual(states, states.map(() => "planned"));
    const writes = ["upload-start", "upload-patch", "upload-put", "manifest-put"] as const;
    for (const kind of writes) assert.equal(proxy.stats.requests[kind], undefined, kind);
    assert.ok((proxy.stats.requests["blob-head"] ?? 0) >= states.length);
    const final = events.at(-1);
    assert.ok(final?.type === "result" && final.blobs.planned === states.length);
    const check = reader(target, "dst/app");
    try {
      assert.equal(await check.headManifest("v1"), undefined);
    } finally {
      check.close();
    }
  });
});
