/**
 * The LIST of a sync: syntax (options, `=>`, comments), targets named under the prefix (also
 * flattened, and from an archive's own name), and every refusal naming its line — all before
 * anything is transferred.
 */

import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import { parseListText, readSyncList, type SyncLine } from "../../lib/sync/list_file.ts";
import { checkPrefix, mirrorTarget } from "../../lib/sync/target_name.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const PREFIX = "registry.example.com/mirror";

/** Asserts `run` throws a PusherError of `kind` whose message starts with `location: `. */
async function assertLineError(
  run: () => unknown,
  kind: string,
  location: string,
  pattern: RegExp,
): Promise<void> {
  await assert.rejects(
    async () => await run(),
    (error: unknown) => {
      assert.ok(error instanceof PusherError, String(error));
      assert.equal(error.kind, kind, error.message);
      assert.ok(error.message.startsWith(`${location}: `), error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

Deno.test("a list line: options, source, target; comments and blank lines are skipped", () => {
  const entries = parseListText(
    [
      "# nightly mirror",
      "",
      "docker.io/library/nginx:1.27",
      "  --platform=linux/amd64,linux/arm64/v8 ghcr.io/org/tool:2   # two platforms",
      "--platform=linux/amd64 --platform=linux/386 alpine:3.20 => localhost:5000/base/alpine:3",
      "./app.tar => registry.example.com/team/app:1.0",
      "\t",
    ].join("\n"),
    "images.txt",
  );
  assert.deepEqual(entries, [
    { line: 3, platforms: [], source: "docker.io/library/nginx:1.27" },
    { line: 4, platforms: ["linux/amd64", "linux/arm64/v8"], source: "ghcr.io/org/tool:2" },
    {
      line: 5,
      platforms: ["linux/amd64", "linux/386"],
      source: "alpine:3.20",
      target: "localhost:5000/base/alpine:3",
    },
    { line: 6, platforms: [], source: "./app.tar", target: "registry.example.com/team/app:1.0" },
  ]);
});

Deno.test("every bad line is a usage error naming its line", async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ["--force nginx:1", "unknown option", /unknown option "--force"/],
    ["--platform=linux nginx:1", "malformed platform", /linux/],
    ["Nginx:1", "malformed reference", /invalid image reference "Nginx:1"/],
    ["nginx:1 =>", "=> without a target", /"=>" without a target/],
    ["nginx:1 => a:1 b:1", "words after the target", /unexpected "b:1"/],
    ["nginx:1 a:1", "a target without =>", /unexpected "a:1" after the source/],
    ["nginx:1=>a:1", "=> without spaces", /spaces around "=>"/],
    ["nginx:1 => bad ref", "malformed target", /unexpected "ref"|invalid/],
    ["nginx:1 => host.io/a//b:1", "malformed target reference", /empty path component/],
    ["--platform=linux/amd64 ./app.tar", "--platform on an archive", /registry sources/],
    ["=> a:1", "no source", /no source/],
    ["nginx:1 => ./out.tar", "a path as target", /is a path/],
  ];
  for (const [line, name, pattern] of cases) {
    await t.step(name, async () => {
      await assertLineError(
        () => parseListText(`# header\n\nalpine:3\n${line}\n`, "images.txt"),
        "usage",
        "images.txt:4",
        pattern,
      );
    });
  }
  await t.step("an empty list", () => {
    assert.throws(
      () => parseListText("# nothing\n\n", "images.txt"),
      (error: unknown) => error instanceof PusherError && /lists no images/.test(error.message),
    );
  });
});

Deno.test("targets under the prefix: the registry host dropped, the path kept (or flattened)", () => {
  const naming = { prefix: PREFIX, flatten: false };
  const flat = { prefix: `${PREFIX}/`, flatten: true };
  const cases: Array<[string, string, string]> = [
    ["docker.io/library/nginx:1.27", `${PREFIX}/library/nginx:1.27`, `${PREFIX}/nginx:1.27`],
    ["nginx", `${PREFIX}/library/nginx:latest`, `${PREFIX}/nginx:latest`],
    ["ghcr.io/org/team/tool:2", `${PREFIX}/org/team/tool:2`, `${PREFIX}/tool:2`],
    [
      `quay.io/a/b@sha256:${"a".repeat(64)}`,
      `${PREFIX}/a/b@sha256:${"a".repeat(64)}`,
      `${PREFIX}/b@sha256:${"a".repeat(64)}`,
    ],
  ];
  for (const [source, nested, flattened] of cases) {
    assert.equal(mirrorTarget(parseReference(source), naming), nested);
    assert.equal(mirrorTarget(parseReference(source), flat), flattened);
  }
  assert.equal(
    mirrorTarget(parseReference("alpine:3"), { prefix: "http://127.0.0.1:5000", flatten: false }),
    "http://127.0.0.1:5000/library/alpine:3",
    "a URL prefix keeps its scheme",
  );
});

Deno.test("a prefix must name a registry host and nothing after the namespace", () => {
  assert.equal(checkPrefix("localhost:5000/mirror/"), "localhost:5000/mirror");
  assert.equal(checkPrefix("localhost"), "localhost");
  for (const bad of ["mirror", "mirror/team", "", "host.io/ns@sha256:x", "host.io/UPPER"]) {
    assert.throws(
      () => checkPrefix(bad),
      (error: unknown) =>
        error instanceof PusherError && error.kind === "usage" &&
        error.message.includes("invalid target prefix"),
      bad,
    );
  }
});

Deno.test("reading a list: archive paths from the list's directory, their names from the archive", async () => {
  const fixtures = await sharedFixtures();
  await using dir = await tempDir();
  await Deno.copyFile(fixtures["docker-archive"].path, `${dir.path}/app.tar`);
  await Deno.copyFile(fixtures["docker-archive-zstd"].path, `${dir.path}/app.tar.zst`);
  const list = `${dir.path}/images.txt`;
  await Deno.writeTextFile(
    list,
    [
      "docker.io/library/nginx:1.27",
      "./app.tar",
      `${fixtures["docker-legacy-multi"].path} => ${PREFIX}/tools:v2`,
      "./app.tar.zst => registry.example.com/mirror/zstd/app:v1",
      "--platform=linux/arm64 quay.io/org/tool:2",
    ].join("\n"),
  );
  const lines = await readSyncList(list, { prefix: PREFIX, flatten: false });
  const expected: SyncLine[] = [
    {
      line: 1,
      location: `${list}:1`,
      source: { kind: "registry", reference: "docker.io/library/nginx:1.27" },
      target: `${PREFIX}/library/nginx:1.27`,
      platforms: [],
    },
    {
      line: 2,
      location: `${list}:2`,
      source: { kind: "archive", path: `${dir.path}/app.tar` },
      target: `${PREFIX}/library/app:v1`,
      platforms: [],
    },
    {
      line: 3,
      location: `${list}:3`,
      source: { kind: "archive", path: fixtures["docker-legacy-multi"].path },
      target: `${PREFIX}/tools:v2`,
      platforms: [],
    },
    {
      line: 4,
      location: `${list}:4`,
      source: { kind: "archive", path: `${dir.path}/app.tar.zst` },
      target: "registry.example.com/mirror/zstd/app:v1",
      platforms: [],
    },
    {
      line: 5,
      location: `${list}:5`,
      source: { kind: "registry", reference: "quay.io/org/tool:2" },
      target: `${PREFIX}/org/tool:2`,
      platforms: ["linux/arm64"],
    },
  ];
  assert.deepEqual(lines, expected);
  await Deno.writeTextFile(list, "./app.tar.zst\n");
  const compressed = await readSyncList(list, { prefix: PREFIX, flatten: true });
  assert.equal(compressed[0]?.target, `${PREFIX}/app:v1`, "a zstd archive is read for its name");
});

Deno.test("reading a list: missing archives, nameless archives and clashing targets name their line", async (t) => {
  const fixtures = await sharedFixtures();
  await using dir = await tempDir();
  const list = `${dir.path}/images.txt`;
  const refuse = async (text: string, line: number, kind: string, pattern: RegExp) => {
    await Deno.writeTextFile(list, text);
    await assertLineError(
      () => readSyncList(list, { prefix: PREFIX, flatten: true }),
      kind,
      `${list}:${line}`,
      pattern,
    );
  };
  await t.step(
    "a missing archive",
    () =>
      refuse("alpine:3\n\n./missing.tar\n", 3, "usage", /archive \.\/missing\.tar does not exist/),
  );
  await t.step("a directory", () => refuse("# dir\n/tmp\n", 2, "usage", /not an archive file/));
  await t.step("an archive whose only name is a bare tag", () =>
    refuse(
      `${fixtures["oci-archive"].path}\n`,
      1,
      "usage",
      /names no repository for its image \(only v1\)/,
    ));
  await t.step(
    "an archive of several images",
    () => refuse(`alpine:3\n${fixtures["docker-legacy-multi"].path}\n`, 2, "usage", /2 images/),
  );
  await t.step("two lines with one target (flattened)", () =>
    refuse(
      "ghcr.io/a/tool:1\nquay.io/b/tool:1\n",
      2,
      "usage",
      /registry\.example\.com\/mirror\/tool:1 is also the target of line 1/,
    ));
  await t.step("an unreadable list", async () => {
    await assert.rejects(
      () => readSyncList(`${dir.path}/none.txt`, { prefix: PREFIX, flatten: false }),
      (error: unknown) => error instanceof PusherError && error.kind === "input",
    );
  });
});
