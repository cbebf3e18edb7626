/**
 * Image archives that public projects committed as test data (`../shared/real-archives/`, read in
 * place, never copied): every valid one is pushed through the CLI to one real Distribution
 * registry and pulled back intact with skopeo; every broken one is refused with one `error:` line
 * on stderr, the documented exit code and no tag. The expected outcome of each file is written in
 * the table below from what `SOURCES.md` says about it, and a first test checks that the table
 * and `SOURCES.md` agree on every file.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { EXIT_CODES } from "../../lib/errors.ts";
import { runPusher } from "../helpers/cli.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";

const ARCHIVES = fileURLToPath(new URL("../../../shared/real-archives/", import.meta.url));

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

/** A push that must land and pull back intact. */
interface Pushes {
  outcome: "push";
  /** The config digests the pulled image (or every child of the pulled index) has. */
  configs: string[];
  /** The media type of the pushed top-level manifest. */
  manifestType: string;
  /** The archive's own manifest or index digest, when it must go up byte for byte. */
  keepsDigest?: string;
  /** The warning lines stderr must hold; without it, stderr holds none. */
  warning?: RegExp;
}

/** A refusal: one error line, this exit code, no tag. */
interface Refused {
  outcome: "refuse";
  kind: keyof typeof EXIT_CODES;
  message: RegExp;
}

/** A file kept for another check (SOURCES.md: "not used"). */
interface Unused {
  outcome: "unused";
}

interface Case {
  file: string;
  /** What a user would add (`--image`), per SOURCES.md. */
  args?: string[];
  expected: Pushes | Refused | Unused;
}

const sha = (hex: string): string => `sha256:${hex}`;

function dockerPush(config: string, warning?: RegExp): Pushes {
  return {
    outcome: "push",
    configs: [sha(config)],
    manifestType: DOCKER_MANIFEST,
    ...(warning === undefined ? {} : { warning }),
  };
}

function kept(manifestType: string, digest: string, configs: string[]): Pushes {
  return { outcome: "push", configs: configs.map(sha), manifestType, keepsDigest: sha(digest) };
}

const NOT_AN_IMAGE: Refused = {
  outcome: "refuse",
  kind: "input",
  message: /^error: the archive has neither manifest\.json nor index\.json, so it is not an image/,
};

function refused(message: RegExp, kind: keyof typeof EXIT_CODES = "input"): Refused {
  return { outcome: "refuse", kind, message };
}

const HELLO_WORLD_CONFIG = "feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412";
const DIVE_OCI_CONFIG = "3eaccc100f866490f00ae82727b459a737af031dcf44c791d8aa714a70f24959";
const TRIVY_OCI = "afb744871f99e0ff8e6f253244836ed34c5d805fdb096d3a205ffaf5e9073cab";
const TRIVY_OCI_CONFIG = "b23a8f6569ae9ae331226205fa72f480ce5310707d0bc97e611f83fbbbde4604";
/** oras' containerd export names 11 platforms and holds only linux/amd64. */
const ORAS_LEFT_OUT = /^warning: platform linux\/arm\/v5 is named in the archive but its blobs/m;

const CASES: readonly Case[] = [
  {
    file: "ggcr-test_image_1.tar",
    expected: dockerPush("6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e"),
  },
  {
    file: "ggcr-test_bundle.tar",
    args: ["--image", "test_image_2"],
    expected: dockerPush("930705ce23e3b6ed4c08746b6fe880089c864fbaf62482702ae3fdd66b8c7fe9"),
  },
  {
    file: "ggcr-test_link.tar",
    args: ["--image", "bazel/v1/tarball:test_image_3"],
    expected: dockerPush("d4c9adacde69c3d92446e0484cea29493e9fd573cf0c8febfc700d80c46697a4"),
  },
  {
    file: "ggcr-hello-world-v25.tar",
    expected: dockerPush("ee301c921b8aadc002973b2e0c3da17d701dcd994b606769a7e6eaa100b81d44"),
  },
  {
    file: "ggcr-whiteout_dir.tar",
    expected: dockerPush("92f1e3d53acdc7e137e73869abc4e87aba6614440a31723423790ca0d5db9111"),
  },
  {
    file: "ggcr-source_image_with_empty_layer_history.tar",
    // Named for 6e0b0504…, edited by hand: it goes up under the digest of its content.
    expected: dockerPush(
      "05b5ec1290589606ce19fabb1fb331f004acd9f618b9b4e813721be1a03a0712",
      /^warning: config 6e0b0504\w+\.json hashes to sha256:05b5ec12\w+, not the sha256:6e0b0504\w+ its name states/m,
    ),
  },
  {
    file: "ggcr-whiteout_image.tar",
    expected: dockerPush("decb630649c3e1256345d416b228d6c3ceb387a55120ad44dc3ec992976d28b9"),
  },
  {
    file: "ggcr-no_manifest.tar",
    expected: refused(/^error: the archive has a repositories file but no manifest\.json/),
  },
  {
    file: "ggcr-null_manifest.tar",
    expected: refused(/^error: manifest\.json is not a JSON array/),
  },
  { file: "ggcr-content.tar", expected: NOT_AN_IMAGE },
  // Compressed, so read in one streaming pass: the error still comes first and alone.
  { file: "ggcr-crane-content.tar.zst", expected: NOT_AN_IMAGE },
  {
    file: "cimage-almostempty.tar",
    expected: dockerPush("9d7f147c0d0c4d4538a04c7ef385809e56eb1aac7bf800fbe976612188025b68"),
  },
  {
    file: "dive-test-docker-image.tar",
    expected: dockerPush("75ae28b8ebf89b203319069ddcbecdf5c3838503bbebc0d0d85e4b8589c5de3a"),
  },
  {
    file: "dive-test-kaniko-image.tar",
    expected: dockerPush("ae16a51058a758c7963b2f9b23d1acfa201ce9cbefc8cb93845f8cd934fb144d"),
  },
  {
    file: "dive-test-oci-gzip-image.tar",
    expected: kept(
      OCI_MANIFEST,
      "7d255e9e3d216a9a92a5c1ce0563a5ddd92f28a34a9df025d3cf8dfa5ea08366",
      [DIVE_OCI_CONFIG],
    ),
  },
  {
    file: "dive-test-oci-zstd-image.tar",
    expected: kept(
      OCI_MANIFEST,
      "f5e3515f39a16543547c03d03ec34faf9276742e6ce7c7dd6e467a14e90b29fc",
      [DIVE_OCI_CONFIG],
    ),
  },
  {
    // The uncompressed layer goes up gzip-compressed (the default), so the manifest changes.
    file: "dive-test-oci-uncompressed-image.tar",
    expected: { outcome: "push", configs: [sha(DIVE_OCI_CONFIG)], manifestType: OCI_MANIFEST },
  },
  {
    file: "dive-test-oci-estargz-image.tar",
    expected: kept(
      OCI_MANIFEST,
      "2e75eb783d1a845ce3846d1a7da4453f825886aab5b3ad03afcec7730a208c4d",
      ["5c153971f5feeb018fab88c379f94ef9171ba1990163d32852fd27bf55ed5b74"],
    ),
  },
  { file: "dive-test-estargz-image.tar", expected: NOT_AN_IMAGE },
  {
    file: "oras-hello-world.tar",
    expected: { ...dockerPush(HELLO_WORLD_CONFIG, ORAS_LEFT_OUT) },
  },
  {
    file: "oras-hello-world-prefixed-path.tar",
    expected: { ...dockerPush(HELLO_WORLD_CONFIG, ORAS_LEFT_OUT) },
  },
  {
    file: "trivy-alpine-310.tar.gz",
    expected: dockerPush("af341ccd2df8b0e2d67cf8dd32e087bfda4e5756ebd1c76bbf3efa0dc246590e"),
  },
  {
    file: "trivy-alpine-311.tar.gz",
    expected: dockerPush("a187dde48cd289ac374ad8539930628314bc581a481cdb41409c9289419ddb72"),
  },
  {
    file: "trivy-test-oci-layout.tar",
    expected: kept(OCI_MANIFEST, TRIVY_OCI, [TRIVY_OCI_CONFIG]),
  },
  {
    file: "trivy-test_image_tag-oci-layout.tar",
    expected: kept(OCI_MANIFEST, TRIVY_OCI, [TRIVY_OCI_CONFIG]),
  },
  {
    file: "trivy-test_invalid_oci_image-oci-layout.tar",
    expected: refused(/unsupported media type "application\/badmedia\+json"/),
  },
  {
    file: "trivy-test_no_valid_manifests-oci-layout.tar",
    expected: refused(/^error: index\.json lists no images$/m),
  },
  {
    file: "trivy-test_bad_index_json-oci-layout.tar",
    expected: refused(/^error: index\.json is not valid JSON/),
  },
  {
    file: "imgutil-busybox-layout.tar",
    expected: kept(
      DOCKER_MANIFEST,
      "f75f3d1a317fc82c793d567de94fc8df2bece37acd5f2bd364a0d91a0d1f3dab",
      ["9d5226e6ce3fb6aee2822206a5ef85f38c303d2b37bfc894b419fca2c0501269"],
    ),
  },
  {
    // Its Docker manifest names an OCI layer type: rebuilt as a plain Docker manifest.
    file: "imgutil-my-previous-image-layout.tar",
    expected: dockerPush("06b940adbdb491f14005b1ac8e84742f8fde77f7ec50e185ef69215720601ec7"),
  },
  {
    file: "imgutil-busybox-sparse-layout.tar",
    expected: refused(/layer 1 names "blobs\/sha256\/405fecb6\w+", which is not in the archive/),
  },
  {
    file: "imgutil-my-previous-sparse-image-layout.tar",
    expected: refused(/layer 1 names "blobs\/sha256\/c5749a60\w+", which is not in the archive/),
  },
  {
    file: "regclient-testrepo-layout.tar",
    args: ["--image", "v1"],
    // Two platforms and their two buildx "builder" reference manifests, index unchanged.
    expected: kept(OCI_INDEX, "7ceb9b6bcc274697d0c38be6214b50cec79d601bc61708747d3f6cb772f6c6fa", [
      "03d7b3c657a4af5b4ff7967bf843d04a93008f28d658a7df3f679b2c7e519639",
      "cffb7c92259a9caaf27dd5ce2d7d0191b33de116cedff2f078611987291952fd",
      "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
      "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    ]),
  },
  {
    file: "regclient-testrepo-layout.tar",
    args: ["--image", "b1"],
    expected: kept(OCI_INDEX, "119b4a63feeda91d4874578e7883994fc45772dd912aa49ba380f87507f6ad07", [
      "92e1351053a20d03653de6d9ff2064abfe3adc2105b1cf492b201813a3f12dae",
      "92351a10d8aebc6e1b8b840d84070bd11ca3bafbc0e1d36e1c9e65c886a274f3",
      "187f89fb0852035419fe56ce61745d31d2380ef08a05e36618db6954a472cd28",
      "917a47e590b9eba3f192973655c955fc320bfb2e048419e8588e7af68dfb7430",
    ]),
  },
  {
    file: "regclient-testrepo-layout.tar",
    expected: refused(
      /^error: the archive holds 24 images \(b1, b2, .*choose one with --image/,
      "usage",
    ),
  },
  { file: "regclient-external-layout.tar", expected: { outcome: "unused" } },
];

/** The `expected` column of SOURCES.md, by file. */
async function sourcesTable(): Promise<Map<string, string>> {
  const text = await Deno.readTextFile(`${ARCHIVES}SOURCES.md`);
  const rows = new Map<string, string>();
  for (const line of text.split("\n")) {
    const cells = line.split("|").map((cell) => cell.trim());
    const file = cells[1] ?? "";
    if (!/\.tar(\.gz|\.zst)?$/.test(file)) continue;
    rows.set(file, cells.at(-2) ?? "");
  }
  return rows;
}

/** The outcome SOURCES.md's `expected` column states, and the `--image` values it names. */
function statedOutcome(expected: string): { outcome: string; images: string[] } {
  const images = [...expected.matchAll(/`--image ([^`]+)`/g)].map((match) => match[1] ?? "");
  if (expected.startsWith("push")) return { outcome: "push", images };
  if (expected.startsWith("refuse")) return { outcome: "refuse", images };
  if (expected === "not used") return { outcome: "unused", images };
  throw new Error(`unknown expected outcome in SOURCES.md: ${expected}`);
}

Deno.test("the table agrees with SOURCES.md on every archive in the folder", async () => {
  const sources = await sourcesTable();
  const onDisk = [...Deno.readDirSync(ARCHIVES)]
    .map((entry) => entry.name)
    .filter((name) => name !== "SOURCES.md")
    .sort();
  assert.deepEqual([...sources.keys()].sort(), onDisk, "SOURCES.md lists every file");
  assert.deepEqual([...new Set(CASES.map((item) => item.file))].sort(), onDisk, "one row each");
  for (const [file, expected] of sources) {
    const stated = statedOutcome(expected);
    const rows = CASES.filter((item) => item.file === file);
    const chosen = rows.flatMap((item) => item.args?.[0] === "--image" ? [item.args[1]] : []);
    assert.deepEqual(chosen.sort(), [...stated.images].sort(), `${file}: --image values`);
    for (const row of rows) {
      // "push `--image v1`, …; refuse without `--image`": the bare run is the refusal.
      const outcome = stated.images.length > 0 && row.args === undefined && /refuse/.test(expected)
        ? "refuse"
        : stated.outcome;
      assert.equal(row.expected.outcome, outcome, `${file} ${row.args?.join(" ") ?? ""}`);
    }
  }
});

async function checkPush(
  registry: TestRegistry,
  item: Case,
  expected: Pushes,
  repository: string,
): Promise<void> {
  const reference = `${registry.host}/${repository}:1`;
  const run = await runPusher([
    "-f",
    `${ARCHIVES}${item.file}`,
    "-r",
    `http://${reference}`,
    ...(item.args ?? []),
  ]);
  assert.equal(run.code, 0, run.stderr);
  const printed = run.stdout.trim();
  assert.match(printed, new RegExp(`^${registry.host}/${repository}@sha256:[0-9a-f]{64}$`));
  const digest = printed.split("@")[1] ?? "";
  if (expected.keepsDigest !== undefined) assert.equal(digest, expected.keepsDigest);
  if (expected.warning === undefined) assert.doesNotMatch(run.stderr, /^warning:/m);
  else assert.match(run.stderr, expected.warning);
  const pulled = await pullAndVerify(reference, {
    all: true,
    expectedManifestDigest: digest,
  });
  assert.equal(pulled.mediaType, expected.manifestType);
  assert.deepEqual(pulled.images.map((image) => image.configDigest), expected.configs);
}

async function checkRefusal(
  registry: TestRegistry,
  item: Case,
  expected: Refused,
  repository: string,
): Promise<void> {
  const run = await runPusher([
    "-f",
    `${ARCHIVES}${item.file}`,
    "-r",
    `http://${registry.host}/${repository}:1`,
    ...(item.args ?? []),
  ]);
  assert.equal(run.code, EXIT_CODES[expected.kind], run.stderr);
  assert.match(run.stderr, /^error: [^\n]+\n$/, "one line on stderr, the error");
  assert.match(run.stderr, expected.message);
  assert.equal(run.stdout, "");
  const tag = await fetch(`${registry.url}/v2/${repository}/manifests/1`, { method: "HEAD" });
  await tag.body?.cancel();
  assert.equal(tag.status, 404, "no tag was written");
}

Deno.test("real archives: the valid ones push and pull back intact, the broken ones are refused", async (t) => {
  const registry = await startRegistry();
  try {
    for (const [index, item] of CASES.entries()) {
      const expected = item.expected;
      if (expected.outcome === "unused") continue;
      const repository = `real/case${index}`;
      const name = [item.file, ...item.args ?? []].join(" ") + `: ${expected.outcome}`;
      await t.step(name, async () => {
        if (expected.outcome === "push") await checkPush(registry, item, expected, repository);
        else await checkRefusal(registry, item, expected, repository);
      });
    }
    await t.step("a piped archive holding no image: the error comes first and alone", async () => {
      const bytes = await Deno.readFile(`${ARCHIVES}ggcr-content.tar`);
      const run = await runPusher(["-f", "-", "-r", `http://${registry.host}/real/piped:1`], {
        stdin: bytes,
      });
      assert.equal(run.code, EXIT_CODES.input, run.stderr);
      assert.match(run.stderr, /^error: the archive has neither manifest\.json[^\n]+\n$/);
    });
  } finally {
    await registry.stop();
  }
});
