/**
 * Where a push's time goes, stage by stage, measured in this process with the tool's own parts:
 * reading layers out of the archive, sha256, CRC-32, compression on the worker pool (the real-file
 * layers at several gzip levels, to choose the default; the rest at the default), and what the
 * registry takes to ingest the same bytes from curl (as they are, and gzipped by our compressor).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { cpuUsage } from "node:process";
import { crc32 } from "node:zlib";
import { join } from "node:path";
import { openRandomAccessArchive, type RandomAccessArchive } from "../lib/image/random_access.ts";
import { CompressionPool, CompressStream, DEFAULT_LEVELS } from "../lib/pipeline/compress.ts";
import { DigestStream } from "../lib/pipeline/digest.ts";
import { releaseChunk, releasingSink } from "../lib/bytes/owned_chunk.ts";
import type { BuiltArchive } from "./bench_archive.ts";
import { startBenchRegistry, timeCurlUploads } from "./bench_process.ts";
import { formatBytes, type Sample } from "./bench_report.ts";

/** One measured stage. */
export interface StageTiming {
  /** What was done. */
  stage: string;
  /** Bytes it went through. */
  bytes: number;
  /** Wall time. */
  seconds: number;
  /** CPU time of this process (workers included), or of the registry for uploads. */
  cpuSeconds: number;
}

/** Compression of the real-file layers at one gzip level. */
export interface LevelTiming {
  /** gzip level. */
  level: number;
  /** Wall time on the pool (every core). */
  seconds: number;
  /** CPU time, workers included. */
  cpuSeconds: number;
  /** Bytes in. */
  input: number;
  /** Bytes out. */
  output: number;
}

/** The stages, the gzip levels tried, and the bytes of the layers that are not real files. */
export interface Profile {
  /** Stages in push order. */
  stages: StageTiming[];
  /** The real-file layers compressed at each level tried. */
  levels: LevelTiming[];
  /** gzip output of every other layer (random, small) at the default level. */
  otherOutput: number;
}

/** gzip levels compared for the default. */
const LEVELS = [1, 2, 3, 4, 6];

/** CPU seconds this process used so far (all threads). */
function processCpu(): number {
  const usage = cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** Times `work`, wall and CPU. */
async function timed(work: () => Promise<void>): Promise<{ seconds: number; cpuSeconds: number }> {
  const cpu = processCpu();
  const started = performance.now();
  await work();
  return { seconds: (performance.now() - started) / 1000, cpuSeconds: processCpu() - cpu };
}

/** Up to `limit` bytes from the start of the archive's largest layer, in memory. */
async function sample(archive: BuiltArchive, limit: number): Promise<Uint8Array> {
  const largest = [...archive.layers].sort((a, b) => b.size - a.size)[0];
  if (largest === undefined) return new Uint8Array(0);
  using file = await Deno.open(largest.path);
  const bytes = new Uint8Array(Math.min(limit, largest.size));
  let filled = 0;
  while (filled < bytes.length) {
    const count = await file.read(bytes.subarray(filled));
    if (count === null) break;
    filled += count;
  }
  return bytes.subarray(0, filled);
}

/** Seconds `update` takes per byte over `bytes` in 1 MiB pieces (best of 3). */
function secondsPerByte(bytes: Uint8Array, update: (piece: Uint8Array) => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    for (let offset = 0; offset < bytes.length; offset += 1 << 20) {
      update(bytes.subarray(offset, offset + (1 << 20)));
    }
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return best / Math.max(1, bytes.length);
}

/** Compresses `entries` of the archive one after the other at `level`; returns the output size. */
async function compressEntries(
  archive: RandomAccessArchive,
  entries: readonly string[],
  level: number,
  pool: CompressionPool,
): Promise<number> {
  let output = 0;
  const sink = new WritableStream<Uint8Array>({
    write(chunk): void {
      output += chunk.byteLength;
      releaseChunk(chunk);
    },
  });
  for (const entry of entries) {
    await archive.openEntry(entry)
      .pipeThrough(new CompressStream("gzip", { level, pool }))
      .pipeTo(sink, { preventClose: true });
  }
  await sink.close();
  return output;
}

/** Profiles the stages of a push of `archive`; `log` hears progress. */
export async function profileStages(
  archive: BuiltArchive,
  scratch: string,
  log: (line: string) => void,
): Promise<Profile> {
  const stages: StageTiming[] = [];
  const indexed = await openRandomAccessArchive(archive.path);
  const layerBytes = archive.layers.reduce((sum, layer) => sum + layer.size, 0);

  log("profile: reading the layers");
  const read = await timed(async () => {
    for (const layer of archive.layers) {
      await indexed.openEntry(layer.entry).pipeTo(releasingSink());
    }
  });
  stages.push({ stage: "read layers from the archive (1 thread)", bytes: layerBytes, ...read });

  const inMemory = await sample(archive, 256 << 20);
  const hashRate = secondsPerByte(inMemory, (piece) => createHash("sha256").update(piece));
  let crc = 0;
  const crcRate = secondsPerByte(inMemory, (piece) => {
    crc = crc32(piece, crc);
  });
  stages.push({
    stage: "sha256 of the layers (diff_id, node:crypto)",
    bytes: layerBytes,
    seconds: hashRate * layerBytes,
    cpuSeconds: hashRate * layerBytes,
  });
  stages.push({
    stage: "CRC-32 of the layers (gzip trailer)",
    bytes: layerBytes,
    seconds: crcRate * layerBytes,
    cpuSeconds: crcRate * layerBytes,
  });

  const pool = new CompressionPool();
  const level = DEFAULT_LEVELS.gzip;
  const levels: LevelTiming[] = [];
  const compressed: { path: string; digest: string; size: number }[] = [];
  let otherOutput = 0;
  try {
    const real = archive.layers.filter((layer) => layer.kind === "real");
    const realBytes = real.reduce((sum, layer) => sum + layer.size, 0);
    for (const tried of LEVELS) {
      log(`profile: compressing the real-file layers at gzip level ${tried}`);
      let output = 0;
      const timing = await timed(async () => {
        output = await compressEntries(indexed, real.map((layer) => layer.entry), tried, pool);
      });
      levels.push({ level: tried, ...timing, input: realBytes, output });
      if (tried === level) {
        stages.push({
          stage: `gzip level ${level}, real-file layers, ${pool.size} workers (→ ${
            formatBytes(output)
          })`,
          bytes: realBytes,
          ...timing,
        });
      }
    }
    const others = archive.layers.filter((layer) => layer.kind !== "real");
    log("profile: compressing the other layers");
    const timing = await timed(async () => {
      otherOutput = await compressEntries(indexed, others.map((layer) => layer.entry), level, pool);
    });
    stages.push({
      stage: `gzip level ${level}, random and small layers (stored: → ${formatBytes(otherOutput)})`,
      bytes: others.reduce((sum, layer) => sum + layer.size, 0),
      ...timing,
    });
    log("profile: writing the gzipped layers for the upload floor");
    for (const [index, layer] of archive.layers.entries()) {
      const path = join(scratch, `layer-${index}.gz`);
      const digest = new DigestStream();
      const file = await Deno.open(path, { write: true, create: true, truncate: true });
      // Closing the writable closes the file once the last write landed.
      await indexed.openEntry(layer.entry)
        .pipeThrough(new CompressStream("gzip", { level, pool }))
        .pipeThrough(digest)
        .pipeTo(file.writable);
      const { digest: name, size } = await digest.result;
      compressed.push({ path, digest: name, size });
    }
  } finally {
    pool.close();
  }
  const compressedBytes = compressed.reduce((sum, blob) => sum + blob.size, 0);
  stages.push({
    stage: "sha256 of the gzipped layers (blob digest)",
    bytes: compressedBytes,
    seconds: hashRate * compressedBytes,
    cpuSeconds: hashRate * compressedBytes,
  });

  const asIs = archive.layers.map((layer) => ({
    path: layer.path,
    digest: layer.diffId,
    size: layer.size,
  }));
  for (const [what, blobs] of [["as they are", asIs], ["gzipped", compressed]] as const) {
    log(`profile: curl uploads of the layers ${what}`);
    const registry = await startBenchRegistry(scratch);
    let upload: Sample;
    try {
      upload = await timeCurlUploads(registry, blobs, 4);
    } finally {
      await registry.stop();
    }
    stages.push({
      stage: `registry ingest: 4 parallel curl uploads, layers ${what} (CPU: the registry's)`,
      bytes: blobs.reduce((sum, blob) => sum + blob.size, 0),
      seconds: upload.seconds,
      cpuSeconds: upload.registryCpuSeconds,
    });
  }
  for (const blob of compressed) await Deno.remove(blob.path);
  return { stages, levels, otherOutput };
}
