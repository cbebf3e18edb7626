/**
 * A read-only reader of bbolt database files (etcd-io/bbolt, the key/value store containerd keeps
 * its metadata in), working on a copy of the file's bytes: no lock is taken and nothing is ever
 * written, so a database a running program holds open can be read.
 *
 * The format: pages of `pageSize` bytes; pages 0 and 1 are meta pages (magic, version 2, page
 * size, the root bucket's page, the transaction id, an FNV-1a 64 checksum of those fields) and the
 * newer valid one describes the database. Buckets are B+trees of branch pages (keys and child
 * pages) and leaf pages (keys with values or nested buckets); a small nested bucket is stored
 * inline, its one leaf page inside the parent's value. All integers are little-endian.
 *
 * @module
 */

import { PusherError } from "../errors.ts";

const PAGE_HEADER_SIZE = 16;
const ELEMENT_SIZE = 16;
const BUCKET_HEADER_SIZE = 16;
const META_MAGIC = 0xed0cdaed;
const META_VERSION = 2;
/** Bytes of the meta fields the checksum covers (everything before the checksum itself). */
const META_CHECKSUMMED_SIZE = 56;
const BRANCH_PAGE = 0x01;
const LEAF_PAGE = 0x02;
const META_PAGE = 0x04;
const BUCKET_LEAF_FLAG = 0x01;
/** Page sizes tried for meta page 1 when meta page 0 cannot say (bbolt uses the OS page size). */
const FALLBACK_PAGE_SIZES = [4096, 8192, 16384, 32768, 65536];
/** B+tree depth beyond which a file is taken to be damaged (real trees are a few levels deep). */
const MAX_TREE_DEPTH = 64;

const FNV_OFFSET_BASIS = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const UINT64_MASK = 0xffffffffffffffffn;

/** FNV-1a, 64 bits, as bbolt checksums its meta pages. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let hash = FNV_OFFSET_BASIS;
  for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * FNV_PRIME) & UINT64_MASK;
  return hash;
}

/**
 * The bytes of a bbolt file are not a consistent database: a page is not where the meta page
 * says, or not what it should be. Reading a file another process is writing can see this (it
 * copies pages it has just freed); reading again usually succeeds.
 */
export class BoltFormatError extends PusherError {
  /** Creates the error; `source` names the file. */
  constructor(source: string, detail: string) {
    super("input", `${source} is not a readable bbolt database: ${detail}`);
    this.name = "BoltFormatError";
  }
}

/** One meta page, decoded. */
export interface BoltMeta {
  /** Which meta page (0 or 1) it was read from. */
  page: 0 | 1;
  /** Page size of the database in bytes. */
  pageSize: number;
  /** The root bucket's page. */
  rootPage: number;
  /** Id of the transaction that wrote it; the newer valid meta page wins. */
  txid: bigint;
}

/** A key of a bucket with a plain value, or a nested bucket. */
export interface BoltEntry {
  /** The key's bytes. */
  key: Uint8Array;
  /** The value of a plain key; undefined for a nested bucket. */
  value: Uint8Array | undefined;
  /** The nested bucket; undefined for a plain key. */
  bucket: BoltBucket | undefined;
}

function safeNumber(value: bigint, what: string, source: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new BoltFormatError(source, `${what} ${value} is out of range`);
  }
  return Number(value);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = (a[i] as number) - (b[i] as number);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

/** Decodes the meta page at `offset`, or says why it is not a valid one. */
function readMeta(bytes: Uint8Array, offset: number, page: 0 | 1): BoltMeta | string {
  const metaStart = offset + PAGE_HEADER_SIZE;
  if (metaStart + META_CHECKSUMMED_SIZE + 8 > bytes.length) return "the file ends before it";
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset);
  if ((view.getUint16(8, true) & META_PAGE) === 0) return "it is not marked as a meta page";
  if (view.getUint32(16, true) !== META_MAGIC) return "its magic number is wrong";
  const version = view.getUint32(20, true);
  if (version !== META_VERSION) return `it has format version ${version}, not ${META_VERSION}`;
  const stored = view.getBigUint64(16 + META_CHECKSUMMED_SIZE, true);
  if (fnv1a64(bytes.subarray(metaStart, metaStart + META_CHECKSUMMED_SIZE)) !== stored) {
    return "its checksum does not match";
  }
  const pageSize = view.getUint32(24, true);
  if (pageSize < 1024 || (pageSize & (pageSize - 1)) !== 0) {
    return `its page size ${pageSize} is not a power of two of at least 1024`;
  }
  const rootPage = view.getBigUint64(32, true);
  if (rootPage < 2n || rootPage > BigInt(Number.MAX_SAFE_INTEGER)) {
    return `its root page ${rootPage} is out of range`;
  }
  return { page, pageSize, rootPage: Number(rootPage), txid: view.getBigUint64(64, true) };
}

/**
 * The meta page describing a bbolt file: the valid one (magic, version, checksum) with the
 * higher transaction id. Throws a {@link BoltFormatError} when neither is valid.
 */
export function newestMeta(bytes: Uint8Array, source: string): BoltMeta {
  const first = readMeta(bytes, 0, 0);
  const offsets = typeof first === "string" ? FALLBACK_PAGE_SIZES : [first.pageSize];
  // When page 0 cannot tell the page size, the reason page 1 fails is given at the likeliest size.
  let second: BoltMeta | string = readMeta(bytes, offsets[0] as number, 1);
  for (const offset of offsets.slice(1)) {
    if (typeof second !== "string") break;
    const candidate = readMeta(bytes, offset, 1);
    if (typeof candidate !== "string") second = candidate;
  }
  const valid = [first, second].filter((meta): meta is BoltMeta => typeof meta !== "string");
  if (valid.length === 0) {
    throw new BoltFormatError(
      source,
      `meta page 0 is invalid (${first as string}) and so is meta page 1 (${second as string})`,
    );
  }
  return valid.reduce((newest, meta) => meta.txid > newest.txid ? meta : newest);
}

/** A branch or leaf page (or an inline bucket's page) and its elements. */
export class BoltPage {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #source: string;
  /** Branch or leaf. */
  readonly isLeaf: boolean;
  /** Number of elements. */
  readonly count: number;

  constructor(bytes: Uint8Array, source: string, where: string) {
    this.#bytes = bytes;
    this.#source = source;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < PAGE_HEADER_SIZE) {
      throw new BoltFormatError(source, `${where} is cut short`);
    }
    const flags = this.#view.getUint16(8, true);
    if (flags !== BRANCH_PAGE && flags !== LEAF_PAGE) {
      throw new BoltFormatError(source, `${where} is not a branch or leaf page (flags ${flags})`);
    }
    this.isLeaf = flags === LEAF_PAGE;
    this.count = this.#view.getUint16(10, true);
    if (PAGE_HEADER_SIZE + this.count * ELEMENT_SIZE > bytes.length) {
      throw new BoltFormatError(source, `${where} has more elements than fit in it`);
    }
  }

  /** The bytes `length` long at `pos` past element `index`'s own start. */
  #slice(index: number, pos: number, length: number): Uint8Array {
    const start = PAGE_HEADER_SIZE + index * ELEMENT_SIZE + pos;
    if (start + length > this.#bytes.length) {
      throw new BoltFormatError(this.#source, `an element reaches past the end of its page`);
    }
    return this.#bytes.subarray(start, start + length);
  }

  /** Key of element `index`. */
  key(index: number): Uint8Array {
    const base = PAGE_HEADER_SIZE + index * ELEMENT_SIZE;
    return this.isLeaf
      ? this.#slice(
        index,
        this.#view.getUint32(base + 4, true),
        this.#view.getUint32(base + 8, true),
      )
      : this.#slice(index, this.#view.getUint32(base, true), this.#view.getUint32(base + 4, true));
  }

  /** Child page of branch element `index`. */
  child(index: number): bigint {
    return this.#view.getBigUint64(PAGE_HEADER_SIZE + index * ELEMENT_SIZE + 8, true);
  }

  /** Whether leaf element `index` holds a nested bucket. */
  isBucket(index: number): boolean {
    return (this.#view.getUint32(PAGE_HEADER_SIZE + index * ELEMENT_SIZE, true) &
      BUCKET_LEAF_FLAG) !== 0;
  }

  /** Value of leaf element `index`. */
  value(index: number): Uint8Array {
    const base = PAGE_HEADER_SIZE + index * ELEMENT_SIZE;
    const pos = this.#view.getUint32(base + 4, true);
    const keySize = this.#view.getUint32(base + 8, true);
    return this.#slice(index, pos + keySize, this.#view.getUint32(base + 12, true));
  }

  /** The element a lookup of `key` follows: exact in a leaf, the covering child in a branch. */
  search(key: Uint8Array): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(this.key(middle), key) < 0) low = middle + 1;
      else high = middle;
    }
    if (this.isLeaf) {
      return low < this.count && compareBytes(this.key(low), key) === 0 ? low : -1;
    }
    const exact = low < this.count && compareBytes(this.key(low), key) === 0;
    return exact ? low : Math.max(low - 1, 0);
  }
}

/** A bucket: sorted keys, each with a value or a nested bucket. */
export class BoltBucket {
  readonly #database: BoltDatabase;
  /** The root page id, or the inline page for an inline bucket. */
  readonly #root: number | BoltPage;

  /** Wraps a bucket whose tree starts at `root` (a page id, or an inline page). */
  constructor(database: BoltDatabase, root: number | BoltPage) {
    this.#database = database;
    this.#root = root;
  }

  #rootPage(): BoltPage {
    return typeof this.#root === "number" ? this.#database.page(this.#root) : this.#root;
  }

  #entry(page: BoltPage, index: number): BoltEntry {
    const key = page.key(index);
    if (!page.isBucket(index)) return { key, value: page.value(index), bucket: undefined };
    return { key, value: undefined, bucket: this.#database.nestedBucket(page.value(index)) };
  }

  /** Every key of the bucket, in key order. */
  entries(): BoltEntry[] {
    const found: BoltEntry[] = [];
    const walk = (page: BoltPage, depth: number): void => {
      if (depth > MAX_TREE_DEPTH) this.#database.fail("a bucket's tree is impossibly deep");
      for (let i = 0; i < page.count; i++) {
        if (page.isLeaf) found.push(this.#entry(page, i));
        else walk(this.#database.page(this.#database.pageId(page.child(i))), depth + 1);
      }
    };
    walk(this.#rootPage(), 0);
    return found;
  }

  /** The entry stored under `key`, or undefined. */
  entry(key: string | Uint8Array): BoltEntry | undefined {
    const wanted = typeof key === "string" ? new TextEncoder().encode(key) : key;
    let page = this.#rootPage();
    for (let depth = 0; !page.isLeaf; depth++) {
      if (depth > MAX_TREE_DEPTH) this.#database.fail("a bucket's tree is impossibly deep");
      if (page.count === 0) return undefined;
      page = this.#database.page(this.#database.pageId(page.child(page.search(wanted))));
    }
    const index = page.search(wanted);
    return index < 0 ? undefined : this.#entry(page, index);
  }

  /** The plain value stored under `key`; undefined when absent or a nested bucket. */
  get(key: string | Uint8Array): Uint8Array | undefined {
    return this.entry(key)?.value;
  }

  /** The nested bucket stored under `key`; undefined when absent or a plain value. */
  bucket(key: string | Uint8Array): BoltBucket | undefined {
    return this.entry(key)?.bucket;
  }

  /** The nested bucket at the end of a path of keys, or undefined where the path breaks. */
  path(...keys: string[]): BoltBucket | undefined {
    const [first, ...rest] = keys;
    if (first === undefined) return this;
    return this.bucket(first)?.path(...rest);
  }
}

/** A bbolt database file, read from its bytes, as its newest valid meta page describes it. */
export class BoltDatabase {
  readonly #bytes: Uint8Array;
  /** The file's name in error messages. */
  readonly source: string;
  /** The meta page in use. */
  readonly meta: BoltMeta;

  /**
   * Reads the database in `bytes` (the whole file); `source` names it in errors. Throws a
   * {@link BoltFormatError} when neither meta page is valid.
   */
  constructor(bytes: Uint8Array, source: string) {
    this.#bytes = bytes;
    this.source = source;
    this.meta = newestMeta(bytes, source);
  }

  /** The root bucket (its keys are the top-level buckets). */
  root(): BoltBucket {
    return new BoltBucket(this, this.meta.rootPage);
  }

  /** Throws a {@link BoltFormatError} about this file. */
  fail(detail: string): never {
    throw new BoltFormatError(this.source, detail);
  }

  /** A page id read from the file, checked to be a number. */
  pageId(value: bigint): number {
    return safeNumber(value, "page id", this.source);
  }

  /** The branch or leaf page `id`, with its overflow pages. */
  page(id: number): BoltPage {
    const { pageSize } = this.meta;
    const start = id * pageSize;
    if (id < 2 || start + PAGE_HEADER_SIZE > this.#bytes.length) {
      this.fail(`page ${id} is outside the file`);
    }
    const view = new DataView(this.#bytes.buffer, this.#bytes.byteOffset + start);
    const stored = view.getBigUint64(0, true);
    if (stored !== BigInt(id)) this.fail(`page ${id} calls itself page ${stored}`);
    const end = start + (view.getUint32(12, true) + 1) * pageSize;
    if (end > this.#bytes.length) this.fail(`page ${id} runs past the end of the file`);
    return new BoltPage(this.#bytes.subarray(start, end), this.source, `page ${id}`);
  }

  /** The bucket a bucket-flagged leaf value describes (a root page, or an inline page). */
  nestedBucket(value: Uint8Array): BoltBucket {
    if (value.length < BUCKET_HEADER_SIZE) this.fail("a bucket value is cut short");
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    const root = view.getBigUint64(0, true);
    if (root !== 0n) return new BoltBucket(this, this.pageId(root));
    return new BoltBucket(
      this,
      new BoltPage(value.subarray(BUCKET_HEADER_SIZE), this.source, "an inline bucket"),
    );
  }
}
