/**
 * Pull-back verification: copies an image out of a registry with skopeo (an independent client)
 * and checks it byte by byte — manifest, config, every blob's digest and size, and every layer's
 * uncompressed digest against the config's `rootfs.diff_ids` (artifact manifests, whose config
 * lists no diff_ids and whose blobs are not tar layers, are checked blob by blob).
 *
 * ```ts
 * const found = await pullAndVerify(`${registry.host}/demo:1`, { expectedDiffIds: diffIds });
 * found.images[0]?.layers.map((layer) => layer.compression); // ["gzip", "gzip"]
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { PusherError } from "../../lib/errors.ts";
import { tempDir, withTempFile } from "./temp_dir.ts";

/** Options for {@link pullAndVerify}. */
export interface PullOptions {
  /** Verify the registry's TLS certificate; false by default (test registries speak plain HTTP). */
  tlsVerify?: boolean;
  /** A directory of `*.crt` CA certificates to trust (skopeo's `--src-cert-dir`). */
  certDir?: string;
  /** `user:password` for the registry. */
  creds?: string;
  /** Copy every image of an index (`skopeo copy --all`), not just the host's platform. */
  all?: boolean;
  /** The digest the top-level manifest must have. */
  expectedManifestDigest?: string;
  /** The config digest the image must have (for an index: one of its images). */
  expectedConfigDigest?: string;
  /**
   * The diff_ids the image must have, in order (for an index: the image with the expected config,
   * or the first one).
   */
  expectedDiffIds?: readonly string[];
}

/** Layer compression, detected from the blob's magic bytes. */
export type LayerCompression = "gzip" | "zstd" | "none";

/** A layer that was checked. */
export interface VerifiedLayer {
  /** Blob digest. */
  digest: string;
  /** Media type in the manifest. */
  mediaType: string;
  /** Blob size. */
  size: number;
  /** Compression found in the blob. */
  compression: LayerCompression;
  /** Digest of the uncompressed layer, equal to the config's diff_id. */
  diffId: string;
}

/** An image manifest that was checked. */
export interface VerifiedImage {
  /** Digest of its manifest. */
  manifestDigest: string;
  /** Media type of its manifest. */
  mediaType: string;
  /** Config blob digest. */
  configDigest: string;
  /** Config media type. */
  configMediaType: string;
  /** `os/architecture[/variant]` from the config. */
  platform: string;
  /** Its layers, in order. */
  layers: VerifiedLayer[];
}

/** What {@link pullAndVerify} found. */
export interface PullResult {
  /** Digest of the top-level manifest. */
  manifestDigest: string;
  /** Media type of the top-level manifest (an image manifest or an index). */
  mediaType: string;
  /** The images checked: one for an image manifest, every copied child for an index. */
  images: VerifiedImage[];
}

/** The raw manifest of a remote image, as {@link skopeoInspect} returns it. */
export interface RawManifest {
  /** The exact bytes the registry served. */
  raw: Uint8Array;
  /** Parsed JSON. */
  manifest: Record<string, unknown>;
  /** `mediaType` of the manifest (inferred when the field is absent). */
  mediaType: string;
  /** The digest skopeo computes for it. */
  digest: string;
}

/** Options for {@link skopeoInspect}. */
export interface InspectOptions {
  /** Verify the registry's TLS certificate; false by default. */
  tlsVerify?: boolean;
  /** A directory of `*.crt` CA certificates to trust (skopeo's `--cert-dir`). */
  certDir?: string;
  /** `user:password` for the registry. */
  creds?: string;
}

const INDEX_TYPES = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);

function fail(message: string): never {
  throw new PusherError("verify", message);
}

async function skopeo(args: string[]): Promise<Uint8Array> {
  const output = await new Deno.Command("skopeo", {
    args: ["--insecure-policy", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim().split("\n").at(-1) ?? "";
    throw new PusherError("verify", `skopeo ${args[0]} failed: ${stderr}`);
  }
  return output.stdout;
}

function dockerReference(reference: string): string {
  return reference.startsWith("docker://") ? reference : `docker://${reference}`;
}

function optionArgs(flag: string, value: string | undefined): string[] {
  return value === undefined ? [] : [flag, value];
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    fail(`${what} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function mediaTypeOf(manifest: Record<string, unknown>): string {
  if (typeof manifest.mediaType === "string") return manifest.mediaType;
  return Array.isArray(manifest.manifests)
    ? "application/vnd.oci.image.index.v1+json"
    : "application/vnd.oci.image.manifest.v1+json";
}

interface Descriptor {
  digest: string;
  size: number;
  mediaType: string;
}

function descriptorAt(value: unknown, where: string): Descriptor {
  const record = (typeof value === "object" && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  const { digest, size, mediaType } = record;
  if (typeof digest !== "string" || !/^sha256:[a-f0-9]{64}$/.test(digest)) {
    fail(`${where} has no sha256 digest`);
  }
  if (typeof size !== "number") fail(`${where} (${digest}) has no size`);
  return { digest, size, mediaType: typeof mediaType === "string" ? mediaType : "" };
}

function blobPath(dir: string, digest: string): string {
  return `${dir}/${digest.slice("sha256:".length)}`;
}

async function hashStream(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

/** Whether 4 bytes are the magic of a zstd skippable frame (0x184D2A50 to 0x184D2A5F, LE). */
function isSkippableFrame(head: Uint8Array): boolean {
  return ((head[0] ?? 0) & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d &&
    head[3] === 0x18;
}

async function detectCompression(path: string): Promise<LayerCompression> {
  using file = await Deno.open(path);
  const head = new Uint8Array(4);
  const read = (await file.read(head)) ?? 0;
  if (read >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (read === 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) {
    return "zstd";
  }
  if (read === 4 && isSkippableFrame(head)) return "zstd";
  return "none";
}

/**
 * Where the first zstd data frame of a file starts, after any skippable frames (magic, 32-bit LE
 * length, payload). Deno 2.9's `node:zlib` zstd decoder stops at a skippable frame and yields
 * nothing for a stream that opens with one, so those frames are skipped here before decoding.
 */
async function zstdDataStart(path: string): Promise<number> {
  using file = await Deno.open(path);
  const header = new Uint8Array(8);
  let offset = 0;
  for (;;) {
    await file.seek(offset, Deno.SeekMode.Start);
    const read = (await file.read(header)) ?? 0;
    if (read < 8 || !isSkippableFrame(header)) return offset;
    offset += 8 + new DataView(header.buffer).getUint32(4, true);
  }
}

async function uncompressedDigest(path: string, compression: LayerCompression): Promise<string> {
  if (compression === "none") return await hashStream(createReadStream(path));
  const start = compression === "zstd" ? await zstdDataStart(path) : 0;
  const source = createReadStream(path, { start });
  const decompress = compression === "gzip" ? createGunzip() : createZstdDecompress();
  source.on("error", (error) => decompress.destroy(error));
  return await hashStream(source.pipe(decompress));
}

/** Checks that the blob file exists, has the descriptor's size and hashes to its digest. */
async function verifyBlob(dir: string, descriptor: Descriptor, what: string): Promise<string> {
  const path = blobPath(dir, descriptor.digest);
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch {
    return fail(`${what} ${descriptor.digest} was not pulled`);
  }
  if (size !== descriptor.size) {
    fail(`${what} ${descriptor.digest} has ${size} bytes, the manifest says ${descriptor.size}`);
  }
  const actual = await hashStream(createReadStream(path));
  if (actual !== descriptor.digest) fail(`${what} ${descriptor.digest} hashes to ${actual}`);
  return path;
}

/** Whether a layer media type names a tar layer (Docker or OCI, any compression). */
function isTarLayer(mediaType: string): boolean {
  return /^application\/vnd\.(oci\.image\.layer\.(nondistributable\.)?v1\.tar|docker\.image\.rootfs\.(foreign\.)?diff\.tar)/
    .test(mediaType);
}

/**
 * An artifact manifest (its config lists no diff_ids and none of its blobs is a tar layer, e.g.
 * buildx `builder` references): every blob is checked by size and digest; nothing is unpacked.
 */
async function verifyArtifact(
  dir: string,
  manifestDigest: string,
  mediaType: string,
  config: Descriptor,
  descriptors: Descriptor[],
): Promise<VerifiedImage> {
  const layers: VerifiedLayer[] = [];
  for (const [i, descriptor] of descriptors.entries()) {
    const path = await verifyBlob(dir, descriptor, `blob ${i}`);
    layers.push({
      ...descriptor,
      compression: "none",
      diffId: await hashStream(createReadStream(path)),
    });
  }
  return {
    manifestDigest,
    mediaType,
    configDigest: config.digest,
    configMediaType: config.mediaType,
    platform: "",
    layers,
  };
}

async function verifyImage(
  dir: string,
  manifestBytes: Uint8Array,
  manifestDigest: string,
): Promise<VerifiedImage> {
  const manifest = parseJson(manifestBytes, `manifest ${manifestDigest}`);
  const mediaType = mediaTypeOf(manifest);
  if (manifest.schemaVersion !== 2) fail(`manifest ${manifestDigest} is not schemaVersion 2`);
  const config = descriptorAt(manifest.config, `config of ${manifestDigest}`);
  if (!Array.isArray(manifest.layers)) fail(`manifest ${manifestDigest} has no layers`);
  const descriptors = manifest.layers.map((layer, i) =>
    descriptorAt(layer, `layers[${i}] of ${manifestDigest}`)
  );
  const configPath = await verifyBlob(dir, config, "config");
  const configJson = parseJson(await Deno.readFile(configPath), `config ${config.digest}`);
  const rootfs = configJson.rootfs as { diff_ids?: unknown } | undefined;
  const diffIds = rootfs?.diff_ids;
  if (diffIds === undefined && descriptors.every((layer) => !isTarLayer(layer.mediaType))) {
    return await verifyArtifact(dir, manifestDigest, mediaType, config, descriptors);
  }
  if (!Array.isArray(diffIds) || diffIds.length !== descriptors.length) {
    fail(
      `config ${config.digest} lists ${Array.isArray(diffIds) ? diffIds.length : "no"} diff_ids ` +
        `for ${descriptors.length} layers`,
    );
  }
  const layers: VerifiedLayer[] = [];
  for (const [i, descriptor] of descriptors.entries()) {
    const path = await verifyBlob(dir, descriptor, `layer ${i}`);
    const compression = await detectCompression(path);
    const diffId = await uncompressedDigest(path, compression);
    if (diffId !== diffIds[i]) {
      fail(
        `layer ${i} ${descriptor.digest} (${compression}) uncompresses to ${diffId}, ` +
          `the config's diff_id is ${String(diffIds[i])}`,
      );
    }
    layers.push({
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      size: descriptor.size,
      compression,
      diffId,
    });
  }
  const platform = [configJson.os, configJson.architecture, configJson.variant]
    .filter((part) => typeof part === "string").join("/");
  return {
    manifestDigest,
    mediaType,
    configDigest: config.digest,
    configMediaType: config.mediaType,
    platform,
    layers,
  };
}

function checkExpectations(result: PullResult, options: PullOptions): void {
  const { expectedManifestDigest, expectedConfigDigest, expectedDiffIds } = options;
  if (expectedManifestDigest !== undefined && result.manifestDigest !== expectedManifestDigest) {
    fail(`manifest digest is ${result.manifestDigest}, expected ${expectedManifestDigest}`);
  }
  let image = result.images[0];
  if (expectedConfigDigest !== undefined) {
    image = result.images.find((candidate) => candidate.configDigest === expectedConfigDigest);
    if (!image) {
      const found = result.images.map((candidate) => candidate.configDigest).join(", ");
      fail(`config digest is ${found}, expected ${expectedConfigDigest}`);
    }
  }
  if (expectedDiffIds !== undefined) {
    const found = image?.layers.map((layer) => layer.diffId) ?? [];
    if (found.join(",") !== expectedDiffIds.join(",")) {
      fail(`diff_ids are [${found.join(", ")}], expected [${expectedDiffIds.join(", ")}]`);
    }
  }
}

/**
 * Runs `skopeo copy docker://REF dir:TMP` (with `--all` when asked) and verifies what arrived:
 * the manifest parses; every blob file has its descriptor's size and digest; every layer,
 * decompressed by its magic bytes (gzip, zstd or none), hashes to the config's diff_id at its
 * position; and the expectations in `options` hold. Throws a `verify` {@link PusherError} naming
 * the first mismatch. The temporary directory is removed afterwards.
 */
export async function pullAndVerify(
  reference: string,
  options: PullOptions = {},
): Promise<PullResult> {
  await using temp = await tempDir("pull_verify_");
  const dir = temp.path;
  await skopeo([
    "copy",
    `--src-tls-verify=${options.tlsVerify ?? false}`,
    ...optionArgs("--src-cert-dir", options.certDir),
    ...optionArgs("--src-creds", options.creds),
    ...(options.all ? ["--all"] : []),
    dockerReference(reference),
    `dir:${dir}`,
  ]);
  const topBytes = await Deno.readFile(`${dir}/manifest.json`);
  const top = parseJson(topBytes, `manifest of ${reference}`);
  const manifestDigest = sha256(topBytes);
  const mediaType = mediaTypeOf(top);
  const images: VerifiedImage[] = [];
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(top.manifests)) fail(`index of ${reference} has no manifests`);
    for (const [i, entry] of top.manifests.entries()) {
      const child = descriptorAt(entry, `manifests[${i}] of ${reference}`);
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(`${blobPath(dir, child.digest)}.manifest.json`);
      } catch {
        if (options.all) fail(`child manifest ${child.digest} was not pulled`);
        continue;
      }
      if (sha256(bytes) !== child.digest) fail(`child manifest ${child.digest} does not match`);
      images.push(await verifyImage(dir, bytes, child.digest));
    }
  } else {
    images.push(await verifyImage(dir, topBytes, manifestDigest));
  }
  const result = { manifestDigest, mediaType, images };
  checkExpectations(result, options);
  return result;
}

/**
 * The raw manifest of `reference` (`skopeo inspect --raw`) and its digest
 * (`skopeo manifest-digest`), without conversion.
 */
export async function skopeoInspect(
  reference: string,
  options: InspectOptions = {},
): Promise<RawManifest> {
  const raw = await skopeo([
    "inspect",
    "--raw",
    `--tls-verify=${options.tlsVerify ?? false}`,
    ...optionArgs("--cert-dir", options.certDir),
    ...optionArgs("--creds", options.creds),
    dockerReference(reference),
  ]);
  const digest = await withTempFile(
    "manifest.json",
    raw,
    async (file) => new TextDecoder().decode(await skopeo(["manifest-digest", file])).trim(),
  );
  const manifest = parseJson(raw, `manifest of ${reference}`);
  return { raw, manifest, mediaType: mediaTypeOf(manifest), digest };
}
