/**
 * The containerd store reader against stores a real containerd wrote (`ctr images import`):
 * listing matches `ctr images ls` in every namespace, platforms a namespace never received are
 * reported as skipped, reads work while containerd runs (also while it commits) and after it
 * stopped, and change no file of the store. Then images go from the store to a real Distribution
 * registry through `push()` and come back through skopeo with the store's digests.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  DEFAULT_PUSH_SETTINGS,
  listContainerdImages,
  openContainerdStore,
  push,
  type PushOptions,
  resolveContainerdImage,
} from "../../lib/mod.ts";
import { PusherError } from "../../lib/errors.ts";
import { startContainerd, type TestContainerd } from "../helpers/containerd.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";

/** Namespace → what is imported into it. */
const NAMESPACES = ["all", "one", "two"] as const;
const APP = "docker.io/library/app:v1";
const EXAMPLE = "example.com/app:v1";
/** Store reads made while containerd commits imports into another namespace. */
const READS_DURING_WRITES = 40;

async function fileDigests(root: string): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile) {
        const info = await Deno.stat(path);
        const hash = createHash("sha256").update(await Deno.readFile(path)).digest("hex");
        digests.set(path, `${hash} ${info.size} ${info.mtime?.getTime()}`);
      }
    }
  };
  await walk(root);
  return digests;
}

/** The file containerd keeps a blob in. */
function blobFile(root: string, digest: string): string {
  return `${root}/io.containerd.content.v1.content/blobs/sha256/${digest.slice("sha256:".length)}`;
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

/** What the reader lists per namespace: name → target digest. */
async function readerListing(root: string): Promise<Record<string, Record<string, string>>> {
  const listing: Record<string, Record<string, string>> = {};
  for (const namespace of NAMESPACES) {
    const store = await openContainerdStore(root, { namespace });
    listing[namespace] = Object.fromEntries(
      store.images.map((image) => [image.name, image.target.digest]),
    );
  }
  return listing;
}

async function ctrListing(
  containerd: TestContainerd,
): Promise<Record<string, Record<string, string>>> {
  const listing: Record<string, Record<string, string>> = {};
  for (const namespace of NAMESPACES) {
    listing[namespace] = Object.fromEntries(
      (await containerd.listImages(namespace)).map((image) => [image.name, image.digest]),
    );
  }
  return listing;
}

function pushOptions(
  root: string,
  namespace: string,
  image: string,
  target: string,
): PushOptions {
  return {
    ...DEFAULT_PUSH_SETTINGS,
    file: `containerd:${root}`,
    containerdRoot: root,
    namespace,
    image,
    targets: [target],
    skipTls: false,
    caCertFiles: [],
    dryRun: false,
    forceUpload: false,
    noCache: true,
  };
}

Deno.test("containerd store: listing, skipped platforms, lock-free reads, unchanged files, push", async (t) => {
  const fixtures = await sharedFixtures();
  const multiPlatform = fixtures["oci-multi-platform"];
  const [amd64, arm64, attestation] = multiPlatform.images;
  assert.ok(amd64 && arm64 && attestation && multiPlatform.indexDigest);
  await using containerd = await startContainerd();
  const root = containerd.root;
  await containerd.importArchive("all", multiPlatform.path, { allPlatforms: true });
  await containerd.importArchive("one", multiPlatform.path);
  await containerd.importArchive("two", fixtures["oci-archive"].path, {
    baseName: "example.com/app",
  });
  await containerd.importArchive("two", fixtures["docker-archive"].path);
  const expected = await ctrListing(containerd);
  assert.deepEqual(Object.keys(expected.two ?? {}).sort(), [APP, EXAMPLE]);

  await t.step(
    "lists every namespace's images with the target digests ctr shows (running)",
    async () => {
      assert.deepEqual(await readerListing(root), expected);
      const store = await openContainerdStore(root, { namespace: "all" });
      assert.deepEqual(store.namespaces, ["all", "one", "two"]);
      const blobs = new Set(
        multiPlatform.images.flatMap((image) => [image.configDigest, ...image.layerDigests]),
      );
      let storedBytes = 0;
      for (const digest of blobs) storedBytes += (await Deno.stat(blobFile(root, digest))).size;
      assert.deepEqual(await listContainerdImages(store), [{
        names: [APP],
        platforms: ["linux/amd64", "linux/arm64/v8", "unknown/unknown"],
        skippedPlatforms: [],
        size: storedBytes,
        uncompressedLayers: 0,
        digest: multiPlatform.indexDigest,
        mediaType: "application/vnd.oci.image.index.v1+json",
      }]);
    },
  );

  await t.step(
    "a platform the namespace never received is skipped, though another namespace has its blobs",
    async () => {
      const store = await openContainerdStore(root, { namespace: "one" });
      const armManifest = `blobs/sha256/${arm64.manifestDigest?.slice("sha256:".length)}`;
      assert.equal(store.has(armManifest), false);
      assert.ok((await openContainerdStore(root, { namespace: "all" })).has(armManifest));
      const [summary] = await listContainerdImages(store);
      assert.deepEqual(summary?.platforms, ["linux/amd64"]);
      assert.deepEqual(summary?.skippedPlatforms, ["linux/arm64/v8"]);
      const selection = await resolveContainerdImage(store, "app:v1");
      assert.deepEqual(selection.skippedPlatforms, ["linux/arm64/v8"]);
      assert.equal(selection.index, undefined);
      assert.deepEqual(selection.images.map((image) => image.sourceManifest?.digest), [
        amd64.manifestDigest,
      ]);
      assert.deepEqual(selection.images[0]?.names, [APP]);
    },
  );

  await t.step(
    "an index with every platform present resolves to the index, layers readable by entry",
    async () => {
      const store = await openContainerdStore(root, { namespace: "all" });
      const selection = await resolveContainerdImage(store);
      assert.equal(selection.index?.digest, multiPlatform.indexDigest);
      assert.deepEqual(
        selection.images.map((image) => image.config.digest),
        [amd64.configDigest, arm64.configDigest, attestation.configDigest],
      );
      for (const image of selection.images) {
        for (const layer of image.layers) {
          assert.equal(await drain(store.openEntry(layer.entry)), layer.storedDigest);
        }
      }
    },
  );

  await t.step("a docker-archive import resolves to containerd's docker manifest", async () => {
    const store = await openContainerdStore(root, { namespace: "two" });
    const selection = await resolveContainerdImage(store, APP);
    const [image] = selection.images;
    assert.equal(image?.sourceManifest?.digest, expected.two?.[APP]);
    assert.equal(
      image?.sourceManifest?.mediaType,
      "application/vnd.docker.distribution.manifest.v2+json",
    );
    assert.equal(image?.config.digest, fixtures["docker-archive"].configDigest);
    assert.deepEqual(
      image?.layers.map((layer) => layer.diffId),
      fixtures["docker-archive"].diffIds,
    );
  });

  await t.step(
    "errors: unknown namespace, unknown image, several images without a name, no images",
    async () => {
      await assert.rejects(
        openContainerdStore(root, { namespace: "k8s.io" }),
        (error: unknown) =>
          error instanceof PusherError && error.kind === "input" &&
          /has no namespace "k8s\.io"/.test(error.message) &&
          error.hint === "its namespaces: all, one, two",
      );
      const store = await openContainerdStore(root, { namespace: "two" });
      await assert.rejects(
        resolveContainerdImage(store, "nginx:latest"),
        (error: unknown) => error instanceof PusherError && error.kind === "usage",
      );
      await assert.rejects(
        resolveContainerdImage(store),
        (error: unknown) =>
          error instanceof PusherError && error.kind === "usage" && /2 images/.test(error.message),
      );
      await containerd.ctr(["namespaces", "create", "empty"]);
      const empty = await openContainerdStore(root, { namespace: "empty" });
      assert.deepEqual(await listContainerdImages(empty), []);
      await assert.rejects(
        resolveContainerdImage(empty),
        (error: unknown) =>
          error instanceof PusherError && error.kind === "input" &&
          error.message === `namespace "empty" of containerd store ${root} holds no images`,
      );
      await assert.rejects(
        openContainerdStore(`${root}/missing`),
        (error: unknown) => error instanceof PusherError && error.kind === "input",
      );
    },
  );

  await t.step("reads stay consistent while containerd commits imports", async () => {
    const busy = (async () => {
      for (let i = 0; i < 4; i++) {
        await containerd.importArchive(`busy${i}`, multiPlatform.path, { allPlatforms: true });
      }
    })();
    let reads = 0;
    let writing = true;
    busy.finally(() => writing = false);
    while (reads < READS_DURING_WRITES || writing) {
      const listing = await readerListing(root);
      assert.deepEqual(listing, expected);
      reads++;
    }
    await busy;
    const store = await openContainerdStore(root, { namespace: "busy3" });
    assert.deepEqual(store.images.map((image) => image.target.digest), [multiPlatform.indexDigest]);
  });

  await containerd.stop();

  await t.step(
    "after containerd stopped: the same listing, and no file of the store changed",
    async () => {
      const before = await fileDigests(root);
      assert.deepEqual(await readerListing(root), expected);
      for (const namespace of NAMESPACES) {
        const store = await openContainerdStore(root, { namespace });
        for (const summary of await listContainerdImages(store)) {
          assert.equal(summary.problem, undefined, `${namespace} ${summary.names}`);
          const selection = await resolveContainerdImage(store, summary.names[0]);
          for (const image of selection.images) {
            for (const layer of image.layers) await drain(store.openEntry(layer.entry));
          }
        }
      }
      assert.deepEqual(await fileDigests(root), before);
    },
  );

  await t.step(
    "push() from the store: index, single manifest and the present platform of an index",
    async () => {
      const registry = await startRegistry();
      try {
        const cases = [
          { namespace: "all", image: "app:v1", digest: multiPlatform.indexDigest, all: true },
          { namespace: "two", image: EXAMPLE, digest: expected.two?.[EXAMPLE], all: false },
          { namespace: "one", image: "app:v1", digest: amd64.manifestDigest, all: false },
        ];
        for (const { namespace, image, digest, all } of cases) {
          assert.ok(digest, namespace);
          const target = `${registry.host}/from-containerd/${namespace}:v1`;
          const warnings: string[] = [];
          const result = await push(pushOptions(root, namespace, image, target), {
            events: (event) => {
              if (event.type === "warning") warnings.push(event.message);
            },
          });
          assert.equal(result.digest, digest, namespace);
          const pulled = await pullAndVerify(target, { all, expectedManifestDigest: digest });
          assert.equal(pulled.images.length, all ? 3 : 1);
          assert.deepEqual(
            warnings,
            namespace === "one"
              ? [
                "platform linux/arm64/v8 is named in the archive but its blobs are absent: left out",
              ]
              : [],
          );
        }
      } finally {
        await registry.stop();
      }
    },
  );
});
