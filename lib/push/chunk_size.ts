/**
 * Which blobs go up whole in one request ({@link MONOLITHIC_MAX_BYTES}), and how large the chunks
 * of a chunked upload are: within what the registry takes (its
 * `OCI-Chunk-Min-Length`, a host's known minimum or maximum), and how far they shrink when a
 * proxy in front of the registry refuses a request body as too large (413). nginx's default limit
 * is 1 MB and common ones are 10–100 MB, so halving from the configured size finds a size that
 * passes in a few steps; {@link SMALLEST_CHUNK} stops it well under 1 MB.
 *
 * @module
 */

import { knownChunkLimits } from "../registry/quirks.ts";

/**
 * Blobs up to this many stored bytes go up in the closing `PUT` (no `PATCH`): one round trip
 * less each, for at most this much memory per parallel upload. Half of nginx's default
 * `client_max_body_size` (1 MiB), so even incompressible bytes gzipped stay under it.
 */
export const MONOLITHIC_MAX_BYTES = 512 * 1024;

/** Chunk size for chunked uploads: the threshold, kept between 5 MiB (ECR's minimum) and 64 MiB. */
export function chunkSizeFor(threshold: number): number {
  return Math.min(64 * 1024 * 1024, Math.max(5 * 1024 * 1024, threshold));
}

/** The chunk sizes a registry takes, in bytes. */
export interface ChunkBounds {
  /** The smallest chunk it takes, except the last one (0 when it takes any). */
  readonly min: number;
  /** The largest request body it takes (infinite when unknown). */
  readonly max: number;
}

/** The smallest chunk a 413 shrinks chunks to, unless the registry wants larger ones. */
export const SMALLEST_CHUNK = 256 * 1024;

/**
 * The bounds of `registry`'s chunks: the larger of its `OCI-Chunk-Min-Length` (`minChunkLength`)
 * and its host's known minimum, and its host's known maximum.
 */
export function chunkBounds(registry: string, minChunkLength?: number): ChunkBounds {
  const known = knownChunkLimits(registry);
  return {
    min: Math.max(known.min ?? 0, minChunkLength ?? 0),
    max: known.max ?? Number.POSITIVE_INFINITY,
  };
}

/**
 * `wanted` moved within `bounds`. When the bounds contradict each other the minimum wins: a
 * registry refuses chunks under its minimum for certain, while a maximum may be a proxy's.
 */
export function boundedChunkSize(wanted: number, bounds: ChunkBounds): number {
  return Math.max(bounds.min, Math.min(bounds.max, wanted));
}

/**
 * The chunk size to try after a chunk of `current` bytes was refused as too large: half of it,
 * but not under {@link SMALLEST_CHUNK} nor the registry's minimum; `undefined` when `current` is
 * that floor already.
 */
export function smallerChunkSize(current: number, bounds: ChunkBounds): number | undefined {
  const floor = Math.max(SMALLEST_CHUNK, bounds.min);
  const next = Math.max(floor, Math.ceil(current / 2));
  return next < current ? next : undefined;
}
