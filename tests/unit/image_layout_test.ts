import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { platformName } from "../../lib/oci/platform.ts";
import { canonicalReference } from "../../lib/image/image_select.ts";
import { resolveLayout } from "../../lib/image/layout.ts";
import { openArchive } from "../../lib/image/open_archive.ts";
import { openRandomAccessArchive } from "../../lib/image/random_access.ts";
import { scanArchiveStream } from "../../lib/image/stream_scan.ts";
import { parseTarStream } from "../../lib/image/tar_stream.ts";
import type { EntryView, ImageSelection } from "../../lib/image/types.ts";
import {
  concat,
  digestOf,
  type FixtureInfo,
  LAYOUT_NAMES,
  sharedFixtures,
  writeTar,
} from "../helpers/fixtures.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return concat(chunks);
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller): void {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** Checks a selection against what the fixture says it must be; `layerDigest` reads layer bytes. */
async function assertSelection(
  selection: ImageSelection,
  fixture: FixtureInfo,
  layerDigest: (entry: string) => Promise<string>,
): Promise<void> {
  const label = fixture.layout;
  assert.equal(selection.family, fixture.family, label);
  assert.deepEqual(selection.skippedPlatforms, fixture.skippedPlatforms, label);
  assert.deepEqual(selection.warnings, [], label);
  assert.equal(selection.index?.digest, fixture.indexDigest, label);
  if (selection.index !== undefined) {
    assert.equal(digestOf(selection.index.bytes), selection.index.digest, label);
  }
  assert.equal(selection.images.length, fixture.images.length, label);
  for (const [i, expected] of fixture.images.entries()) {
    const image = selection.images[i];
    assert.ok(image !== undefined);
    assert.deepEqual(image.names, expected.names, label);
    assert.equal(image.config.digest, expected.configDigest, label);
    assert.equal(digestOf(image.config.bytes), expected.configDigest, label);
    assert.equal(image.sourceManifest?.digest, expected.manifestDigest, label);
    if (image.sourceManifest !== undefined) {
      assert.equal(digestOf(image.sourceManifest.bytes), image.sourceManifest.digest, label);
    }
    if (image.platform !== undefined) {
      assert.equal(platformName(image.platform), expected.platform, label);
    }
    assert.deepEqual(image.layers.map((l) => l.diffId), expected.diffIds, label);
    assert.ok(image.layers.every((l) => l.compression === expected.layerCompression), label);
    for (const [j, layer] of image.layers.entries()) {
      assert.equal(await layerDigest(layer.entry), expected.layerDigests[j], `${label} layer ${j}`);
      if (layer.storedDigest !== undefined) {
        assert.equal(layer.storedDigest, expected.layerDigests[j], label);
      }
    }
  }
  if (fixture.family === "oci") {
    assert.ok(selection.images.every((image) => image.sourceManifest !== undefined), label);
  }
}

const optionsFor = (fixture: FixtureInfo): { image?: string } =>
  fixture.choose === undefined ? {} : { image: fixture.choose };

for (const layout of LAYOUT_NAMES) {
  Deno.test(`layout ${layout}: resolved in one streaming pass`, async () => {
    const fixture = (await sharedFixtures())[layout];
    const file = await Deno.open(fixture.path);
    // A small memory limit makes every real layer a "large" entry handed to the handler.
    const scan = await scanArchiveStream(
      file.readable,
      async (_path, _size, body) => digestOf(await collect(body)),
      { name: fixture.path, memoryLimit: 64 * 1024 },
    );
    assert.equal(scan.compression, fixture.compression);
    const selection = await resolveLayout(scan.view, optionsFor(fixture));
    await assertSelection(selection, fixture, async (entry) => {
      return scan.large.get(entry) ?? digestOf(await scan.view.read(entry));
    });
  });

  Deno.test(`layout ${layout}: resolved with random access when the file is a plain tar`, async () => {
    const fixture = (await sharedFixtures())[layout];
    const source = await openArchive(fixture.path);
    assert.equal(source.mode, fixture.compression === "none" ? "random" : "stream");
    if (source.mode !== "random") {
      await source.stream.cancel();
      return;
    }
    const selection = await resolveLayout(source.archive, optionsFor(fixture));
    await assertSelection(
      selection,
      fixture,
      async (entry) => digestOf(await collect(source.archive.openEntry(entry))),
    );
  });
}

async function assertUsageError(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PusherError, `expected PusherError, got ${error}`);
    assert.equal(error.kind, "usage");
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("layout: a multi-image archive without --image is refused with a list", async () => {
  const fixtures = await sharedFixtures();
  for (const layout of ["docker-legacy-multi", "oci-multi-image"] as const) {
    const archive = await openRandomAccessArchive(fixtures[layout].path);
    await assert.rejects(resolveLayout(archive), (error: unknown) => {
      assert.ok(error instanceof PusherError);
      assert.equal(error.kind, "usage");
      assert.equal(
        error.message,
        `the archive holds 2 images (${
          fixtures[layout].holds.join(", ")
        }); choose one with --image`,
      );
      assert.match(error.hint ?? "", /--image /);
      return true;
    });
  }
});

Deno.test("layout: --image matching tolerates docker.io/library/, bare OCI tags and digests", async () => {
  const fixtures = await sharedFixtures();
  const legacy = await openRandomAccessArchive(fixtures["docker-legacy-multi"].path);
  const toolsConfig = fixtures["docker-legacy-multi"].configDigest;
  for (const image of ["tools:v2", "docker.io/library/tools:v2", "library/tools:v2", toolsConfig]) {
    const selection = await resolveLayout(legacy, { image });
    assert.equal(selection.images[0]?.config.digest, toolsConfig, image);
  }
  await assertUsageError(
    resolveLayout(legacy, { image: "tools" }),
    /^image tools is not in the archive; it holds: app:v1, tools:v2$/,
  );

  const oci = await openRandomAccessArchive(fixtures["oci-multi-image"].path);
  const v2 = fixtures["oci-multi-image"].images[0]?.manifestDigest ?? "";
  for (const image of ["v2", "tools:v2", "registry.example.com/team/tools:v2", v2]) {
    const selection = await resolveLayout(oci, { image });
    assert.equal(selection.images[0]?.sourceManifest?.digest, v2, image);
  }
  await assertUsageError(resolveLayout(oci, { image: "app:v3" }), /not in the archive/);

  // docker save v25: two tags of one image are one image; either tag (or the full name) picks it.
  const v25 = await openRandomAccessArchive(fixtures["docker-v25"].path);
  for (const image of [undefined, "app:latest", "app", "docker.io/library/app:v1"]) {
    const selection = await resolveLayout(v25, image === undefined ? {} : { image });
    assert.deepEqual(selection.images[0]?.names, ["app:v1", "app:latest"]);
  }
  // A single-image archive still refuses a name it does not hold.
  await assertUsageError(resolveLayout(v25, { image: "other:v1" }), /not in the archive/);
});

Deno.test("layout: canonical references", () => {
  assert.equal(canonicalReference("app"), "docker.io/library/app:latest");
  assert.equal(canonicalReference("team/app:v1"), "docker.io/team/app:v1");
  assert.equal(canonicalReference("index.docker.io/library/app:v1"), "docker.io/library/app:v1");
  assert.equal(canonicalReference("localhost:5000/app"), "localhost:5000/app:latest");
  assert.equal(
    canonicalReference("ghcr.io/o/app@sha256:abc"),
    "ghcr.io/o/app@sha256:abc",
  );
});

// ---------------------------------------------------------------------------------------------
// Broken archives: built by editing a fixture's entries.
// ---------------------------------------------------------------------------------------------

async function filesOf(path: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const file = await Deno.open(path);
  for await (const { header, body } of parseTarStream(file.readable, path)) {
    const bytes = await collect(body);
    if (header.type === "file") files.set(header.path, bytes);
  }
  return files;
}

async function viewOf(files: Map<string, Uint8Array>): Promise<EntryView> {
  const tar = writeTar([...files].map(([name, data]) => ({ name, data })));
  return (await scanArchiveStream(streamOf(tar), () => Promise.resolve(null))).view;
}

// Edits reach into arbitrary JSON documents; typing each shape would only restate the test.
// deno-lint-ignore no-explicit-any
type AnyJson = any;

function editJson(
  files: Map<string, Uint8Array>,
  path: string,
  edit: (json: AnyJson) => void,
): void {
  const json = JSON.parse(decoder.decode(files.get(path)));
  edit(json);
  files.set(path, encoder.encode(JSON.stringify(json)));
}

/** Rewrites a blob under its new digest and points `index.json`'s first entry (or `from`) at it. */
function replaceBlob(
  files: Map<string, Uint8Array>,
  oldDigest: string,
  bytes: Uint8Array,
): string {
  const digest = digestOf(bytes);
  files.delete(`blobs/sha256/${oldDigest.slice(7)}`);
  files.set(`blobs/sha256/${digest.slice(7)}`, bytes);
  for (const [path, data] of files) {
    if (
      path.startsWith("blobs/") && path !== `blobs/sha256/${digest.slice(7)}` ||
      path === "index.json"
    ) {
      const text = decoder.decode(data);
      if (text.includes(oldDigest)) {
        files.set(
          path,
          encoder.encode(
            text.replaceAll(oldDigest, digest).replace(
              new RegExp(`("digest":"${digest}","size":)\\d+`),
              `$1${bytes.length}`,
            ),
          ),
        );
      }
    }
  }
  return digest;
}

async function assertFails(
  view: EntryView,
  kind: string,
  pattern: RegExp,
  image?: string,
): Promise<void> {
  await assert.rejects(
    resolveLayout(view, image === undefined ? {} : { image }),
    (error: unknown) => {
      assert.ok(error instanceof PusherError, `expected PusherError, got ${error}`);
      assert.equal(error.kind, kind, error.message);
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes("\n"));
      return true;
    },
  );
}

Deno.test("layout: the refusal lists full names the way docker shows them", async () => {
  const files = await filesOf((await sharedFixtures())["oci-multi-image"].path);
  editJson(files, "index.json", (json) => {
    json.manifests[0].annotations["io.containerd.image.name"] = "docker.io/library/app:v1";
    json.manifests[1].annotations["io.containerd.image.name"] = "ghcr.io/team/tools:v2";
  });
  const view = await viewOf(files);
  await assertUsageError(
    resolveLayout(view),
    /^the archive holds 2 images \(app:v1, ghcr.io\/team\/tools:v2\); choose one with --image$/,
  );
  // With full names present, a bare tag alone no longer picks an image.
  await assertUsageError(resolveLayout(view, { image: "other:v2" }), /not in the archive/);
  const selection = await resolveLayout(view, { image: "ghcr.io/team/tools:v2" });
  assert.deepEqual(selection.images[0]?.names, ["ghcr.io/team/tools:v2"]);
});

Deno.test("layout: broken docker manifest.json archives", async () => {
  const fixture = (await sharedFixtures())["docker-legacy"];
  const pristine = await filesOf(fixture.path);

  let files = new Map(pristine);
  files.set("manifest.json", encoder.encode('[{"Config": '));
  await assertFails(await viewOf(files), "input", /^manifest.json is not valid JSON/);

  files = new Map(pristine);
  files.set("manifest.json", encoder.encode("[]"));
  await assertFails(await viewOf(files), "input", /manifest.json lists no images/);

  files = new Map(pristine);
  editJson(files, "manifest.json", (json) => json[0].Layers[1] = "missing/layer.tar");
  await assertFails(
    await viewOf(files),
    "input",
    /names layer "missing\/layer.tar", which is not in/,
  );

  files = new Map(pristine);
  editJson(files, "manifest.json", (json) => json[0].Layers.pop());
  await assertFails(await viewOf(files), "input", /lists 3 diff_ids but .* has 2 layers/);

  files = new Map(pristine);
  editJson(files, "manifest.json", (json) => json[0].Config = "../outside.json");
  await assertFails(await viewOf(files), "input", /invalid entry path "..\/outside.json"/);

  files = new Map(pristine);
  editJson(files, "manifest.json", (json) => json[0].Config = "absent.json");
  await assertFails(await viewOf(files), "input", /Config names "absent.json", which is not in/);

  files = new Map(pristine);
  files.delete("manifest.json");
  assert.ok(files.has("repositories"));
  await assertFails(await viewOf(files), "input", /no manifest.json: a docker save from before/);
  files.delete("repositories");
  await assertFails(await viewOf(files), "input", /neither manifest.json nor index.json/);
});

Deno.test("layout: a docker config edited after saving goes up under its content's digest", async () => {
  const fixture = (await sharedFixtures())["docker-legacy"];
  const files = await filesOf(fixture.path);
  const configPath = `${fixture.configDigest.slice(7)}.json`;
  editJson(files, configPath, (json) => json.config.Cmd = ["/bin/edited"]);
  const edited = digestOf(files.get(configPath) ?? new Uint8Array());
  const selection = await resolveLayout(await viewOf(files));
  const image = selection.images[0];
  assert.equal(image?.config.digest, edited);
  assert.equal(digestOf(image.config.bytes), edited);
  // The diff_ids still come from the config, so every layer is still checked as it goes up.
  assert.deepEqual(image.layers.map((layer) => layer.diffId), fixture.diffIds);
  assert.equal(selection.warnings.length, 1);
  assert.match(
    selection.warnings[0] ?? "",
    new RegExp(`^config ${configPath} hashes to ${edited}, not the ${fixture.configDigest}`),
  );
});

Deno.test("layout: an index.json listing no images falls back to manifest.json, or is refused", async () => {
  const fixture = (await sharedFixtures())["docker-v25"];
  const pristine = await filesOf(fixture.path);
  for (const manifests of [null, [], undefined]) {
    const files = new Map(pristine);
    editJson(files, "index.json", (json) => json.manifests = manifests);
    const selection = await resolveLayout(await viewOf(files));
    const label = JSON.stringify(manifests) ?? "absent";
    assert.equal(selection.family, "docker", label);
    assert.equal(selection.images[0]?.config.digest, fixture.configDigest, label);
    assert.deepEqual(selection.images[0]?.layers.map((l) => l.diffId), fixture.diffIds, label);
    files.delete("manifest.json");
    await assertFails(await viewOf(files), "input", /^index.json lists no images$/);
  }
});

Deno.test("layout: broken OCI archives", async () => {
  const fixture = (await sharedFixtures())["oci-archive"];
  const pristine = await filesOf(fixture.path);
  const manifestDigest = fixture.images[0]?.manifestDigest ?? "";
  const manifestPath = `blobs/sha256/${manifestDigest.slice(7)}`;
  const configPath = `blobs/sha256/${fixture.configDigest.slice(7)}`;

  let files = new Map(pristine);
  files.set("index.json", encoder.encode("{not json"));
  await assertFails(await viewOf(files), "input", /^index.json is not valid JSON/);

  files = new Map(pristine);
  files.delete(manifestPath);
  await assertFails(
    await viewOf(files),
    "input",
    new RegExp(`names "${manifestPath}", which is not`),
  );

  files = new Map(pristine);
  files.set(configPath, encoder.encode('{"tampered":true}'));
  await assertFails(await viewOf(files), "verify", new RegExp(`blob ${configPath} has digest`));

  files = new Map(pristine);
  editJson(files, "index.json", (json) => json.manifests[0].mediaType = "application/x-unknown");
  await assertFails(
    await viewOf(files),
    "input",
    /unsupported media type "application\/x-unknown"/,
  );

  files = new Map(pristine);
  editJson(files, "index.json", (json) => json.manifests[0].digest = `sha512:${"ab".repeat(64)}`);
  await assertFails(await viewOf(files), "input", /only sha256 digests are supported/);

  files = new Map(pristine);
  {
    const manifest = JSON.parse(decoder.decode(files.get(manifestPath)));
    manifest.layers[0].mediaType = "application/vnd.example.squashfs";
    replaceBlob(files, manifestDigest, encoder.encode(JSON.stringify(manifest)));
  }
  await assertFails(await viewOf(files), "input", /layer 1 has unsupported media type/);

  files = new Map(pristine);
  {
    const manifest = JSON.parse(decoder.decode(files.get(manifestPath)));
    manifest.layers[1].size += 1;
    replaceBlob(files, manifestDigest, encoder.encode(JSON.stringify(manifest)));
  }
  await assertFails(await viewOf(files), "verify", /layer blobs\/sha256\/\w+ is \d+ bytes, but/);

  files = new Map(pristine);
  {
    const manifest = JSON.parse(decoder.decode(files.get(manifestPath)));
    manifest.mediaType = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    replaceBlob(files, manifestDigest, encoder.encode(JSON.stringify(manifest)));
  }
  await assertFails(await viewOf(files), "input", /unsupported media type .*v1\+prettyjws/);
});

Deno.test("layout: containerd save with no platform present is an input error", async () => {
  const fixture = (await sharedFixtures())["docker-containerd"];
  const files = await filesOf(fixture.path);
  const manifest = fixture.images[0]?.manifestDigest ?? "";
  files.delete(`blobs/sha256/${manifest.slice(7)}`);
  await assertFails(
    await viewOf(files),
    "input",
    /none of the platforms .* \(linux\/amd64, linux\/arm64\/v8\) has its blobs in the archive/,
  );
});

Deno.test("layout: a multi-platform archive missing one platform pushes the rest as an index", async () => {
  const fixture = (await sharedFixtures())["oci-multi-platform"];
  const files = await filesOf(fixture.path);
  const arm = fixture.images[1];
  assert.ok(arm !== undefined);
  files.delete(`blobs/sha256/${arm.layerDigests[2]?.slice(7)}`);
  const selection = await resolveLayout(await viewOf(files));
  assert.deepEqual(selection.skippedPlatforms, ["linux/arm64/v8"]);
  // One platform left: pushed as a single image, its attestation dropped with the index.
  assert.equal(selection.index, undefined);
  assert.deepEqual(selection.images.map((i) => i.config.digest), [fixture.configDigest]);
});

Deno.test("layout: docker 25.0.0's layer-less OCI manifest falls back to manifest.json", async () => {
  const fixture = (await sharedFixtures())["docker-v25"];
  const files = await filesOf(fixture.path);
  const manifestDigest = fixture.images[0]?.manifestDigest ?? "";
  const manifest = JSON.parse(decoder.decode(files.get(`blobs/sha256/${manifestDigest.slice(7)}`)));
  manifest.layers = [];
  replaceBlob(files, manifestDigest, encoder.encode(JSON.stringify(manifest)));
  const selection = await resolveLayout(await viewOf(files));
  assert.equal(selection.family, "docker");
  assert.equal(selection.images[0]?.sourceManifest, undefined);
  assert.deepEqual(selection.images[0]?.layers.map((l) => l.diffId), fixture.diffIds);
  assert.deepEqual(selection.images[0]?.layers.map((l) => l.storedDigest), fixture.diffIds);
});
