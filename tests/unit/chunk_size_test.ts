/**
 * Chunk sizes as tables: the bounds a registry host and its `OCI-Chunk-Min-Length` set, a wanted
 * size moved within them, and the sizes a run of 413s halves the chunks through before the floor.
 */

import assert from "node:assert/strict";
import {
  boundedChunkSize,
  type ChunkBounds,
  chunkBounds,
  smallerChunkSize,
  SMALLEST_CHUNK,
} from "../../lib/push/chunk_size.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const ANY: ChunkBounds = { min: 0, max: Number.POSITIVE_INFINITY };
const ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

const BOUNDS: ReadonlyArray<[string, number | undefined, ChunkBounds]> = [
  ["127.0.0.1:5000", undefined, ANY],
  ["registry.example.com", 400_000, { min: 400_000, max: Number.POSITIVE_INFINITY }],
  [ECR, undefined, { min: 5 * MiB, max: Number.POSITIVE_INFINITY }],
  [`${ECR}:443`, undefined, { min: 5 * MiB, max: Number.POSITIVE_INFINITY }],
  ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", undefined, {
    min: 5 * MiB,
    max: Number.POSITIVE_INFINITY,
  }],
  [ECR, 8 * MiB, { min: 8 * MiB, max: Number.POSITIVE_INFINITY }],
  [ECR, 1 * MiB, { min: 5 * MiB, max: Number.POSITIVE_INFINITY }],
  ["ghcr.io", undefined, { min: 0, max: 4 * MiB }],
  ["GHCR.IO", 1 * MiB, { min: 1 * MiB, max: 4 * MiB }],
  ["dkr.ecr.example.com", undefined, ANY],
];

for (const [registry, header, expected] of BOUNDS) {
  Deno.test(`chunkBounds: ${registry}, OCI-Chunk-Min-Length ${header ?? "absent"}`, () => {
    assert.deepEqual(chunkBounds(registry, header), expected);
  });
}

const BOUNDED: ReadonlyArray<[string, number, ChunkBounds, number]> = [
  ["any size to a registry that takes any", 64 * MiB, ANY, 64 * MiB],
  ["under ECR's minimum", 1 * MiB, { min: 5 * MiB, max: Number.POSITIVE_INFINITY }, 5 * MiB],
  ["over GHCR's maximum", 64 * MiB, { min: 0, max: 4 * MiB }, 4 * MiB],
  ["within both", 3 * MiB, { min: 1 * MiB, max: 4 * MiB }, 3 * MiB],
  [
    "a minimum above the maximum (the minimum wins)",
    3 * MiB,
    { min: 6 * MiB, max: 4 * MiB },
    6 * MiB,
  ],
];

for (const [name, wanted, bounds, expected] of BOUNDED) {
  Deno.test(`boundedChunkSize: ${name}`, () => {
    assert.equal(boundedChunkSize(wanted, bounds), expected);
  });
}

/** The sizes successive 413s lead to, from `start` until the floor. */
function shrinks(start: number, bounds: ChunkBounds): number[] {
  const sizes: number[] = [];
  for (let size: number | undefined = start; size !== undefined;) {
    size = smallerChunkSize(size, bounds);
    if (size !== undefined) sizes.push(size);
  }
  return sizes;
}

Deno.test("smallerChunkSize: 64 MiB halves down to 256 KiB, then no smaller", () => {
  assert.deepEqual(shrinks(64 * MiB, ANY), [
    32 * MiB,
    16 * MiB,
    8 * MiB,
    4 * MiB,
    2 * MiB,
    1 * MiB,
    512 * KiB,
    256 * KiB,
  ]);
  assert.equal(SMALLEST_CHUNK, 256 * KiB);
});

Deno.test("smallerChunkSize: an odd size halves upwards and lands on the floor", () => {
  assert.deepEqual(shrinks(3 * MiB + 1, ANY), [1572865, 786433, 393217, 256 * KiB]);
});

Deno.test("smallerChunkSize: stops at ECR's 5 MiB and at an OCI-Chunk-Min-Length", () => {
  assert.deepEqual(shrinks(64 * MiB, { min: 5 * MiB, max: Number.POSITIVE_INFINITY }), [
    32 * MiB,
    16 * MiB,
    8 * MiB,
    5 * MiB,
  ]);
  assert.deepEqual(shrinks(1 * MiB, { min: 400_000, max: Number.POSITIVE_INFINITY }), [
    512 * KiB,
    400_000,
  ]);
});

Deno.test("smallerChunkSize: nothing smaller than the floor, or than a size already under it", () => {
  assert.equal(smallerChunkSize(SMALLEST_CHUNK, ANY), undefined);
  assert.equal(smallerChunkSize(100 * KiB, ANY), undefined);
  assert.equal(
    smallerChunkSize(5 * MiB, { min: 5 * MiB, max: Number.POSITIVE_INFINITY }),
    undefined,
  );
});
