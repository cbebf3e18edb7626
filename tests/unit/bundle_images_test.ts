/**
 * Where `push --all` puts each image of an archive: every name with a repository under the
 * prefix (registry host dropped, Docker Hub's `library/` kept), all names of one image, the last
 * segment only with `flatten`; an image without such a name is a failure naming its digest; two
 * images landing on one target are refused before anything moves. And `pull --from`'s sources:
 * arguments first, a line's platforms replacing `--platform`, archives and targets refused with
 * their place.
 */

import assert from "node:assert/strict";
import { placeImages } from "../../lib/bundle/bundle_images.ts";
import { PusherError } from "../../lib/errors.ts";
import type { LayoutImage } from "../../lib/image/layout_choice.ts";
import type { ImageSelection } from "../../lib/image/types.ts";
import { pullSources } from "../../lib/pull/list_sources.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const MANIFEST = `sha256:${"a".repeat(64)}`;
const CONFIG = `sha256:${"c".repeat(64)}`;

function selection(): ImageSelection {
  return {
    family: "oci",
    images: [{
      names: [],
      config: { bytes: new Uint8Array(0), digest: CONFIG, mediaType: "" },
      layers: [],
    }],
    skippedPlatforms: [],
    warnings: [],
  };
}

function listed(names: string[], withDescriptor = true): LayoutImage {
  return {
    names,
    ...(withDescriptor ? { descriptor: { mediaType: "", digest: MANIFEST, size: 1 } } : {}),
    resolved: selection(),
  };
}

const PREFIX = { prefix: "registry.internal:5000/mirror", flatten: false };

Deno.test("every name with a repository lands under the prefix, the registry host dropped", () => {
  const [nginx, tools, docker] = placeImages([
    listed(["docker.io/library/nginx:1.27", "nginx:latest"]),
    listed(["127.0.0.1:5000/team/tools/cli:2"]),
    listed(["app:v1"], false),
  ], PREFIX);
  assert.deepEqual(nginx?.targets, [
    "registry.internal:5000/mirror/library/nginx:1.27",
    "registry.internal:5000/mirror/library/nginx:latest",
  ]);
  assert.equal(nginx?.selector, MANIFEST, "an OCI image is chosen by its manifest digest");
  assert.equal(nginx?.label, "nginx:1.27");
  assert.deepEqual(tools?.targets, ["registry.internal:5000/mirror/team/tools/cli:2"]);
  assert.deepEqual(docker?.targets, ["registry.internal:5000/mirror/library/app:v1"]);
  assert.equal(docker?.selector, CONFIG, "a docker manifest.json image by its config digest");
});

Deno.test("--flatten keeps the last segment; two images on one target are refused", () => {
  const [tools] = placeImages([listed(["127.0.0.1:5000/team/tools/cli:2"])], {
    ...PREFIX,
    flatten: true,
  });
  assert.deepEqual(tools?.targets, ["registry.internal:5000/mirror/cli:2"]);
  assert.throws(
    () => placeImages([listed(["a/app:1"]), listed(["b/app:1"])], { ...PREFIX, flatten: true }),
    (error: unknown) =>
      error instanceof PusherError && error.kind === "usage" &&
      /a\/app:1 and b\/app:1 would both be pushed to registry.internal:5000\/mirror\/app:1/.test(
        error.message,
      ) && /without --flatten/.test(error.hint ?? ""),
  );
});

Deno.test("an image without a repository name fails naming its digest; a broken one keeps its error", () => {
  const broken = new PusherError("input", "the archive is incomplete");
  const [unnamed, bareTag, unreadable] = placeImages([
    listed([]),
    listed(["v1"]),
    { names: ["x/y:1"], resolved: broken },
  ], PREFIX);
  assert.deepEqual(unnamed?.targets, []);
  assert.match(unnamed?.problem?.message ?? "", new RegExp(`the image ${MANIFEST} has no name`));
  assert.match(unnamed?.problem?.hint ?? "", new RegExp(`--image ${MANIFEST}`));
  assert.match(bareTag?.problem?.message ?? "", /\(only v1\)/);
  assert.equal(unreadable?.problem, broken);
});

Deno.test("pull sources: arguments, then the list's lines with their own platforms", async () => {
  await using dir = await tempDir("pull-list-");
  const list = `${dir.path}/images.txt`;
  await Deno.writeTextFile(
    list,
    "# set\nregistry.test/a:1\n--platform=linux/arm64 registry.test/b:2  # arm only\n",
  );
  assert.deepEqual(await pullSources(["registry.test/x:1"], ["linux/amd64"], list), [
    { reference: "registry.test/x:1", platforms: ["linux/amd64"] },
    { reference: "registry.test/a:1", platforms: ["linux/amd64"], location: `${list}:2` },
    { reference: "registry.test/b:2", platforms: ["linux/arm64"], location: `${list}:3` },
  ]);
  const refused = async (text: string, pattern: RegExp) => {
    await Deno.writeTextFile(list, text);
    await assert.rejects(
      pullSources([], [], list),
      (error: unknown) =>
        error instanceof PusherError && error.kind === "usage" && pattern.test(error.message),
    );
  };
  await refused("registry.test/a:1\n./app.tar\n", /images\.txt:2: \.\/app\.tar is an archive/);
  await refused("registry.test/a:1 => other.test/a:1\n", /images\.txt:1: "=> other\.test\/a:1"/);
  await refused("# nothing\n", /lists no images/);
  await assert.rejects(
    pullSources([], [], `${dir.path}/missing.txt`),
    (error: unknown) => error instanceof PusherError && error.kind === "input",
  );
});
