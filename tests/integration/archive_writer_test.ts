/**
 * Archives from the writer, read by tools that are not this project: skopeo (`docker-archive:`
 * and `oci-archive:`) copying into a real Distribution registry, pulled back and checked digest
 * by digest; `podman load` into a private vfs store; `ctr import` into a private containerd; and
 * this tool's own push.
 */

import assert from "node:assert/strict";
import { type ImageToWrite, planArchive } from "../../lib/image/archive_plan.ts";
import { writeArchive } from "../../lib/image/archive_writer.ts";
import { runPusher } from "../helpers/cli.ts";
import { blobOpener, buildImage, buildIndex, type MemoryImage } from "../helpers/memory_images.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const decoder = new TextDecoder();

async function run(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  const stderr = decoder.decode(output.stderr).trim();
  assert.ok(output.success, `${command} ${args.join(" ")} failed:\n${stderr}`);
  return decoder.decode(output.stdout);
}

async function writeFile(
  path: string,
  images: readonly ImageToWrite[],
  sources: MemoryImage[],
): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  await writeArchive(planArchive(images), blobOpener(sources, 16384)).pipeTo(file.writable);
}

function skopeoCopy(source: string, destination: string, all = false): Promise<string> {
  return run("skopeo", [
    "--insecure-policy",
    "copy",
    "--dest-tls-verify=false",
    ...(all ? ["--all"] : []),
    source,
    `docker://${destination}`,
  ]);
}

function diffIds(image: MemoryImage): string[] {
  return image.layers.map((layer) => layer.diffId);
}

/** The images every step writes: two sharing a layer (OCI and Docker types), and an index. */
function testImages(): {
  one: MemoryImage;
  two: MemoryImage;
  amd: MemoryImage;
  arm: MemoryImage;
  index: ReturnType<typeof buildIndex>;
} {
  const one = buildImage({ layers: 2, layerSize: 1024 * 1024 });
  const two = buildImage({ layers: 1, baseLayers: [one.layers[0]!], family: "docker" });
  const amd = buildImage({ layers: 2 });
  const arm = buildImage({
    layers: 2,
    platform: { os: "linux", architecture: "arm64", variant: "v8" },
  });
  return { one, two, amd, arm, index: buildIndex([amd, arm]) };
}

Deno.test("archive writer: skopeo, podman, ctr and this tool's push read the archives", async (t) => {
  const { one, two, amd, arm, index } = testImages();
  await using dir = await tempDir();
  const single = `${dir.path}/single.tar`;
  const pair = `${dir.path}/pair.tar`;
  const multi = `${dir.path}/multi.tar`;
  await writeFile(single, [{ names: ["registry.test/writer/one:v1"], manifest: one.manifest }], [
    one,
  ]);
  await writeFile(pair, [
    { names: ["registry.test/writer/one:v1"], manifest: one.manifest },
    { names: ["registry.test/writer/two:v2"], manifest: two.manifest },
  ], [one, two]);
  await writeFile(multi, [{
    names: ["registry.test/writer/multi:1"],
    manifest: index.index,
    children: index.children,
    loadPlatform: "linux/arm64/v8",
  }], [amd, arm]);
  const registry = await startRegistry();
  try {
    const host = registry.host;

    await t.step("skopeo copy docker-archive: keeps config and diff_ids", async () => {
      await skopeoCopy(`docker-archive:${single}`, `${host}/docker-archive/one:1`);
      await pullAndVerify(`${host}/docker-archive/one:1`, {
        expectedConfigDigest: one.configDigest,
        expectedDiffIds: diffIds(one),
      });
    });

    await t.step("skopeo copy oci-archive: keeps the manifest digest", async () => {
      await skopeoCopy(`oci-archive:${single}`, `${host}/oci-archive/one:1`);
      await pullAndVerify(`${host}/oci-archive/one:1`, {
        expectedManifestDigest: one.manifest.digest,
        expectedConfigDigest: one.configDigest,
        expectedDiffIds: diffIds(one),
      });
    });

    await t.step("two images in one archive: each copies out by name", async () => {
      for (const [name, image] of [["one:v1", one], ["two:v2", two]] as const) {
        const target = `${host}/pair/${name}`;
        await skopeoCopy(`docker-archive:${pair}:registry.test/writer/${name}`, target);
        await pullAndVerify(target, {
          expectedConfigDigest: image.configDigest,
          expectedDiffIds: diffIds(image),
        });
      }
      // skopeo 1.9 looks names up among OCI-typed index.json entries only, so by the ref name
      // it finds the OCI image; the Docker-typed one is reached through manifest.json above.
      await skopeoCopy(`oci-archive:${pair}:v1`, `${host}/pair/one-oci:1`);
      await pullAndVerify(`${host}/pair/one-oci:1`, {
        expectedManifestDigest: one.manifest.digest,
        expectedConfigDigest: one.configDigest,
      });
    });

    await t.step("a multi-platform index: oci-archive copies it whole", async () => {
      await skopeoCopy(`oci-archive:${multi}`, `${host}/multi/oci:1`, true);
      const pulled = await pullAndVerify(`${host}/multi/oci:1`, {
        all: true,
        expectedManifestDigest: index.index.digest,
      });
      assert.deepEqual(
        pulled.images.map((image) => image.manifestDigest),
        [amd.manifest.digest, arm.manifest.digest],
      );
      await skopeoCopy(`docker-archive:${multi}`, `${host}/multi/docker:1`);
      await pullAndVerify(`${host}/multi/docker:1`, {
        expectedConfigDigest: arm.configDigest,
        expectedDiffIds: diffIds(arm),
      });
    });

    await t.step("this tool pushes the archives it wrote", async () => {
      for (
        const [file, repository, digest] of [
          [single, "own/one", one.manifest.digest],
          [multi, "own/multi", index.index.digest],
        ] as const
      ) {
        const pushed = await runPusher(["-f", file, "-r", `http://${host}/${repository}:1`]);
        assert.equal(pushed.code, 0, pushed.stderr);
        await pullAndVerify(`${host}/${repository}:1`, {
          all: file === multi,
          expectedManifestDigest: digest,
        });
      }
    });
  } finally {
    await registry.stop();
  }

  await t.step("podman load: names, image IDs and digests", async () => {
    const loaded = async (file: string): Promise<PodmanImage[]> => {
      await using store = await tempDir("podman-store-");
      const podman = [
        ...["--storage-driver", "vfs", "--root", `${store.path}/root`],
        ...["--runroot", `${store.path}/run`],
      ];
      await run("podman", [...podman, "load", "-q", "-i", file]);
      return JSON.parse(await run("podman", [...podman, "images", "--format", "json"]));
    };
    const hex = (digest: string): string => digest.slice("sha256:".length);
    const pairImages = await loaded(pair);
    for (const [name, image] of [["one:v1", one], ["two:v2", two]] as const) {
      const found = pairImages.find((entry) =>
        entry.Names?.includes(`registry.test/writer/${name}`)
      );
      assert.equal(found?.Id, hex(image.configDigest), name);
    }
    const [singleImage] = await loaded(single);
    assert.deepEqual(singleImage?.Names, ["registry.test/writer/one:v1"]);
    assert.equal(singleImage?.Id, hex(one.configDigest));
    assert.equal(singleImage?.Digest, one.manifest.digest, "loaded through the OCI index");
    const [multiImage] = await loaded(multi);
    assert.deepEqual(multiImage?.Names, ["registry.test/writer/multi:1"]);
    assert.equal(multiImage?.Digest, index.index.digest);
    const host = Deno.build.arch === "aarch64" ? arm : amd;
    assert.equal(multiImage?.Id, hex(host.configDigest), "podman picks the host's platform");
  });

  await t.step("ctr import: every image under its name and digest", async () => {
    await using containerd = await startContainerd();
    const ctr = ["-a", containerd.socket];
    await run("ctr", [...ctr, "images", "import", "--no-unpack", "--all-platforms", pair]);
    await run("ctr", [...ctr, "images", "import", "--no-unpack", "--all-platforms", multi]);
    const listed = (await run("ctr", [...ctr, "images", "ls"])).trim().split("\n").slice(1)
      .map((line) => line.split(/\s+/)).map(([ref, , digest]) => `${ref} ${digest}`).sort();
    assert.deepEqual(listed, [
      `registry.test/writer/multi:1 ${index.index.digest}`,
      `registry.test/writer/one:v1 ${one.manifest.digest}`,
      `registry.test/writer/two:v2 ${two.manifest.digest}`,
    ]);
  });
});

/** What `podman images --format json` says about an image. */
interface PodmanImage {
  Id: string;
  Names?: string[];
  Digest: string;
}

/** A containerd daemon of our own, with its state in a temporary directory. */
interface Containerd extends AsyncDisposable {
  socket: string;
}

async function startContainerd(): Promise<Containerd> {
  const dir = await tempDir("containerd-");
  const socket = `${dir.path}/containerd.sock`;
  await Deno.writeTextFile(
    `${dir.path}/config.toml`,
    [
      "version = 2",
      `root = ${JSON.stringify(`${dir.path}/root`)}`,
      `state = ${JSON.stringify(`${dir.path}/state`)}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = ${JSON.stringify(socket)}`,
    ].join("\n"),
  );
  const child = new Deno.Command("containerd", {
    args: ["--config", `${dir.path}/config.toml`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
    await child.status;
    await dir[Symbol.asyncDispose]();
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const probe = await new Deno.Command("ctr", {
      args: ["-a", socket, "version"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (probe.success) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error("containerd did not answer within 15 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { socket, [Symbol.asyncDispose]: stop };
}
