/**
 * Test fixtures: small deterministic images (a few real-ish files, one ~1.5 MiB layer of seeded
 * pseudo-random text so compression matters) written as archives in every layout the reader
 * supports. Real-tool layouts come from skopeo; docker save layouts are written by hand to mirror
 * docker's byte layout.
 *
 * ```ts
 * const fixtures = await sharedFixtures();
 * const info = fixtures["docker-archive"]; // info.path, info.configDigest, info.diffIds, ...
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { gzipSync, zstdCompressSync } from "node:zlib";
import type { Compression, ManifestFamily } from "../../lib/oci/media_types.ts";
import { tempDirUntilExit } from "./temp_dir.ts";

// ---------------------------------------------------------------------------------------------
// A small tar writer
// ---------------------------------------------------------------------------------------------

/** One entry for {@link writeTar}. */
export interface TarEntrySpec {
  /** Entry name as written (directories may end with `/`). */
  name: string;
  /** Entry type; `file` by default. */
  type?: "file" | "directory" | "symlink" | "hardlink";
  /** File contents. */
  data?: Uint8Array | string;
  /** Link target (symlinks, hardlinks). */
  linkname?: string;
  /** Permission bits; 0o644 for files, 0o755 for directories by default. */
  mode?: number;
  /**
   * How a name or link target too long for the 100-byte field is written: `pax` records (default,
   * after trying the ustar prefix), or GNU `././@LongLink` entries.
   */
  longNames?: "pax" | "gnu";
  /** Write the size field in base-256 (as GNU tar does for sizes of 8 GiB and more). */
  base256Size?: boolean;
}

const encoder = new TextEncoder();
const MTIME = 1700000000;

function bytesOf(data: Uint8Array | string | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return typeof data === "string" ? encoder.encode(data) : data;
}

function writeString(block: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > length) throw new Error(`tar field too long: ${value}`);
  block.set(bytes, offset);
}

function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  writeString(block, offset, length, value.toString(8).padStart(length - 1, "0"));
}

function writeBase256(block: Uint8Array, offset: number, length: number, value: number): void {
  let rest = value;
  for (let i = offset + length - 1; i > offset; i--) {
    block[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  block[offset] = 0x80;
}

function headerBlock(
  name: string,
  typeflag: string,
  size: number,
  options: { linkname?: string; mode?: number; prefix?: string; base256Size?: boolean },
): Uint8Array {
  const block = new Uint8Array(512);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, options.mode ?? 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  if (options.base256Size) writeBase256(block, 124, 12, size);
  else writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, MTIME);
  block.fill(0x20, 148, 156);
  block[156] = typeflag.charCodeAt(0);
  writeString(block, 157, 100, options.linkname ?? "");
  writeString(block, 257, 6, "ustar\0");
  writeString(block, 263, 2, "00");
  writeString(block, 265, 32, "root");
  writeString(block, 297, 32, "root");
  writeString(block, 345, 155, options.prefix ?? "");
  let sum = 0;
  for (const byte of block) sum += byte;
  writeString(block, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

function padded(data: Uint8Array): Uint8Array[] {
  const rest = data.length % 512;
  return rest === 0 ? [data] : [data, new Uint8Array(512 - rest)];
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = encoder.encode(body).length;
  while (`${length}${body}`.length !== length) length = encoder.encode(`${length}${body}`).length;
  return `${length}${body}`;
}

function splitUstar(name: string): { prefix: string; name: string } | undefined {
  for (let i = name.indexOf("/"); i >= 0; i = name.indexOf("/", i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (encoder.encode(prefix).length <= 155 && encoder.encode(rest).length <= 100 && rest) {
      return { prefix, name: rest };
    }
  }
  return undefined;
}

function entryBlocks(entry: TarEntrySpec): Uint8Array[] {
  const type = entry.type ?? "file";
  const data = type === "file" ? bytesOf(entry.data) : new Uint8Array(0);
  const typeflag = { file: "0", directory: "5", symlink: "2", hardlink: "1" }[type];
  const linkname = entry.linkname ?? "";
  const blocks: Uint8Array[] = [];
  let name = entry.name;
  let prefix = "";
  let headerLink = linkname;
  const longName = encoder.encode(name).length > 100;
  const longLink = encoder.encode(linkname).length > 100;
  if (entry.longNames === "gnu") {
    if (longLink) {
      const body = encoder.encode(`${linkname}\0`);
      blocks.push(headerBlock("././@LongLink", "K", body.length, {}), ...padded(body));
      headerLink = linkname.slice(0, 100);
    }
    if (longName) {
      const body = encoder.encode(`${name}\0`);
      blocks.push(headerBlock("././@LongLink", "L", body.length, {}), ...padded(body));
      name = name.slice(0, 100);
    }
  } else {
    const split = longName ? splitUstar(name) : undefined;
    if (split !== undefined && !longLink) {
      name = split.name;
      prefix = split.prefix;
    } else if (longName || longLink) {
      let records = "";
      if (longName) records += paxRecord("path", name);
      if (longLink) records += paxRecord("linkpath", linkname);
      const body = encoder.encode(records);
      blocks.push(headerBlock("PaxHeaders/entry", "x", body.length, {}), ...padded(body));
      name = name.slice(0, 100);
      headerLink = linkname.slice(0, 100);
    }
  }
  const options: { linkname: string; mode: number; prefix: string; base256Size?: boolean } = {
    linkname: headerLink,
    mode: entry.mode ?? (type === "directory" ? 0o755 : 0o644),
    prefix,
  };
  if (entry.base256Size) options.base256Size = true;
  blocks.push(headerBlock(name, typeflag, data.length, options));
  if (data.length > 0) blocks.push(...padded(data));
  return blocks;
}

/** Joins byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Writes a tar archive (ustar, with PAX or GNU long names) ending with two zero blocks. */
export function writeTar(entries: TarEntrySpec[]): Uint8Array {
  return concat([...entries.flatMap(entryBlocks), new Uint8Array(1024)]);
}

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

/** `sha256:<hex>` of some bytes. */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function hexOf(digest: string): string {
  return digest.slice("sha256:".length);
}

/** Seeded pseudo-random text: varied enough to be realistic, repetitive enough to compress. */
function pseudoRandomText(seed: number, size: number): Uint8Array {
  const words = "alpha beta gamma delta layer image push blob digest tar zstd gzip registry".split(
    " ",
  );
  const out = new Uint8Array(size);
  let state = seed >>> 0 || 1;
  const next = (): number => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  let offset = 0;
  while (offset < size) {
    const r = next();
    const piece = r % 4 === 0
      ? (r >>> 8).toString(36)
      : `${words[(r >>> 4) % words.length]}${r % 7 === 0 ? "\n" : " "}`;
    const bytes = encoder.encode(piece);
    out.set(bytes.subarray(0, size - offset), offset);
    offset += bytes.length;
  }
  return out;
}

interface Layer {
  tar: Uint8Array;
  diffId: string;
  gzip: Uint8Array;
  gzipDigest: string;
  comment: string;
}

function layer(entries: TarEntrySpec[], comment: string): Layer {
  const tar = writeTar(entries);
  const gzip = new Uint8Array(gzipSync(tar, { level: 6 }));
  return { tar, diffId: digestOf(tar), gzip, gzipDigest: digestOf(gzip), comment };
}

interface Image {
  layers: Layer[];
  config: Uint8Array;
  configDigest: string;
  os: string;
  architecture: string;
  variant?: string;
}

function platformOf(image: Image): string {
  return [image.os, image.architecture, image.variant].filter((part) => part).join("/");
}

function image(architecture: string, variant: string | undefined, layers: Layer[]): Image {
  const config: Record<string, unknown> = {
    architecture,
    ...(variant === undefined ? {} : { variant }),
    os: "linux",
    created: "2024-01-01T00:00:00Z",
    config: { Env: ["PATH=/usr/bin:/bin"], Cmd: ["/bin/hello"], WorkingDir: "/" },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({ created: "2024-01-01T00:00:00Z", created_by: l.comment })),
  };
  const bytes = encoder.encode(JSON.stringify(config));
  const result: Image = {
    layers,
    config: bytes,
    configDigest: digestOf(bytes),
    os: "linux",
    architecture,
  };
  if (variant !== undefined) result.variant = variant;
  return result;
}

function baseLayer(): Layer {
  return layer([
    { name: "bin/", type: "directory" },
    { name: "bin/hello", data: "#!/bin/sh\necho hello from the fixture\n", mode: 0o755 },
    { name: "bin/hi", type: "symlink", linkname: "hello" },
    { name: "bin/hello2", type: "hardlink", linkname: "bin/hello" },
    { name: "etc/", type: "directory" },
    { name: "etc/hostname", data: "fixture\n" },
    { name: "etc/os-release", data: 'NAME="Fixture Linux"\nID=fixture\nVERSION_ID=1.0\n' },
  ], "ADD base.tar /");
}

function dataLayer(seed: number, size: number): Layer {
  return layer([
    { name: "usr/", type: "directory" },
    { name: "usr/share/", type: "directory" },
    { name: "usr/share/fixture/", type: "directory" },
    { name: "usr/share/fixture/data.txt", data: pseudoRandomText(seed, size) },
  ], `RUN generate-data --seed ${seed}`);
}

function appLayer(architecture: string): Layer {
  const deep = `opt/app/${"nested-directory/".repeat(8)}settings-for-${architecture}.conf`;
  return layer([
    { name: "etc/", type: "directory" },
    { name: "etc/.wh.hostname", data: "" },
    { name: "etc/app.conf", data: `arch=${architecture}\nlog=info\n` },
    { name: deep, data: `# ${architecture}\n` },
  ], "COPY app.conf /etc/");
}

interface Images {
  app: Image;
  appArm: Image;
  tools: Image;
}

function buildImages(): Images {
  const base = baseLayer();
  return {
    app: image("amd64", undefined, [base, dataLayer(42, 1536 * 1024), appLayer("amd64")]),
    appArm: image("arm64", "v8", [base, dataLayer(7, 256 * 1024), appLayer("arm64")]),
    tools: image("amd64", undefined, [
      base,
      layer([{ name: "usr/bin/tool", data: "#!/bin/sh\necho tool\n", mode: 0o755 }], "ADD tool"),
    ]),
  };
}

// ---------------------------------------------------------------------------------------------
// OCI documents
// ---------------------------------------------------------------------------------------------

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}';

interface Blob {
  bytes: Uint8Array;
  digest: string;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

function blob(bytes: Uint8Array): Blob {
  return { bytes, digest: digestOf(bytes) };
}

function descriptorOf(mediaType: string, item: Blob): Descriptor {
  return { mediaType, digest: item.digest, size: item.bytes.length };
}

function platformField(img: Image): NonNullable<Descriptor["platform"]> {
  return {
    architecture: img.architecture,
    os: img.os,
    ...(img.variant === undefined ? {} : { variant: img.variant }),
  };
}

/** An OCI manifest for an image, with its blobs (config, layers, manifest). */
interface OciImage {
  manifest: Blob;
  blobs: Blob[];
  layerDigests: string[];
}

function ociImage(img: Image, compressed: boolean, configPlatform = false): OciImage {
  const layers = img.layers.map((l) => blob(compressed ? l.gzip : l.tar));
  const config = {
    ...descriptorOf(OCI_CONFIG, blob(img.config)),
    ...(configPlatform ? { platform: platformField(img) } : {}),
  };
  const manifest = blob(encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config,
    layers: layers.map((l) => descriptorOf(compressed ? OCI_LAYER_GZIP : OCI_LAYER, l)),
  })));
  return {
    manifest,
    blobs: [blob(img.config), ...layers, manifest],
    layerDigests: layers.map((l) => l.digest),
  };
}

function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

function blobEntries(blobs: Blob[], sorted: boolean): TarEntrySpec[] {
  const unique = new Map<string, Blob>();
  for (const item of blobs) unique.set(item.digest, item);
  const list = [...unique.values()];
  if (sorted) list.sort((a, b) => a.digest < b.digest ? -1 : 1);
  return [
    { name: "blobs/", type: "directory" },
    { name: "blobs/sha256/", type: "directory" },
    ...list.map((item): TarEntrySpec => ({
      name: `blobs/sha256/${hexOf(item.digest)}`,
      data: item.bytes,
    })),
  ];
}

// ---------------------------------------------------------------------------------------------
// Fixture descriptions
// ---------------------------------------------------------------------------------------------

/** Every archive layout the fixtures provide. */
export type LayoutName =
  | "oci-archive"
  | "docker-archive"
  | "docker-legacy"
  | "docker-legacy-multi"
  | "docker-v25"
  | "docker-containerd"
  | "oci-multi-platform"
  | "oci-multi-image"
  | "docker-legacy-gzip"
  | "docker-archive-zstd";

/** Every layout name, in a stable order. */
export const LAYOUT_NAMES: readonly LayoutName[] = [
  "oci-archive",
  "docker-archive",
  "docker-legacy",
  "docker-legacy-multi",
  "docker-v25",
  "docker-containerd",
  "oci-multi-platform",
  "oci-multi-image",
  "docker-legacy-gzip",
  "docker-archive-zstd",
];

/** What reading one image of a fixture must give. */
export interface FixtureImage {
  /** Expected `ArchiveImage.names`. */
  names: string[];
  /** `os/architecture[/variant]`. */
  platform: string;
  /** Digest of the config bytes. */
  configDigest: string;
  /** The config's `rootfs.diff_ids`. */
  diffIds: string[];
  /** Digests of the layer bytes as stored in the archive. */
  layerDigests: string[];
  /** Compression of the stored layers. */
  layerCompression: Compression;
  /** Digest of the stored manifest (OCI layouts). */
  manifestDigest?: string;
}

/** One fixture archive and what reading it must give. */
export interface FixtureInfo {
  /** The layout. */
  layout: LayoutName;
  /** The archive file. */
  path: string;
  /** Compression of the archive file as a whole. */
  compression: Compression;
  /** Expected `ImageSelection.family`. */
  family: ManifestFamily;
  /** The `image` option that picks {@link images} from a multi-image archive. */
  choose?: string;
  /** Names of every image the archive holds, as a multi-image refusal lists them. */
  holds: string[];
  /** Expected `ImageSelection.images`, in order. */
  images: FixtureImage[];
  /** Digest of the index pushed with the images (multi-platform archives). */
  indexDigest?: string;
  /** Expected `ImageSelection.skippedPlatforms`. */
  skippedPlatforms: string[];
  /** `images[0].configDigest`. */
  configDigest: string;
  /** `images[0].diffIds`. */
  diffIds: string[];
  /** `images[0].names`. */
  names: string[];
  /** Platforms of {@link images}. */
  platforms: string[];
}

function expectImage(
  img: Image,
  names: string[],
  layerCompression: Compression,
  manifestDigest?: string,
): FixtureImage {
  const result: FixtureImage = {
    names,
    platform: platformOf(img),
    configDigest: img.configDigest,
    diffIds: img.layers.map((l) => l.diffId),
    layerDigests: img.layers.map((l) => layerCompression === "gzip" ? l.gzipDigest : l.diffId),
    layerCompression,
  };
  if (manifestDigest !== undefined) result.manifestDigest = manifestDigest;
  return result;
}

function info(
  layout: LayoutName,
  path: string,
  details: Omit<
    FixtureInfo,
    "layout" | "path" | "configDigest" | "diffIds" | "names" | "platforms"
  >,
): FixtureInfo {
  const first = details.images[0];
  if (first === undefined) throw new Error(`fixture ${layout} has no images`);
  return {
    layout,
    path,
    ...details,
    configDigest: first.configDigest,
    diffIds: first.diffIds,
    names: first.names,
    platforms: details.images.map((img) => img.platform),
  };
}

// ---------------------------------------------------------------------------------------------
// Layout writers
// ---------------------------------------------------------------------------------------------

function v1Ids(img: Image): string[] {
  let parent = "";
  return img.layers.map((l, i) => {
    const top = i === img.layers.length - 1 ? img.configDigest : "";
    parent = hexOf(digestOf(encoder.encode(`${parent}\n${l.diffId}\n${top}`)));
    return parent;
  });
}

/** docker save before v25: `<id>/layer.tar`, `<config>.json`, `manifest.json`, `repositories`. */
function dockerLegacyTar(images: Array<{ img: Image; tags: string[] }>): Uint8Array {
  const files = new Map<string, TarEntrySpec>();
  const manifest: unknown[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { img, tags } of images) {
    const ids = v1Ids(img);
    files.set(`${hexOf(img.configDigest)}.json`, {
      name: `${hexOf(img.configDigest)}.json`,
      data: img.config,
    });
    img.layers.forEach((l, i) => {
      const id = ids[i] ?? "";
      const v1 = {
        id,
        ...(i > 0 ? { parent: ids[i - 1] } : {}),
        created: "1970-01-01T00:00:00Z",
        container_config: { Cmd: null },
        os: "linux",
      };
      files.set(`${id}/`, { name: `${id}/`, type: "directory" });
      files.set(`${id}/VERSION`, { name: `${id}/VERSION`, data: "1.0" });
      files.set(`${id}/json`, { name: `${id}/json`, data: JSON.stringify(v1) });
      files.set(`${id}/layer.tar`, { name: `${id}/layer.tar`, data: l.tar });
    });
    manifest.push({
      Config: `${hexOf(img.configDigest)}.json`,
      RepoTags: tags,
      Layers: ids.map((id) => `${id}/layer.tar`),
    });
    for (const tag of tags) {
      const [repo = "", version = ""] = tag.split(":");
      repositories[repo] = { ...repositories[repo], [version]: ids[ids.length - 1] ?? "" };
    }
  }
  files.set("manifest.json", { name: "manifest.json", data: `${JSON.stringify(manifest)}\n` });
  files.set("repositories", { name: "repositories", data: `${JSON.stringify(repositories)}\n` });
  return writeTar([...files.keys()].sort().map((key) => files.get(key) as TarEntrySpec));
}

/** docker save v25+ (graph driver store): OCI layout, uncompressed layers, plus manifest.json. */
function dockerV25Tar(img: Image, tags: string[]): { tar: Uint8Array; oci: OciImage } {
  const oci = ociImage(img, false, true);
  const legacyConfigs = v1Ids(img).map((id) => blob(json({ id, created: "1970-01-01T00:00:00Z" })));
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: tags.map((tag) => ({
      ...descriptorOf(OCI_MANIFEST, oci.manifest),
      annotations: {
        "io.containerd.image.name": `docker.io/library/${tag}`,
        "org.opencontainers.image.ref.name": tag.split(":")[1] ?? "latest",
      },
      platform: platformField(img),
    })),
  };
  const manifest = [{
    Config: `blobs/sha256/${hexOf(img.configDigest)}`,
    RepoTags: tags,
    Layers: img.layers.map((l) => `blobs/sha256/${hexOf(l.diffId)}`),
  }];
  const repositories = {
    [tags[0]?.split(":")[0] ?? "app"]: Object.fromEntries(
      tags.map((t) => [t.split(":")[1], hexOf(img.layers.at(-1)?.diffId ?? "")]),
    ),
  };
  const tar = writeTar([
    ...blobEntries([...oci.blobs, ...legacyConfigs], true),
    { name: "index.json", data: json(index) },
    { name: "manifest.json", data: `${JSON.stringify(manifest)}\n` },
    { name: "oci-layout", data: OCI_LAYOUT },
    { name: "repositories", data: `${JSON.stringify(repositories)}\n` },
  ]);
  return { tar, oci };
}

function attestation(subject: OciImage): { descriptor: Descriptor; image: OciImage; img: Image } {
  const statement = json({
    _type: "https://in-toto.io/Statement/v0.1",
    predicateType: "https://slsa.dev/provenance/v0.2",
    subject: [{ name: "app", digest: { sha256: hexOf(subject.manifest.digest) } }],
    predicate: { builder: { id: "fixture" } },
  });
  const layerBlob = blob(statement);
  const config = json({
    architecture: "unknown",
    os: "unknown",
    config: {},
    rootfs: { type: "layers", diff_ids: [layerBlob.digest] },
  });
  const configBlob = blob(config);
  const manifest = blob(json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptorOf(OCI_CONFIG, configBlob),
    layers: [{
      ...descriptorOf("application/vnd.in-toto+json", layerBlob),
      annotations: { "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2" },
    }],
  }));
  return {
    descriptor: {
      ...descriptorOf(OCI_MANIFEST, manifest),
      annotations: {
        "vnd.docker.reference.digest": subject.manifest.digest,
        "vnd.docker.reference.type": "attestation-manifest",
      },
      platform: { architecture: "unknown", os: "unknown" },
    },
    image: { manifest, blobs: [configBlob, layerBlob, manifest], layerDigests: [layerBlob.digest] },
    img: {
      layers: [{
        tar: statement,
        diffId: layerBlob.digest,
        gzip: statement,
        gzipDigest: layerBlob.digest,
        comment: "",
      }],
      config,
      configDigest: configBlob.digest,
      os: "unknown",
      architecture: "unknown",
    },
  };
}

/** A multi-platform index of amd64 + arm64/v8 with an attestation for amd64. */
function platformIndex(images: Images): {
  index: Blob;
  amd: OciImage;
  arm: OciImage;
  att: ReturnType<typeof attestation>;
} {
  const amd = ociImage(images.app, true);
  const arm = ociImage(images.appArm, true);
  const att = attestation(amd);
  const index = blob(json({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { ...descriptorOf(OCI_MANIFEST, amd.manifest), platform: platformField(images.app) },
      { ...descriptorOf(OCI_MANIFEST, arm.manifest), platform: platformField(images.appArm) },
      att.descriptor,
    ],
  }));
  return { index, amd, arm, att };
}

function topIndex(descriptors: Descriptor[]): Uint8Array {
  return json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: descriptors });
}

const NAME_ANNOTATIONS = (name: string, ref: string): Record<string, string> => ({
  "io.containerd.image.name": name,
  "org.opencontainers.image.ref.name": ref,
});

async function run(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
}

async function writeOciDir(dir: string, oci: OciImage, ref: string): Promise<void> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  for (const item of oci.blobs) {
    await Deno.writeFile(`${dir}/blobs/sha256/${hexOf(item.digest)}`, item.bytes);
  }
  await Deno.writeTextFile(`${dir}/oci-layout`, OCI_LAYOUT);
  await Deno.writeFile(
    `${dir}/index.json`,
    topIndex([{
      ...descriptorOf(OCI_MANIFEST, oci.manifest),
      annotations: { "org.opencontainers.image.ref.name": ref },
    }]),
  );
}

/**
 * Builds every fixture archive in `dir` (which must exist) and describes each. Needs `skopeo` on
 * the PATH for the real-tool layouts.
 */
export async function buildFixtures(dir: string): Promise<Record<LayoutName, FixtureInfo>> {
  const images = buildImages();
  const { app, appArm, tools } = images;
  const path = (name: string): string => `${dir}/${name}`;

  // skopeo: docker-archive and oci-archive from a hand-written OCI directory.
  const ociDir = path("oci-dir");
  const appOci = ociImage(app, true);
  await writeOciDir(ociDir, appOci, "v1");
  const skopeo = async (src: string, dest: string, file: string): Promise<void> => {
    await Deno.remove(file).catch(() => {}); // skopeo refuses to add to an existing archive
    await run("skopeo", [
      "--insecure-policy",
      "copy",
      "--quiet",
      src,
      `${dest}:${file}:${dest === "oci-archive" ? "v1" : "app:v1"}`,
    ]);
  };
  await Promise.all([
    skopeo(`oci:${ociDir}:v1`, "docker-archive", path("docker-archive.tar")),
    skopeo(`oci:${ociDir}:v1`, "oci-archive", path("oci-archive.tar")),
  ]);

  // Hand-written docker save layouts.
  const legacy = dockerLegacyTar([{ img: app, tags: ["app:v1"] }]);
  await Deno.writeFile(path("docker-legacy.tar"), legacy);
  await Deno.writeFile(
    path("docker-legacy-multi.tar"),
    dockerLegacyTar([{ img: app, tags: ["app:v1"] }, { img: tools, tags: ["tools:v2"] }]),
  );
  const v25 = dockerV25Tar(app, ["app:v1", "app:latest"]);
  await Deno.writeFile(path("docker-v25.tar"), v25.tar);

  const multi = platformIndex(images);
  const containerdManifest = [{
    Config: `blobs/sha256/${hexOf(app.configDigest)}`,
    RepoTags: ["app:v1"],
    Layers: multi.amd.layerDigests.map((d) => `blobs/sha256/${hexOf(d)}`),
  }];
  await Deno.writeFile(
    path("docker-containerd.tar"),
    writeTar([
      ...blobEntries([multi.index, ...multi.amd.blobs], false),
      {
        name: "index.json",
        data: topIndex([{
          ...descriptorOf(OCI_INDEX, multi.index),
          annotations: NAME_ANNOTATIONS("docker.io/library/app:v1", "v1"),
        }]),
      },
      { name: "manifest.json", data: `${JSON.stringify(containerdManifest)}\n` },
      { name: "oci-layout", data: OCI_LAYOUT },
    ]),
  );
  await Deno.writeFile(
    path("oci-multi-platform.tar"),
    writeTar([
      ...blobEntries([
        ...multi.amd.blobs,
        ...multi.arm.blobs,
        ...multi.att.image.blobs,
        multi.index,
      ], false),
      { name: "oci-layout", data: OCI_LAYOUT },
      {
        name: "index.json",
        data: topIndex([{
          ...descriptorOf(OCI_INDEX, multi.index),
          annotations: NAME_ANNOTATIONS("docker.io/library/app:v1", "v1"),
        }]),
      },
    ]),
  );
  const toolsOci = ociImage(tools, true);
  await Deno.writeFile(
    path("oci-multi-image.tar"),
    writeTar([
      { name: "oci-layout", data: OCI_LAYOUT },
      {
        name: "index.json",
        data: topIndex([
          {
            ...descriptorOf(OCI_MANIFEST, appOci.manifest),
            annotations: { "org.opencontainers.image.ref.name": "v1" },
          },
          {
            ...descriptorOf(OCI_MANIFEST, toolsOci.manifest),
            annotations: { "org.opencontainers.image.ref.name": "v2" },
          },
        ]),
      },
      ...blobEntries([...appOci.blobs, ...toolsOci.blobs], true),
    ]),
  );

  // Compressed copies.
  await Deno.writeFile(path("docker-legacy.tar.gz"), new Uint8Array(gzipSync(legacy)));
  const skopeoArchive = await Deno.readFile(path("docker-archive.tar"));
  await Deno.writeFile(
    path("docker-archive.tar.zst"),
    new Uint8Array(zstdCompressSync(skopeoArchive)),
  );

  const legacyInfo = {
    family: "docker" as const,
    holds: ["app:v1"],
    images: [expectImage(app, ["app:v1"], "none")],
    skippedPlatforms: [],
  };
  // skopeo writes RepoTags in full (docker.io/library/...), unlike docker.
  const dockerArchiveInfo = {
    family: "docker" as const,
    holds: ["app:v1"],
    images: [expectImage(app, ["docker.io/library/app:v1"], "none")],
    skippedPlatforms: [],
  };
  const amdNames = ["docker.io/library/app:v1"];
  return {
    "oci-archive": info("oci-archive", path("oci-archive.tar"), {
      compression: "none",
      family: "oci",
      holds: ["v1"],
      images: [expectImage(app, ["v1"], "gzip", appOci.manifest.digest)],
      skippedPlatforms: [],
    }),
    "docker-archive": info("docker-archive", path("docker-archive.tar"), {
      compression: "none",
      ...dockerArchiveInfo,
    }),
    "docker-legacy": info("docker-legacy", path("docker-legacy.tar"), {
      compression: "none",
      ...legacyInfo,
    }),
    "docker-legacy-multi": info("docker-legacy-multi", path("docker-legacy-multi.tar"), {
      compression: "none",
      family: "docker",
      choose: "tools:v2",
      holds: ["app:v1", "tools:v2"],
      images: [expectImage(tools, ["tools:v2"], "none")],
      skippedPlatforms: [],
    }),
    "docker-v25": info("docker-v25", path("docker-v25.tar"), {
      compression: "none",
      family: "oci",
      holds: ["app:v1", "app:latest"],
      images: [expectImage(app, ["app:v1", "app:latest"], "none", v25.oci.manifest.digest)],
      skippedPlatforms: [],
    }),
    "docker-containerd": info("docker-containerd", path("docker-containerd.tar"), {
      compression: "none",
      family: "oci",
      holds: ["app:v1"],
      images: [expectImage(app, ["app:v1"], "gzip", multi.amd.manifest.digest)],
      skippedPlatforms: [platformOf(appArm)],
    }),
    "oci-multi-platform": info("oci-multi-platform", path("oci-multi-platform.tar"), {
      compression: "none",
      family: "oci",
      holds: ["app:v1"],
      images: [
        expectImage(app, amdNames, "gzip", multi.amd.manifest.digest),
        expectImage(appArm, amdNames, "gzip", multi.arm.manifest.digest),
        expectImage(multi.att.img, amdNames, "none", multi.att.image.manifest.digest),
      ],
      indexDigest: multi.index.digest,
      skippedPlatforms: [],
    }),
    "oci-multi-image": info("oci-multi-image", path("oci-multi-image.tar"), {
      compression: "none",
      family: "oci",
      choose: "v2",
      holds: ["v1", "v2"],
      images: [expectImage(tools, ["v2"], "gzip", toolsOci.manifest.digest)],
      skippedPlatforms: [],
    }),
    "docker-legacy-gzip": info("docker-legacy-gzip", path("docker-legacy.tar.gz"), {
      compression: "gzip",
      ...legacyInfo,
    }),
    "docker-archive-zstd": info("docker-archive-zstd", path("docker-archive.tar.zst"), {
      compression: "zstd",
      ...dockerArchiveInfo,
    }),
  };
}

let shared: Promise<Record<LayoutName, FixtureInfo>> | undefined;

/**
 * The fixtures, built once per test process in a temporary directory that is removed when the
 * process exits.
 */
export function sharedFixtures(): Promise<Record<LayoutName, FixtureInfo>> {
  shared ??= (async () => {
    return await buildFixtures(await tempDirUntilExit("pusher-fixtures-"));
  })();
  return shared;
}

// ---------------------------------------------------------------------------------------------
// A BuildKit-style OCI layout (zstd and uncompressed layers, attestation manifests)
// ---------------------------------------------------------------------------------------------

/** One platform image of {@link writeBuildkitLayout}. */
export interface BuildkitPlatform {
  /** `os/architecture[/variant]`. */
  platform: string;
  /** Digest of the config bytes. */
  configDigest: string;
  /** The config's `rootfs.diff_ids` (digests of the uncompressed layers). */
  diffIds: string[];
  /** Compression of its stored layers. */
  layerCompression: Compression;
  /** Digest of its OCI manifest in the archive. */
  manifestDigest: string;
}

/** What {@link writeBuildkitLayout} wrote. */
export interface BuildkitLayout {
  /** The archive file. */
  path: string;
  /** Digest of the OCI index `index.json` names. */
  indexDigest: string;
  /** The platform images, in index order. */
  platforms: BuildkitPlatform[];
  /** Digests of the attestation manifests, one per platform. */
  attestationDigests: string[];
}

const OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";

function ociImageIn(img: Image, compression: "zstd" | "none"): OciImage {
  const layers = img.layers.map((l) =>
    blob(compression === "zstd" ? new Uint8Array(zstdCompressSync(l.tar)) : l.tar)
  );
  const manifest = blob(json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptorOf(OCI_CONFIG, blob(img.config)),
    layers: layers.map((l) => descriptorOf(compression === "zstd" ? OCI_LAYER_ZSTD : OCI_LAYER, l)),
  }));
  return {
    manifest,
    blobs: [blob(img.config), ...layers, manifest],
    layerDigests: layers.map((l) => l.digest),
  };
}

/**
 * Writes what `docker buildx build --output type=oci,compression=zstd` gives for two platforms
 * (BuildKit writes OCI media types for every image): an OCI image layout archive whose index
 * lists linux/amd64 with zstd layers, linux/arm64/v8 with uncompressed layers, and a BuildKit
 * attestation manifest (in-toto provenance, entries annotated `vnd.docker.reference.type:
 * attestation-manifest`) for each.
 */
export async function writeBuildkitLayout(path: string): Promise<BuildkitLayout> {
  const { app, appArm } = buildImages();
  const amd = ociImageIn(app, "zstd");
  const arm = ociImageIn(appArm, "none");
  const amdAttestation = attestation(amd);
  const armAttestation = attestation(arm);
  const index = blob(json({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { ...descriptorOf(OCI_MANIFEST, amd.manifest), platform: platformField(app) },
      { ...descriptorOf(OCI_MANIFEST, arm.manifest), platform: platformField(appArm) },
      amdAttestation.descriptor,
      armAttestation.descriptor,
    ],
  }));
  await Deno.writeFile(
    path,
    writeTar([
      { name: "oci-layout", data: OCI_LAYOUT },
      {
        name: "index.json",
        data: topIndex([{
          ...descriptorOf(OCI_INDEX, index),
          annotations: NAME_ANNOTATIONS("docker.io/library/app:v1", "v1"),
        }]),
      },
      ...blobEntries(
        [
          ...amd.blobs,
          ...arm.blobs,
          ...amdAttestation.image.blobs,
          ...armAttestation.image.blobs,
          index,
        ],
        true,
      ),
    ]),
  );
  const platform = (
    img: Image,
    oci: OciImage,
    layerCompression: Compression,
  ): BuildkitPlatform => ({
    platform: platformOf(img),
    configDigest: img.configDigest,
    diffIds: img.layers.map((l) => l.diffId),
    layerCompression,
    manifestDigest: oci.manifest.digest,
  });
  return {
    path,
    indexDigest: index.digest,
    platforms: [platform(app, amd, "zstd"), platform(appArm, arm, "none")],
    attestationDigests: [
      amdAttestation.image.manifest.digest,
      armAttestation.image.manifest.digest,
    ],
  };
}
