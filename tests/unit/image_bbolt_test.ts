/**
 * The bbolt reader against a database containerd itself wrote: namespaces as nested buckets,
 * a label bucket too large for one page (so its tree has a branch page above several leaves),
 * small inline buckets; then damaged copies of that file — a newer meta page with a bad checksum
 * (the older one is used), both meta pages bad, pages cut off.
 */

import assert from "node:assert/strict";
import { BoltDatabase, BoltFormatError, fnv1a64 } from "../../lib/image/bbolt.ts";
import { METADATA_DB_PATH } from "../../lib/image/containerd_metadata.ts";
import { startContainerd } from "../helpers/containerd.ts";

const LABEL_COUNT = 300;
const decoder = new TextDecoder();

function labelKey(i: number): string {
  return `test.example/label-${String(i).padStart(4, "0")}`;
}

function labelValue(i: number): string {
  return `value ${i} `.repeat(4).trim();
}

/** A meta.db containerd wrote with namespace `alpha` (many labels) and `beta` (one label). */
async function containerdDatabase(): Promise<Uint8Array> {
  await using containerd = await startContainerd();
  const labels = Array.from({ length: LABEL_COUNT }, (_, i) => `${labelKey(i)}=${labelValue(i)}`);
  await containerd.ctr(["namespaces", "create", "alpha", ...labels]);
  await containerd.ctr(["namespaces", "create", "beta", "only=one"]);
  await containerd.stop();
  return await Deno.readFile(`${containerd.root}/${METADATA_DB_PATH}`);
}

let built: Promise<Uint8Array> | undefined;

/** The containerd-written database, made once by the first test that needs it. */
function database(): Promise<Uint8Array> {
  built ??= containerdDatabase();
  return built;
}

Deno.test("fnv1a64 gives the published FNV-1a 64 values", () => {
  assert.equal(fnv1a64(new Uint8Array()), 0xcbf29ce484222325n);
  assert.equal(fnv1a64(new TextEncoder().encode("a")), 0xaf63dc4c8601ec8cn);
  assert.equal(fnv1a64(new TextEncoder().encode("foobar")), 0x85944171f73967e8n);
});

Deno.test("a containerd meta.db: namespaces, a label bucket spanning several pages, inline buckets", async () => {
  const bytes = await database();
  const db = new BoltDatabase(bytes, "meta.db");
  assert.equal(db.meta.pageSize, 4096);
  const v1 = db.root().bucket("v1");
  assert.ok(v1, "the v1 schema bucket");
  const namespaces = v1.entries().filter((entry) => entry.bucket !== undefined)
    .map((entry) => decoder.decode(entry.key));
  assert.deepEqual(namespaces, ["alpha", "beta"]);
  assert.equal(v1.bucket("version"), undefined, "a plain key is not a bucket");
  assert.ok(v1.get("version"), "the schema version is a plain value");

  const labels = v1.path("alpha", "labels");
  assert.ok(labels);
  const entries = labels.entries();
  const labelBytes = entries.reduce((sum, entry) => sum + entry.key.length + 16, 0) +
    entries.reduce((sum, entry) => sum + (entry.value?.length ?? 0), 0);
  assert.ok(labelBytes > 2 * db.meta.pageSize, "the labels need several leaf pages");
  assert.deepEqual(
    entries.map((entry) => decoder.decode(entry.key)),
    Array.from({ length: LABEL_COUNT }, (_, i) => labelKey(i)),
  );
  for (let i = 0; i < LABEL_COUNT; i++) {
    assert.equal(decoder.decode(labels.get(labelKey(i))), labelValue(i), labelKey(i));
  }
  assert.equal(labels.get("test.example/label-"), undefined);
  assert.equal(labels.get("zzz"), undefined);
  assert.equal(labels.get(""), undefined);

  assert.equal(decoder.decode(v1.path("beta", "labels")?.get("only")), "one");
  assert.equal(v1.path("beta", "labels", "only"), undefined, "a value is not a bucket");
  assert.equal(v1.path("gamma"), undefined);
});

/** Flips a checksummed byte (the flags field) of meta page `page`. */
function damageMeta(bytes: Uint8Array, page: 0 | 1, pageSize: number): Uint8Array {
  const copy = bytes.slice();
  const flagsOffset = page * pageSize + 16 + 12;
  copy[flagsOffset] = (copy[flagsOffset] ?? 0) ^ 0xff;
  return copy;
}

Deno.test("a newer meta page with a bad checksum: the older meta page is chosen", async () => {
  const bytes = await database();
  const intact = new BoltDatabase(bytes, "meta.db");
  const damaged = new BoltDatabase(
    damageMeta(bytes, intact.meta.page, intact.meta.pageSize),
    "meta.db",
  );
  assert.equal(damaged.meta.page, intact.meta.page === 0 ? 1 : 0);
  assert.equal(damaged.meta.txid, intact.meta.txid - 1n);
  // The older transaction's pages may since have been reused by the newer one (bbolt frees them
  // once no reader holds them): reading its tree either works or fails as a format error.
  try {
    damaged.root().bucket("v1")?.entries();
  } catch (error) {
    assert.ok(error instanceof BoltFormatError, String(error));
    assert.equal(error.kind, "input");
  }
});

Deno.test("meta page 0 damaged: meta page 1 is found without page 0's page size", async () => {
  const bytes = await database();
  const { pageSize } = new BoltDatabase(bytes, "meta.db").meta;
  const damaged = new BoltDatabase(damageMeta(bytes, 0, pageSize), "meta.db");
  assert.equal(damaged.meta.page, 1);
  assert.equal(damaged.meta.pageSize, pageSize);
  assert.ok(damaged.root().bucket("v1"));
});

Deno.test("both meta pages damaged: an input error naming both", async () => {
  const bytes = await database();
  const { pageSize } = new BoltDatabase(bytes, "meta.db").meta;
  const damaged = damageMeta(damageMeta(bytes, 0, pageSize), 1, pageSize);
  assert.throws(
    () => new BoltDatabase(damaged, "meta.db"),
    (error: unknown) =>
      error instanceof BoltFormatError && error.kind === "input" &&
      /meta page 0 is invalid \(its checksum does not match\) and so is meta page 1 \(its checksum does not match\)/
        .test(error.message),
  );
});

Deno.test("a file cut after its meta pages: reading the root fails with an input error", async () => {
  const bytes = await database();
  const { pageSize } = new BoltDatabase(bytes, "meta.db").meta;
  const cut = new BoltDatabase(bytes.slice(0, 2 * pageSize), "meta.db");
  assert.throws(
    () => cut.root().entries(),
    (error: unknown) => error instanceof BoltFormatError && /outside the file/.test(error.message),
  );
});

Deno.test("not a bbolt file: an input error", () => {
  assert.throws(
    () => new BoltDatabase(new TextEncoder().encode("not a database"), "junk.db"),
    (error: unknown) =>
      error instanceof BoltFormatError && /junk\.db is not a readable bbolt database/.test(
        error.message,
      ),
  );
});
