/**
 * Registries that refuse manifests for their shape, emulated by a proxy in front of real
 * Distribution that refuses what the vendor refuses and forwards the rest: Huawei SWR (no OCI
 * media types) and Aliyun ACR personal edition (no BuildKit attestation manifests). The archive is
 * what BuildKit writes: an OCI index with a zstd platform, an uncompressed one and attestation
 * manifests, read in place, from a compressed file or from stdin. Each push is pulled back with
 * skopeo and every layer checked against its diff_id.
 */

import assert from "node:assert/strict";
import { EXIT_CODES } from "../../lib/errors.ts";
import { runPusher } from "../helpers/cli.ts";
import { type BuildkitLayout, writeBuildkitLayout } from "../helpers/fixtures.ts";
import { pullAndVerify, type PullResult, skopeoInspect } from "../helpers/pull_verify.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { startVendorProxy, type Vendor, type VendorProxy } from "../helpers/vendor_proxy.ts";

const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
const DOCKER_GZIP_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** A registry, a refusing proxy in front of it and the BuildKit-style archive. */
async function withVendor(
  vendor: Vendor,
  body: "json" | "text",
  run: (proxy: VendorProxy, registry: TestRegistry, layout: BuildkitLayout) => Promise<void>,
): Promise<void> {
  await using dir = await tempDir("vendor-");
  const layout = await writeBuildkitLayout(`${dir.path}/buildkit.tar`);
  const registry = await startRegistry();
  try {
    await using proxy = startVendorProxy({ upstream: registry.url, vendor, body });
    await run(proxy, registry, layout);
  } finally {
    await registry.stop();
  }
}

/** The digest the tool printed on stdout (`host/repo@sha256:…`). */
function printedDigest(stdout: string): string {
  const digest = stdout.trim().split("@")[1] ?? "";
  assert.match(digest, /^sha256:[0-9a-f]{64}$/, `a digest on stdout: ${stdout}`);
  return digest;
}

/** Checks that every platform of the archive came back, each layer uncompressing to its diff_id. */
function assertPlatforms(pulled: PullResult, layout: BuildkitLayout): void {
  assert.deepEqual(
    pulled.images.map((image) => image.platform).sort(),
    layout.platforms.map((platform) => platform.platform).sort(),
    "the platform images and nothing else (no attestation manifests)",
  );
  for (const expected of layout.platforms) {
    const image = pulled.images.find((found) => found.configDigest === expected.configDigest);
    assert.ok(image, `${expected.platform} was pushed`);
    assert.deepEqual(image.layers.map((layer) => layer.diffId), expected.diffIds);
  }
}

/** Checks a pushed image in Docker media types: manifest list, schema 2, gzip layers. */
function assertDockerTypes(pulled: PullResult): void {
  assert.equal(pulled.mediaType, DOCKER_LIST);
  for (const image of pulled.images) {
    assert.equal(image.mediaType, DOCKER_MANIFEST);
    assert.equal(image.configMediaType, DOCKER_CONFIG);
    for (const layer of image.layers) {
      assert.equal(layer.mediaType, DOCKER_GZIP_LAYER);
      assert.equal(layer.compression, "gzip");
    }
  }
}

/** Whether the registry has the tag. */
async function hasTag(registry: TestRegistry, repository: string, tag: string): Promise<boolean> {
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: { accept: `${OCI_INDEX}, ${DOCKER_LIST}, ${OCI_MANIFEST}, ${DOCKER_MANIFEST}` },
  });
  await response.body?.cancel();
  return response.ok;
}

for (const body of ["json", "text"] as const) {
  Deno.test(`SWR refusing OCI (${body} error body): default flags convert to Docker media types and push again`, async () => {
    await withVendor("huawei-swr", body, async (proxy, registry, layout) => {
      const run = await runPusher(["-f", layout.path, "-r", `${proxy.host}/swr/app:1`]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(proxy.refusals.length, 1, "one refused manifest, then Docker media types");
      assert.equal(proxy.refusals[0]?.mediaType, OCI_MANIFEST);
      const digest = printedDigest(run.stdout);
      assert.match(
        run.stderr,
        /refused OCI media types \(HTTP 400: .*fail to parse 'manifest\.json'\)/,
      );
      assert.match(run.stderr, /left out 2 attestation manifest\(s\) of the index/);
      assert.ok(
        run.stderr.includes(`warning: pushed as ${digest}, not ${layout.indexDigest}`),
        run.stderr,
      );
      const pulled = await pullAndVerify(`${registry.host}/swr/app:1`, {
        all: true,
        expectedManifestDigest: digest,
      });
      assertDockerTypes(pulled);
      assertPlatforms(pulled, layout);
    });
  });
}

Deno.test("SWR with --format docker: Docker media types up front, no refused request", async () => {
  await withVendor("huawei-swr", "json", async (proxy, registry, layout) => {
    const run = await runPusher([
      "-f",
      layout.path,
      "-r",
      `${proxy.host}/swr/app:1`,
      "--format",
      "docker",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(proxy.refusals.length, 0);
    assert.deepEqual(proxy.manifestPuts.map((put) => [put.mediaType, put.status]), [
      [DOCKER_MANIFEST, 201],
      [DOCKER_MANIFEST, 201],
      [DOCKER_LIST, 201],
    ]);
    const digest = printedDigest(run.stdout);
    assert.ok(run.stderr.includes(`pushed as ${digest}, not ${layout.indexDigest}`), run.stderr);
    const pulled = await pullAndVerify(`${registry.host}/swr/app:1`, {
      all: true,
      expectedManifestDigest: digest,
    });
    assertDockerTypes(pulled);
    assertPlatforms(pulled, layout);
  });
});

Deno.test("SWR with --format oci: one clear error suggesting --format docker, no tag", async () => {
  await withVendor("huawei-swr", "json", async (proxy, registry, layout) => {
    const run = await runPusher([
      "-f",
      layout.path,
      "-r",
      `${proxy.host}/swr/app:1`,
      "--format",
      "oci",
    ]);
    assert.equal(run.code, EXIT_CODES.registry, run.stderr);
    const errors = run.stderr.split("\n").filter((line) => line.startsWith("error:"));
    assert.equal(errors.length, 1, run.stderr);
    assert.match(
      errors[0] ?? "",
      /fail to parse 'manifest\.json'.*refuses OCI media types.*\(push with --format docker\)$/,
    );
    assert.equal(proxy.refusals.length, 1, "no second attempt");
    assert.equal(await hasTag(registry, "swr/app", "1"), false);
  });
});

Deno.test("ACR refusing attestations: default flags leave them out of the index and push again", async () => {
  await withVendor("aliyun-acr-personal", "json", async (proxy, registry, layout) => {
    const run = await runPusher(["-f", layout.path, "-r", `${proxy.host}/acr/app:1`]);
    assert.equal(run.code, 0, run.stderr);
    // The image manifests after the first go up together, so each attestation manifest may be
    // refused once; nothing else is refused and nothing twice.
    const refused = proxy.refusals.map((refusal) => refusal.path.split("/").pop());
    assert.ok(refused.length >= 1, "an attestation manifest was refused");
    assert.deepEqual(
      refused.filter((digest) => !layout.attestationDigests.includes(digest ?? "")),
      [],
      "only attestation manifests are refused",
    );
    assert.equal(new Set(refused).size, refused.length, "no manifest is refused twice");
    const digest = printedDigest(run.stdout);
    assert.match(run.stderr, /refused the attestation manifest sha256:[0-9a-f]{64} \(HTTP 400: /);
    assert.ok(run.stderr.includes(`pushed as ${digest}, not ${layout.indexDigest}`), run.stderr);
    const pulled = await pullAndVerify(`${registry.host}/acr/app:1`, {
      all: true,
      expectedManifestDigest: digest,
    });
    assert.equal(pulled.mediaType, OCI_INDEX);
    assertPlatforms(pulled, layout);
    const amd64 = pulled.images.find((image) => image.platform === "linux/amd64");
    assert.deepEqual(amd64?.layers.map((layer) => layer.compression), ["zstd", "zstd", "zstd"]);
    const index = await skopeoInspect(`${registry.host}/acr/app:1`);
    const entries = index.manifest["manifests"] as Array<{ annotations?: Record<string, string> }>;
    assert.equal(entries.length, 2);
    assert.ok(
      entries.every((entry) => entry.annotations?.["vnd.docker.reference.type"] === undefined),
    );
  });
});

Deno.test("ACR with --attestations drop: attestations left out up front, no refused request", async () => {
  await withVendor("aliyun-acr-personal", "json", async (proxy, registry, layout) => {
    const run = await runPusher([
      "-f",
      layout.path,
      "-r",
      `${proxy.host}/acr/app:1`,
      "--attestations",
      "drop",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(proxy.refusals.length, 0);
    assert.deepEqual(proxy.manifestPuts.map((put) => [put.mediaType, put.status]), [
      [OCI_MANIFEST, 201],
      [OCI_MANIFEST, 201],
      [OCI_INDEX, 201],
    ]);
    assert.match(
      run.stderr,
      /left out 2 attestation manifest\(s\) of the index: --attestations drop/,
    );
    const pulled = await pullAndVerify(`${registry.host}/acr/app:1`, {
      all: true,
      expectedManifestDigest: printedDigest(run.stdout),
    });
    assert.equal(pulled.mediaType, OCI_INDEX);
    assertPlatforms(pulled, layout);
  });
});

Deno.test("a registry that takes attestations keeps them, pointing at the rewritten manifests", async () => {
  await using dir = await tempDir("vendor-");
  const layout = await writeBuildkitLayout(`${dir.path}/buildkit.tar`);
  const registry = await startRegistry();
  try {
    const run = await runPusher(["-f", layout.path, "-r", `${registry.host}/plain/app:1`]);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stderr, /warning/);
    const index = await skopeoInspect(`${registry.host}/plain/app:1`);
    const entries = index.manifest["manifests"] as Array<
      { digest: string; annotations?: Record<string, string> }
    >;
    assert.equal(entries.length, 4);
    const children = new Set(entries.slice(0, 2).map((entry) => entry.digest));
    const subjects = entries.slice(2).map((entry) => entry.annotations ?? {});
    for (const annotations of subjects) {
      assert.equal(annotations["vnd.docker.reference.type"], "attestation-manifest");
      assert.ok(children.has(annotations["vnd.docker.reference.digest"] ?? ""), "subject pushed");
    }
    const arm64 = layout.platforms[1];
    assert.ok(
      !children.has(arm64?.manifestDigest ?? ""),
      "the uncompressed platform was rewritten",
    );
    await pullAndVerify(`${registry.host}/plain/app:1`, { all: true });
  } finally {
    await registry.stop();
  }
});

Deno.test("SWR refusing OCI, archive read in one pass: a compressed file is read again, stdin cannot be", async () => {
  await withVendor("huawei-swr", "json", async (proxy, registry, layout) => {
    const compressed = `${layout.path}.zst`;
    const zstd = await new Deno.Command("zstd", {
      args: ["-q", "-f", layout.path, "-o", compressed],
    })
      .output();
    assert.equal(zstd.code, 0);
    const run = await runPusher(["-f", compressed, "-r", `${proxy.host}/swr/zst:1`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(proxy.refusals.length, 1);
    const pulled = await pullAndVerify(`${registry.host}/swr/zst:1`, {
      all: true,
      expectedManifestDigest: printedDigest(run.stdout),
    });
    assertDockerTypes(pulled);
    assertPlatforms(pulled, layout);

    const piped = await runPusher(["-f", "-", "-r", `${proxy.host}/swr/stdin:1`], {
      stdin: await Deno.readFile(layout.path),
    });
    assert.equal(piped.code, EXIT_CODES.input, piped.stderr);
    assert.match(
      piped.stderr,
      /^error: .*re-encoded to gzip for Docker media types, and stdin cannot be read again \(.*--format docker\)$/m,
    );
    assert.equal(await hasTag(registry, "swr/stdin", "1"), false);
    const upFront = await runPusher(
      ["-f", "-", "-r", `${proxy.host}/swr/stdin:1`, "--format", "docker"],
      { stdin: await Deno.readFile(layout.path) },
    );
    assert.equal(upFront.code, 0, upFront.stderr);
    assertPlatforms(await pullAndVerify(`${registry.host}/swr/stdin:1`, { all: true }), layout);
  });
});
