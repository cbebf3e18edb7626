/**
 * The download side against real Distribution: an image put there by skopeo (from a sample
 * docker-save archive) is read back with the registry client — manifest by tag and digest, every
 * blob through the resumable fetcher — anonymously and behind htpasswd Basic auth; and a fetch
 * killed mid-blob (SIGKILL in a child process) continues from its `.partial` file.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { PusherError } from "../../lib/errors.ts";
import { fetchBlob, type FetchBlobOptions } from "../../lib/pull/blob_fetch.ts";
import { stagingPaths } from "../../lib/pull/partial_file.ts";
import { RegistryClient, type RegistryClientOptions } from "../../lib/registry/client.ts";
import type { Credentials } from "../../lib/credentials/credentials.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { type SampleArchive, writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir, tempDirUntilExit } from "../helpers/temp_dir.ts";

const USER = "puller";
const PASSWORD = "pull-Pa55:word";
const RANDOM_BYTES = 3 * 1024 * 1024;

interface Descriptor {
  digest: string;
  size: number;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function skopeoCopy(archive: string, target: string, creds?: string): Promise<void> {
  const output = await new Deno.Command("skopeo", {
    args: [
      "--insecure-policy",
      "copy",
      "--dest-tls-verify=false",
      ...(creds === undefined ? [] : ["--dest-creds", creds]),
      `docker-archive:${archive}`,
      `docker://${target}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(output.success, `skopeo copy failed: ${new TextDecoder().decode(output.stderr)}`);
}

function reader(
  registry: TestRegistry,
  repository: string,
  extra: Partial<RegistryClientOptions> = {},
): RegistryClient {
  return new RegistryClient({
    reference: { registry: registry.host, apiBase: new URL(registry.url), repository },
    access: "pull",
    ...extra,
  });
}

function blobsOf(manifestBytes: Uint8Array): Descriptor[] {
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as {
    config: Descriptor;
    layers: Descriptor[];
  };
  return [manifest.config, ...manifest.layers];
}

function fetchOptions(
  client: RegistryClient,
  blob: Descriptor,
  stagingDir: string,
): FetchBlobOptions {
  return {
    source: client,
    digest: blob.digest,
    size: blob.size,
    stagingDir,
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 100 },
    stallTimeoutMs: 30_000,
  };
}

/**
 * Reads the manifest by tag and by digest and fetches every blob into a fresh staging directory,
 * checking each file's size and digest independently of the fetcher.
 */
async function readImage(
  client: RegistryClient,
  tag: string,
  sample: SampleArchive,
): Promise<void> {
  const head = await client.headManifest(tag);
  const manifest = await client.getManifest(tag);
  assert.equal(head?.digest, manifest.digest);
  assert.equal(head?.mediaType, manifest.mediaType);
  assert.equal(manifest.digest, sha256(manifest.bytes));
  const byDigest = await client.getManifest(manifest.digest);
  assert.deepEqual(byDigest.bytes, manifest.bytes);
  const blobs = blobsOf(manifest.bytes);
  assert.equal(blobs[0]?.digest, sample.configDigest);
  assert.equal(blobs.length, 1 + sample.diffIds.length);
  await using staging = await tempDir("pull-staging-");
  for (const blob of blobs) {
    const fetched = await fetchBlob(fetchOptions(client, blob, staging.path));
    const bytes = await Deno.readFile(fetched.path);
    assert.equal(bytes.byteLength, blob.size);
    assert.equal(sha256(bytes), blob.digest);
  }
  const stored = [...Deno.readDirSync(join(staging.path, "blobs", "sha256"))].map((e) => e.name);
  assert.deepEqual(stored.sort(), blobs.map((blob) => blob.digest.slice(7)).sort());
}

let samplePromise: Promise<SampleArchive> | undefined;

/** One sample archive for the file's tests (removed when the process unloads). */
function sample(): Promise<SampleArchive> {
  samplePromise ??= (async () => {
    const dir = await tempDirUntilExit("pull-sample-");
    return await writeSampleDockerArchive(join(dir, "sample.tar"), {
      layers: 2,
      randomBytes: RANDOM_BYTES,
      name: "pull/sample:v1",
    });
  })();
  return samplePromise;
}

Deno.test("anonymous: the manifest by tag and digest, and every blob, read back verified", async () => {
  const archive = await sample();
  const registry = await startRegistry();
  const client = reader(registry, "pull/sample");
  try {
    await skopeoCopy(archive.path, `${registry.host}/pull/sample:v1`);
    await readImage(client, "v1", archive);
  } finally {
    client.close();
    await registry.stop();
  }
});

Deno.test("htpasswd Basic auth: a pull-only client with credentials reads the image; none exits 4", async () => {
  const archive = await sample();
  const registry = await startRegistry({ htpasswd: { [USER]: PASSWORD } });
  const credentials: Credentials = { username: USER, password: PASSWORD };
  const client = reader(registry, "secure/sample", { credentials });
  const anonymous = reader(registry, "secure/sample");
  try {
    await skopeoCopy(archive.path, `${registry.host}/secure/sample:v1`, `${USER}:${PASSWORD}`);
    await readImage(client, "v1", archive);
    await assert.rejects(anonymous.getManifest("v1"), (error) => {
      assert.ok(error instanceof PusherError);
      assert.equal(error.exitCode, 4);
      return true;
    });
  } finally {
    client.close();
    anonymous.close();
    await registry.stop();
  }
});

Deno.test("a fetch killed mid-blob resumes from its .partial file and downloads only the rest", async () => {
  const archive = await sample();
  const registry = await startRegistry();
  const client = reader(registry, "pull/killed");
  await using staging = await tempDir("pull-staging-");
  try {
    await skopeoCopy(archive.path, `${registry.host}/pull/killed:v1`);
    const blobs = blobsOf((await client.getManifest("v1")).bytes);
    const largest = blobs.reduce((a, b) => (b.size > a.size ? b : a));
    assert.ok(largest.size >= RANDOM_BYTES, `largest blob is ${largest.size} bytes`);
    const killAfter = Math.floor(largest.size / 3);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", "--no-prompt"],
        new URL("../helpers/blob_fetch_child.ts", import.meta.url).pathname,
        ...[registry.url, "pull/killed", largest.digest, String(largest.size), staging.path],
        String(killAfter),
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
    assert.equal(status.signal, "SIGKILL", `the child was not killed: ${stderr}`);
    const paths = stagingPaths(staging.path, largest.digest);
    const left = (await Deno.stat(paths.partial)).size;
    assert.ok(left >= killAfter && left < largest.size, `${left} bytes were left`);

    const resumed = await fetchBlob(fetchOptions(client, largest, staging.path));
    assert.equal(resumed.resumedFrom, left);
    assert.equal(resumed.downloaded, largest.size - left);
    assert.equal(resumed.requests, 1);
    assert.equal(sha256(await Deno.readFile(resumed.path)), largest.digest);
  } finally {
    client.close();
    await registry.stop();
  }
});
