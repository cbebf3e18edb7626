/**
 * Bad input through the CLI, against real Distribution 2.8 behind a (fault-free) proxy that
 * counts every request: missing, unreadable, empty and non-archive files, directories, truncated
 * tars, archives without a manifest, malformed JSON, missing entries, `../` and absolute entry
 * names, unsupported media types, size and digest mismatches, bad references, unknown flags and
 * bad numbers. Each ends with one `error:` line on stderr and the documented exit code. None
 * writes: structural problems are found before any write request; a digest mismatch, found only
 * when the layer's last byte went by, commits neither that blob nor any manifest or tag, and its
 * upload session is cancelled.
 */

import assert from "node:assert/strict";
import { EXIT_CODES } from "../../lib/errors.ts";
import { openRandomAccessArchive } from "../../lib/image/random_access.ts";
import { REPO_ROOT, runPusher } from "../helpers/cli.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault_proxy.ts";
import { digestOf, sharedFixtures, type TarEntrySpec, writeTar } from "../helpers/fixtures.ts";
import type { RequestKind } from "../helpers/memory_registry.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const WRITE_KINDS: readonly RequestKind[] = [
  "upload-start",
  "upload-patch",
  "upload-put",
  "upload-delete",
  "manifest-put",
];

type Entries = Map<string, Uint8Array>;

/** Every entry of a plain tar, in order. */
async function entriesOf(path: string): Promise<Entries> {
  const archive = await openRandomAccessArchive(path);
  const entries: Entries = new Map();
  for (const name of archive.paths()) {
    entries.set(name, new Uint8Array(await new Response(archive.openEntry(name)).arrayBuffer()));
  }
  return entries;
}

function tarOf(entries: Entries, extra: TarEntrySpec[] = []): Uint8Array {
  return writeTar([...[...entries].map(([name, data]) => ({ name, data })), ...extra]);
}

interface OciDescriptor {
  digest: string;
  size: number;
  mediaType: string;
}

/** The OCI fixture's manifest and the path of its largest layer. */
function ociParts(oci: Entries): { manifestPath: string; layers: OciDescriptor[] } {
  const index = JSON.parse(decoder.decode(oci.get("index.json"))) as {
    manifests: OciDescriptor[];
  };
  const digest = index.manifests[0]?.digest ?? "";
  const manifestPath = `blobs/sha256/${digest.slice("sha256:".length)}`;
  const manifest = JSON.parse(decoder.decode(oci.get(manifestPath))) as {
    layers: OciDescriptor[];
  };
  return { manifestPath, layers: manifest.layers };
}

/** The OCI fixture with its image manifest edited (re-stored under its new digest). */
function editManifest(
  oci: Entries,
  edit: (manifest: { layers: OciDescriptor[] }) => void,
): Entries {
  const entries = new Map(oci);
  const index = JSON.parse(decoder.decode(entries.get("index.json"))) as {
    manifests: OciDescriptor[];
  };
  const { manifestPath } = ociParts(oci);
  const manifest = JSON.parse(decoder.decode(entries.get(manifestPath))) as {
    layers: OciDescriptor[];
  };
  edit(manifest);
  const bytes = encoder.encode(JSON.stringify(manifest));
  const digest = digestOf(bytes);
  entries.set(`blobs/sha256/${digest.slice("sha256:".length)}`, bytes);
  const first = index.manifests[0];
  if (first !== undefined) Object.assign(first, { digest, size: bytes.length });
  entries.set("index.json", encoder.encode(JSON.stringify(index)));
  return entries;
}

function flipByte(bytes: Uint8Array | undefined, at: number): Uint8Array {
  const copy = new Uint8Array(bytes ?? new Uint8Array(0));
  const index = at < 0 ? copy.length + at : at;
  copy[index] = (copy[index] ?? 0) ^ 0xff;
  return copy;
}

interface Case {
  name: string;
  /** The archive path argument, or the whole argument list. */
  args: (target: string) => string[];
  kind: keyof typeof EXIT_CODES;
  message: RegExp;
  /** A digest mismatch: found as the layer streams, so uploads start. */
  streamsFirst?: boolean;
}

function writes(proxy: FaultProxy): number {
  return WRITE_KINDS.reduce((sum, kind) => sum + (proxy.stats.requests[kind] ?? 0), 0);
}

Deno.test("bad input: one clear line, the right exit code, no registry writes", async () => {
  const fixtures = await sharedFixtures();
  await using temp = await tempDir("bad-input-");
  const dir = temp.path;
  const registry = await startRegistry();
  try {
    const oci = await entriesOf(fixtures["oci-archive"].path);
    const docker = await entriesOf(fixtures["docker-archive"].path);
    const { layers } = ociParts(oci);
    const largest = layers.reduce((a, b) => (a.size > b.size ? a : b));
    const largestPath = `blobs/sha256/${largest.digest.slice("sha256:".length)}`;
    const dockerManifest = JSON.parse(decoder.decode(docker.get("manifest.json"))) as Array<
      { Layers: string[] }
    >;
    const dockerLayer = dockerManifest[0]?.Layers.at(-1) ?? "";
    const whole = await Deno.readFile(fixtures["oci-archive"].path);
    const files: Record<string, Uint8Array> = {
      "empty.tar": new Uint8Array(0),
      "text.tar": encoder.encode("this is not an image archive\n".repeat(64)),
      "truncated.tar": whole.subarray(0, Math.floor(whole.length / 2)),
      "no-manifest.tar": tarOf(new Map([...oci].filter(([name]) => name !== "index.json"))),
      "bad-index.tar": tarOf(new Map([...oci, ["index.json", encoder.encode("{not json")]])),
      "bad-manifest.tar": tarOf(new Map([...docker, ["manifest.json", encoder.encode("[{]")]])),
      "missing-entry.tar": tarOf(new Map([...oci].filter(([name]) => name !== largestPath))),
      "dotdot.tar": tarOf(oci, [{ name: "../escape.txt", data: "x" }]),
      "absolute.tar": tarOf(oci, [{ name: "/etc/escape.txt", data: "x" }]),
      "media-type.tar": tarOf(editManifest(oci, (manifest) => {
        const first = manifest.layers[0];
        if (first !== undefined) first.mediaType = "application/vnd.example.unknown";
      })),
      "size.tar": tarOf(editManifest(oci, (manifest) => {
        const first = manifest.layers[0];
        if (first !== undefined) first.size += 1;
      })),
      "oci-digest.tar": tarOf(
        new Map([...oci, [largestPath, flipByte(oci.get(largestPath), -100)]]),
      ),
      "diff-id.tar": tarOf(
        new Map([...docker, [dockerLayer, flipByte(docker.get(dockerLayer), 700)]]),
      ),
      "unreadable.tar": whole,
    };
    for (const [name, bytes] of Object.entries(files)) {
      await Deno.writeFile(`${dir}/${name}`, bytes);
    }
    const file = (name: string) => (target: string) => ["-f", `${dir}/${name}`, "-r", target];
    const cases: Case[] = [
      { name: "missing file", args: file("absent.tar"), kind: "input", message: /does not exist/ },
      {
        name: "directory",
        args: (target) => ["-f", dir, "-r", target],
        kind: "input",
        message: /is a directory/,
      },
      { name: "empty file", args: file("empty.tar"), kind: "input", message: /is empty/ },
      { name: "not a tar", args: file("text.tar"), kind: "input", message: /not a tar archive/ },
      { name: "truncated tar", args: file("truncated.tar"), kind: "input", message: /truncated/ },
      {
        name: "no manifest.json or index.json",
        args: file("no-manifest.tar"),
        kind: "input",
        message: /neither manifest\.json nor index\.json/,
      },
      {
        name: "malformed index.json",
        args: file("bad-index.tar"),
        kind: "input",
        message: /index\.json is not valid JSON/,
      },
      {
        name: "malformed manifest.json",
        args: file("bad-manifest.tar"),
        kind: "input",
        message: /manifest\.json is not valid JSON/,
      },
      {
        name: "missing entry",
        args: file("missing-entry.tar"),
        kind: "input",
        message: /not in the archive/,
      },
      {
        name: "../ entry name",
        args: file("dotdot.tar"),
        kind: "input",
        message: /"\.\.\/escape\.txt".*outside/,
      },
      {
        name: "absolute entry name",
        args: file("absolute.tar"),
        kind: "input",
        message: /"\/etc\/escape\.txt".*outside/,
      },
      {
        name: "unsupported media type",
        args: file("media-type.tar"),
        kind: "input",
        message: /unsupported media type/,
      },
      {
        name: "size mismatch",
        args: file("size.tar"),
        kind: "verify",
        message: /is \d+ bytes, but manifest .* says \d+/,
      },
      {
        name: "OCI blob digest mismatch",
        args: file("oci-digest.tar"),
        kind: "verify",
        message: /expected digest sha256:.* but the bytes hash to/,
        streamsFirst: true,
      },
      {
        name: "diff_id mismatch",
        args: file("diff-id.tar"),
        kind: "verify",
        message: /expected digest sha256:.* but the bytes hash to/,
        streamsFirst: true,
      },
      {
        name: "malformed URL",
        args: () => ["-f", `${dir}/text.tar`, "-r", "http://[bad/app:1"],
        kind: "usage",
        message: /invalid image reference/,
      },
      {
        name: "bad repository name",
        args: (
          target,
        ) => ["-f", fixtures["oci-archive"].path, "-r", target.replace("bad/", "Bad/")],
        kind: "usage",
        message: /must be lower-case/,
      },
      {
        name: "unknown flag",
        args: (target) => ["-f", fixtures["oci-archive"].path, "-r", target, "--frobnicate"],
        kind: "usage",
        message: /unknown option '--frobnicate'/,
      },
      {
        name: "bad number",
        args: (
          target,
        ) => ["-f", fixtures["oci-archive"].path, "-r", target, "--max-concurrent", "four"],
        kind: "usage",
        message: /--max-concurrent must be a whole number, got "four"/,
      },
      {
        name: "negative number",
        args: (
          target,
        ) => ["-f", fixtures["oci-archive"].path, "-r", target, "--retry-attempts", "-2"],
        kind: "usage",
        message: /--retry-attempts must be a whole number/,
      },
    ];
    let index = 0;
    for (const item of cases) {
      await using proxy = startFaultProxy({ upstream: registry.url, seed: 1, rules: [] });
      const repository = `bad/case${index++}`;
      const run = await runPusher([
        ...item.args(`http://${proxy.host}/${repository}:1`),
        "--quiet",
      ]);
      const what = `${item.name}: ${run.stderr}`;
      assert.equal(run.code, EXIT_CODES[item.kind], what);
      assert.match(run.stderr, /^error: [^\n]+\n$/, what);
      assert.match(run.stderr, item.message, what);
      assert.equal(proxy.stats.requests["manifest-put"] ?? 0, 0, what);
      const status = await fetch(`${registry.url}/v2/${repository}/manifests/1`);
      await status.body?.cancel();
      assert.equal(status.status, 404, `no tag: ${what}`);
      if (item.streamsFirst) {
        const opened = proxy.log.filter((record) => record.kind === "upload-start").length;
        const closed = proxy.log.filter((record) =>
          (record.kind === "upload-put" && record.outcome === 201) ||
          record.kind === "upload-delete"
        ).length;
        assert.equal(
          opened,
          closed,
          `every session committed a good blob or was cancelled: ${what}`,
        );
        const head = await fetch(`${registry.url}/v2/${repository}/blobs/${largest.digest}`, {
          method: "HEAD",
        });
        assert.notEqual(head.status, 200, `the corrupt blob was not committed: ${what}`);
      } else {
        assert.equal(writes(proxy), 0, `no write requests: ${what}`);
      }
    }

    // Unreadable: the OS would let root read a mode-000 file, so deny the read to the runtime.
    await using proxy = startFaultProxy({ upstream: registry.url, seed: 1, rules: [] });
    const path = `${dir}/unreadable.tar`;
    const child = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `--deny-read=${path}`,
        `${REPO_ROOT}main.ts`,
        "-f",
        path,
        "-r",
        `http://${proxy.host}/bad/unreadable:1`,
        "--quiet",
      ],
      env: { NO_COLOR: "1", DOCKER_PUSHER_CACHE_DIR: dir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = decoder.decode(child.stderr);
    assert.equal(child.code, EXIT_CODES.input, stderr);
    assert.match(stderr, /^error: cannot read archive [^\n]+\n$/);
    assert.equal(writes(proxy), 0);
    console.log(`bad input: ${cases.length + 1} cases, each one error line, no registry writes`);
  } finally {
    await registry.stop();
  }
});
