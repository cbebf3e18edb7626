/**
 * The value encodings of containerd's metadata database: sizes are Go `binary.PutVarint` values
 * (zigzag, 7 bits a byte, low bits first). The byte strings below are what Go writes.
 */

import assert from "node:assert/strict";
import { BoltFormatError } from "../../lib/image/bbolt.ts";
import { decodeGoVarint } from "../../lib/image/containerd_metadata.ts";

Deno.test("decodeGoVarint reads what Go's binary.PutVarint writes", () => {
  const cases: Array<[number[], number]> = [
    [[0x00], 0],
    [[0x01], -1],
    [[0x02], 1],
    [[0x80, 0x01], 64],
    [[0x90, 0x0b], 712],
    [[0x8e, 0xd7, 0x40], 529_863],
    [[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], 2 ** 52 - 1],
  ];
  for (const [bytes, value] of cases) {
    assert.equal(decodeGoVarint(new Uint8Array(bytes), "meta.db"), value, `${bytes}`);
  }
});

Deno.test("decodeGoVarint refuses unterminated, padded and out-of-range values", () => {
  for (
    const bytes of [
      [],
      [0x80],
      [0x02, 0x00],
      [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    ]
  ) {
    assert.throws(
      () => decodeGoVarint(new Uint8Array(bytes), "meta.db"),
      (error: unknown) => error instanceof BoltFormatError && error.kind === "input",
      `${bytes}`,
    );
  }
});
