/**
 * The demo's own pull-back check, needing nothing but Deno: fetch the manifest and every blob from
 * the registry, check each digest, and check that each layer decompresses to its config diff_id.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";

/** What the check found. */
export interface PulledImage {
  /** Digest of the manifest as served. */
  manifestDigest: string;
  /** Its media type. */
  mediaType: string;
  /** The config digest. */
  configDigest: string;
  /** Each layer: digest, size, and the diff_id its content hashes to. */
  layers: { digest: string; size: number; diffId: string }[];
}

const ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function fetchBytes(url: string, accept?: string): Promise<Uint8Array> {
  const response = await fetch(url, accept ? { headers: { accept } } : {});
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function uncompressedDigest(blob: Uint8Array, mediaType: string): Promise<string> {
  if (!mediaType.endsWith("gzip")) return sha256(blob);
  const hash = createHash("sha256");
  for await (const chunk of Readable.from([blob]).pipe(createGunzip())) {
    hash.update(chunk as Uint8Array);
  }
  return `sha256:${hash.digest("hex")}`;
}

/** Pulls `repository:tag` from a plain-HTTP registry at `base` and checks every digest. */
export async function pullAndCheck(
  base: string,
  repository: string,
  tag: string,
): Promise<PulledImage> {
  const manifestBytes = await fetchBytes(`${base}/v2/${repository}/manifests/${tag}`, ACCEPT);
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as {
    mediaType: string;
    config: { digest: string };
    layers: { digest: string; size: number; mediaType: string }[];
  };
  const configBytes = await fetchBytes(`${base}/v2/${repository}/blobs/${manifest.config.digest}`);
  if (sha256(configBytes) !== manifest.config.digest) throw new Error("config digest mismatch");
  const config = JSON.parse(new TextDecoder().decode(configBytes)) as {
    rootfs: { diff_ids: string[] };
  };
  const layers: PulledImage["layers"] = [];
  for (const [index, layer] of manifest.layers.entries()) {
    const blob = await fetchBytes(`${base}/v2/${repository}/blobs/${layer.digest}`);
    if (sha256(blob) !== layer.digest) throw new Error(`layer ${layer.digest} digest mismatch`);
    if (blob.length !== layer.size) throw new Error(`layer ${layer.digest} size mismatch`);
    const diffId = await uncompressedDigest(blob, layer.mediaType);
    if (diffId !== config.rootfs.diff_ids[index]) {
      throw new Error(`layer ${index} decompresses to ${diffId}, not its diff_id`);
    }
    layers.push({ digest: layer.digest, size: layer.size, diffId });
  }
  return {
    manifestDigest: sha256(manifestBytes),
    mediaType: manifest.mediaType,
    configDigest: manifest.config.digest,
    layers,
  };
}
