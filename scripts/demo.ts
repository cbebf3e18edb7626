/**
 * `deno task demo`: the main job end to end on any machine with Deno. Builds a sample `docker save`
 * archive, starts a registry (CNCF Distribution when `docker-registry` is installed, an in-process
 * one otherwise), pushes with the real command line (progress and all), pulls the image back and
 * checks every digest, then pushes again to show that nothing is uploaded twice.
 *
 * @module
 */

import { join } from "node:path";
import { startMemoryRegistry } from "../tests/helpers/memory_registry.ts";
import { startRegistry } from "../tests/helpers/registry.ts";
import { writeSampleDockerArchive } from "../tests/helpers/sample_archive.ts";
import { pullAndCheck } from "./demo_verify.ts";
import { hasCommand } from "./test_requirements.ts";

const ROOT = new URL("../", import.meta.url);

interface DemoRegistry {
  name: string;
  host: string;
  stop: () => Promise<void>;
}

async function startAnyRegistry(): Promise<DemoRegistry> {
  if (await hasCommand("docker-registry")) {
    const registry = await startRegistry();
    return {
      name: "CNCF Distribution (docker-registry)",
      host: registry.host,
      stop: registry.stop,
    };
  }
  const registry = startMemoryRegistry();
  return {
    name: "the in-process test registry (install docker-registry to use the real one)",
    host: registry.host,
    stop: () => registry.close(),
  };
}

async function pushWithCli(args: string[], cacheDir: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("main.ts", ROOT).pathname, ...args],
    env: { DOCKER_PUSHER_CACHE_DIR: cacheDir },
    stdout: "piped",
    stderr: "inherit",
  });
  const output = await child.output();
  const stdout = new TextDecoder().decode(output.stdout);
  await Deno.stdout.write(output.stdout);
  if (!output.success) throw new Error(`the push failed with exit code ${output.code}`);
  return stdout.trim().split("\n").at(-1) ?? "";
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pusher-demo-" });
  const registry = await startAnyRegistry();
  try {
    const archivePath = join(dir, "sample.tar");
    const sample = await writeSampleDockerArchive(archivePath, {
      layers: 3,
      randomBytes: 8 * 1024 * 1024,
      name: "demo/sample:1.0",
    });
    console.log(
      `\n1. wrote a docker save archive: ${archivePath} (${sample.size} bytes, 3 layers)`,
    );
    console.log(`2. started ${registry.name} on ${registry.host}`);
    const target = `http://${registry.host}/demo/sample:1.0`;
    console.log(`3. docker-image-pusher -f ${archivePath} -r ${target}\n`);
    const cacheDir = join(dir, "cache");
    const pushed = await pushWithCli(["-f", archivePath, "-r", target], cacheDir);
    console.log(`\n4. pulling ${pushed} back and checking every digest`);
    const image = await pullAndCheck(`http://${registry.host}`, "demo/sample", "1.0");
    if (image.configDigest !== sample.configDigest) throw new Error("the config digest changed");
    if (`${registry.host}/demo/sample@${image.manifestDigest}` !== pushed) {
      throw new Error(`the registry serves ${image.manifestDigest}, not what was printed`);
    }
    console.log(`   manifest ${image.manifestDigest} (${image.mediaType})`);
    console.log(`   config   ${image.configDigest} (same image ID as the archive)`);
    for (const layer of image.layers) {
      console.log(`   layer    ${layer.digest} ${layer.size} bytes → diff_id ${layer.diffId} ✓`);
    }
    console.log(`\n5. pushing again: everything is already there, nothing is uploaded\n`);
    await pushWithCli(["-f", archivePath, "-r", target], cacheDir);
    console.log(
      "\ndemo finished: the image went up, came back intact, and a re-push sent nothing.",
    );
  } finally {
    await registry.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`demo failed: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
