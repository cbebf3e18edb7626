/**
 * The byte pipeline between image archives and the registry: digests, byte counting,
 * deterministic multi-core gzip/zstd compression, the per-layer transform, retry with backoff,
 * a stall watchdog and a weighted task scheduler.
 *
 * @module
 */

export * from "./compress.ts";
export * from "./digest.ts";
export * from "./layer_transform.ts";
export * from "./retry.ts";
export * from "./scheduler.ts";
export * from "./stall.ts";
