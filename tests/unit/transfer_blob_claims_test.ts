/**
 * Blob claims across the images of one operation: one holder per blob and registry, granted in
 * the order asked, the next holder told where the blob landed; other blobs and other registries
 * never wait; a claimant that gives up while waiting keeps the queue moving.
 */

import assert from "node:assert/strict";
import { BlobClaims } from "../../lib/transfer/blob_claims.ts";

const REGISTRY = "http://127.0.0.1:5000/";
const DIGEST = `sha256:${"1".repeat(64)}`;

/** Resolves after the microtask and timer queues have run once. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("a second claim on a blob waits for the first, then learns where it landed", async () => {
  const claims = new BlobClaims();
  const first = await claims.claim(REGISTRY, DIGEST);
  assert.equal(first.landedIn, undefined);
  let secondGranted = false;
  const second = claims.claim(REGISTRY, DIGEST).then((claim) => {
    secondGranted = true;
    return claim;
  });
  await settle();
  assert.equal(secondGranted, false, "the blob is held");
  first.landed("mirror/a");
  first.release();
  const held = await second;
  assert.equal(held.landedIn, "mirror/a");
  held.landed("mirror/b");
  held.release();
  const third = await claims.claim(REGISTRY, DIGEST);
  assert.equal(third.landedIn, "mirror/b", "the most recent repository");
  third.release();
});

Deno.test("claims are granted in the order asked", async () => {
  const claims = new BlobClaims();
  const order: number[] = [];
  const holder = await claims.claim(REGISTRY, DIGEST);
  const waiting = [1, 2, 3].map((n) =>
    claims.claim(REGISTRY, DIGEST).then((claim) => {
      order.push(n);
      claim.release();
    })
  );
  holder.release();
  await Promise.all(waiting);
  assert.deepEqual(order, [1, 2, 3]);
});

Deno.test("another blob, or the same blob in another registry, does not wait", async () => {
  const claims = new BlobClaims();
  const held = await claims.claim(REGISTRY, DIGEST);
  const other = await claims.claim(REGISTRY, `sha256:${"2".repeat(64)}`);
  const elsewhere = await claims.claim("http://127.0.0.1:5001/", DIGEST);
  assert.equal(elsewhere.landedIn, undefined);
  other.release();
  elsewhere.release();
  held.release();
});

Deno.test("a claimant that aborts while waiting rejects with the reason; the next one still gets the blob", async () => {
  const claims = new BlobClaims();
  const held = await claims.claim(REGISTRY, DIGEST);
  const controller = new AbortController();
  const abandoned = claims.claim(REGISTRY, DIGEST, controller.signal);
  let nextGranted = false;
  const next = claims.claim(REGISTRY, DIGEST).then((claim) => {
    nextGranted = true;
    return claim;
  });
  controller.abort(new Error("stop"));
  await assert.rejects(abandoned, /stop/);
  await settle();
  assert.equal(nextGranted, false, "still behind the holder");
  held.release();
  (await next).release();
  assert.ok(nextGranted);
});
