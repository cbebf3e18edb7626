import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { PusherError } from "../../lib/errors.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";

async function tar(args: string[]): Promise<string> {
  const output = await new Deno.Command("tar", { args, env: { TZ: "UTC" } }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

/** `tar -tvf` as `name size date time` lines. */
async function listing(path: string): Promise<string[]> {
  const text = await tar(["-tvf", path]);
  return text.trim().split("\n").map((line) => {
    const [mode, owner, size, date, time, name] = line.split(/\s+/);
    return `${mode} ${owner} ${name} ${size} ${date} ${time}`;
  });
}

async function sha256File(path: string): Promise<string> {
  return `sha256:${createHash("sha256").update(await Deno.readFile(path)).digest("hex")}`;
}

Deno.test("sample archive: a legacy docker save layout that tar reads back", async () => {
  await using temp = await tempDir("sample_archive_");
  const dir = temp.path;
  const path = `${dir}/sample.tar`;
  const sample = await writeSampleDockerArchive(path, {
    layers: 3,
    randomBytes: 100_000,
    seed: 5,
    name: "demo/app:v1",
  });
  assert.equal(sample.size, (await Deno.stat(path)).size);
  assert.equal(sample.diffIds.length, 3);

  const configHex = sample.configDigest.slice("sha256:".length);
  const entries = await listing(path);
  const names = entries.map((entry) => entry.split(" ")[2]);
  assert.deepEqual(names, [...names].sort(), "entries in lexical order, as docker wrote them");
  assert.ok(entries.every((entry) => entry.endsWith("2023-11-14 22:13")), entries.join("\n"));
  assert.ok(entries.every((entry) => entry.includes(" root/root ")));
  assert.ok(names.includes(`${configHex}.json`));
  assert.ok(names.includes("manifest.json") && names.includes("repositories"));
  const layerDirs = names.filter((name) => /^[a-f0-9]{64}\/$/.test(name ?? ""));
  assert.equal(layerDirs.length, 3);
  for (const layerDir of layerDirs) {
    for (const file of ["VERSION", "json", "layer.tar"]) {
      assert.ok(names.includes(`${layerDir}${file}`), `${layerDir}${file}`);
    }
  }

  const out = `${dir}/out`;
  await Deno.mkdir(out);
  await tar(["-xf", path, "-C", out]);
  const manifest = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  assert.equal(manifest.length, 1);
  assert.equal(manifest[0].Config, `${configHex}.json`);
  assert.deepEqual(manifest[0].RepoTags, ["demo/app:v1"]);
  assert.equal(await sha256File(`${out}/${manifest[0].Config}`), sample.configDigest);

  const config = JSON.parse(await Deno.readTextFile(`${out}/${configHex}.json`));
  assert.deepEqual(config.rootfs, { type: "layers", diff_ids: sample.diffIds });
  assert.equal(config.os, "linux");
  assert.equal(config.history.length, 3);
  const layers: string[] = manifest[0].Layers;
  for (const [i, layer] of layers.entries()) {
    assert.equal(await sha256File(`${out}/${layer}`), sample.diffIds[i]);
    assert.equal((await Deno.stat(`${out}/${layer}`)).size, sample.layerSizes[i]);
  }
  const repositories = JSON.parse(await Deno.readTextFile(`${out}/repositories`));
  assert.deepEqual(repositories, { "demo/app": { v1: layers[2]?.split("/")[0] } });
  const v1 = JSON.parse(
    await Deno.readTextFile(`${out}/${layers[2]?.replace("layer.tar", "json")}`),
  );
  assert.equal(v1.parent, layers[1]?.split("/")[0]);

  const first = await listing(`${out}/${layers[0]}`);
  assert.ok(first.some((entry) => entry.includes(" etc/os-release ")));
  const last = await listing(`${out}/${layers[2]}`);
  assert.ok(
    last.some((entry) => entry.startsWith("-rw-r--r-- root/root data/random.bin 100000")),
  );
  await tar(["-xf", `${out}/${layers[2]}`, "-C", out, "data/random.bin"]);
  const random = await Deno.readFile(`${out}/data/random.bin`);
  assert.equal(random.length, 100_000);
  assert.ok(gzipSync(random).length > 100_000, "pseudo-random bytes do not compress");
});

Deno.test("sample archive: deterministic per seed", async () => {
  await using temp = await tempDir("sample_archive_");
  const dir = temp.path;
  const a = await writeSampleDockerArchive(`${dir}/a.tar`, { seed: 9, randomBytes: 70_000 });
  const b = await writeSampleDockerArchive(`${dir}/b.tar`, { seed: 9, randomBytes: 70_000 });
  const c = await writeSampleDockerArchive(`${dir}/c.tar`, { seed: 10, randomBytes: 70_000 });
  assert.deepEqual(await Deno.readFile(`${dir}/a.tar`), await Deno.readFile(`${dir}/b.tar`));
  assert.deepEqual(a.diffIds, b.diffIds);
  assert.notEqual(c.configDigest, a.configDigest);
  assert.notEqual(c.diffIds[2], a.diffIds[2]);
  assert.equal(a.repoTag, "sample/app:latest");
});

Deno.test("sample archive: one layer, no random file; zero layers refused", async () => {
  await using temp = await tempDir("sample_archive_");
  const dir = temp.path;
  const one = await writeSampleDockerArchive(`${dir}/one.tar`, { layers: 1, randomBytes: 0 });
  assert.equal(one.diffIds.length, 1);
  const names = (await listing(`${dir}/one.tar`)).map((entry) => entry.split(" ")[2]);
  assert.equal(names.filter((name) => name?.endsWith("/layer.tar")).length, 1);
  const out = `${dir}/out`;
  await Deno.mkdir(out);
  await tar(["-xf", `${dir}/one.tar`, "-C", out]);
  const [entry] = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  const files = (await listing(`${out}/${entry.Layers[0]}`)).map((line) => line.split(" ")[2]);
  assert.deepEqual(files, [
    "etc/",
    "etc/os-release",
    "hello.txt",
    "layer1/",
    "layer1/README.txt",
  ]);

  await assert.rejects(
    () => writeSampleDockerArchive(`${dir}/none.tar`, { layers: 0 }),
    (error: unknown) => error instanceof PusherError && error.kind === "usage",
  );
});
