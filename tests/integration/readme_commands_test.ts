/**
 * Keeps the README true: the demo task runs, both ways to run from source push an image, the
 * batch-loop example works as written (with the tool on PATH as `docker-image-pusher`), every flag
 * in the flag table exists in `--help` and the other way round, and the exit-code table matches
 * the code.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_CODES } from "../../lib/errors.ts";
import { REPO_ROOT, runPusher } from "../helpers/cli.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const readme = await Deno.readTextFile(join(REPO_ROOT, "README.md"));

function section(heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `README has a "${heading}" section`);
  const end = readme.indexOf("\n## ", start + 4);
  return readme.slice(start, end < 0 ? undefined : end);
}

function firstCodeBlock(text: string, language: string): string {
  const match = text.match(new RegExp("```" + language + "\\n([\\s\\S]*?)```"));
  assert.ok(match?.[1], `a ${language} code block`);
  return match[1];
}

/** Puts a `docker-image-pusher` on a PATH directory inside `dir`, running this checkout. */
async function installWrapper(dir: string): Promise<string> {
  const bin = join(dir, "bin");
  await Deno.mkdir(bin);
  const wrapper = join(bin, "docker-image-pusher");
  await Deno.writeTextFile(
    wrapper,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A "${REPO_ROOT}main.ts" "$@"\n`,
  );
  await Deno.chmod(wrapper, 0o755);
  return bin;
}

Deno.test("the README opens with the two newcomer commands, and the demo task works", async () => {
  const opening = firstCodeBlock(readme, "sh");
  assert.match(opening, /^npx -y deno@2\.9\.6 task demo/m);
  assert.match(opening, /^npx -y deno@2\.9\.6 task test/m);
  const demo = await new Deno.Command(Deno.execPath(), {
    args: ["task", "demo"],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(demo.stdout);
  assert.equal(demo.code, 0, new TextDecoder().decode(demo.stderr));
  assert.match(
    stdout,
    /demo finished: the image went up, came back intact, and a re-push sent nothing/,
  );
  assert.match(new TextDecoder().decode(demo.stderr), /0 uploaded \(0 B sent\), 4 already there/);
});

Deno.test("both ways to run from source in the README push an image", async () => {
  const paragraph = section("Install").split("\n\n").find((text) => text.startsWith("From source"));
  assert.ok(paragraph, "the Install section says how to run from source");
  const commands = [...paragraph.replaceAll("\n", " ").matchAll(/`(deno [^`]+)`/g)].map((match) =>
    match[1] ?? ""
  );
  assert.deepEqual(commands, ["deno task push -r … -f …", "deno run -A main.ts -r … -f …"]);
  const fixture = (await sharedFixtures())["docker-archive"];
  const registry = await startRegistry();
  await using cacheDir = await tempDir();
  try {
    for (const [index, command] of commands.entries()) {
      const reference = `${registry.host}/source/way${index}:1`;
      const words = command.split(" ").slice(1);
      const args = words.map((word, at) =>
        word !== "…" ? word : words[at - 1] === "-r" ? `http://${reference}` : fixture.path
      );
      const run = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: REPO_ROOT,
        env: { DOCKER_PUSHER_CACHE_DIR: cacheDir.path, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(run.code, 0, `${command}: ${new TextDecoder().decode(run.stderr)}`);
      await pullAndVerify(reference, {
        expectedConfigDigest: fixture.configDigest,
        expectedDiffIds: fixture.diffIds,
      });
    }
  } finally {
    await registry.stop();
  }
});

Deno.test("the batch loop from the README works as written", async () => {
  const fixtures = await sharedFixtures();
  const registry = await startRegistry();
  await using temp = await tempDir();
  const dir = temp.path;
  try {
    const bin = await installWrapper(dir);
    const models = join(dir, "models");
    await Deno.mkdir(models);
    await Deno.copyFile(fixtures["docker-archive"].path, join(models, "alpha.tar"));
    await Deno.copyFile(fixtures["oci-archive"].path, join(models, "beta.tar"));
    await Deno.writeTextFile(join(models, "broken.tar"), "not an archive at all");
    const script = firstCodeBlock(section("Scripting"), "sh").replace(
      /^REGISTRY=.*$/m,
      `REGISTRY="http://${registry.host}/data-science"`,
    );
    const run = await new Deno.Command("sh", {
      args: ["-c", script],
      cwd: dir,
      env: { PATH: `${bin}:${Deno.env.get("PATH")}`, DOCKER_PUSHER_CACHE_DIR: join(dir, "cache") },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    assert.equal(run.code, 1, stdout);
    assert.match(stdout, /^pushed alpha$/m);
    assert.match(stdout, /^pushed beta$/m);
    assert.match(stdout, /^failed broken \(exit 3\)$/m);
    assert.match(stdout, /^failed: broken$/m);
    await pullAndVerify(`${registry.host}/data-science/alpha:latest`, {
      expectedConfigDigest: fixtures["docker-archive"].configDigest,
    });
  } finally {
    await registry.stop();
  }
});

Deno.test("the README flag table and --help list the same flags", async () => {
  const help = await runPusher(["--help"]);
  assert.equal(help.code, 0);
  const documented = new Set(
    [...section("Command line").matchAll(/^\| `(?:-\w, )?(--[a-z-]+)/gm)].map((match) => match[1]),
  );
  const offered = new Set(
    [...help.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]),
  );
  assert.deepEqual([...documented].sort(), [...offered].sort());
  for (const flag of documented) {
    if (flag === "--help" || flag === "--version") continue;
    const envName = `DOCKER_PUSHER_${flag?.slice(2).replaceAll("-", "_").toUpperCase()}`;
    assert.ok(section("Command line").includes(envName), `README names ${envName}`);
    assert.ok(help.stdout.includes(envName), `--help names ${envName}`);
  }
});

Deno.test("the README exit-code table matches the code", () => {
  const rows = [...section("Command line").matchAll(/^\| (\d+)\s+\| /gm)].map((match) =>
    Number(match[1])
  );
  assert.deepEqual(
    rows.sort((a, b) => a - b),
    [0, ...Object.values(EXIT_CODES)].sort((a, b) => a - b),
  );
});

Deno.test("the air-gapped workflow from the README works as written", async () => {
  const fixture = (await sharedFixtures())["docker-archive"];
  const registry = await startRegistry({ tls: true, htpasswd: { deployer: "gap-Secret-1" } });
  await using temp = await tempDir();
  const dir = temp.path;
  try {
    const bin = await installWrapper(dir);
    await Deno.writeTextFile(join(dir, "ca.pem"), registry.caCert ?? "");
    await Deno.writeTextFile(join(dir, "secret"), "gap-Secret-1\n");
    const script = firstCodeBlock(section("Air-gapped networks"), "sh")
      .replace("docker save myapp:1.0", `cat ${fixture.path}`)
      .replace("https://registry.internal/", `https://${registry.host}/`)
      .replace("/etc/pki/internal-ca.pem", join(dir, "ca.pem"))
      .replace("/run/secrets/registry", join(dir, "secret"));
    const run = await new Deno.Command("sh", {
      args: ["-e", "-c", script],
      cwd: dir,
      env: { PATH: `${bin}:${Deno.env.get("PATH")}`, DOCKER_PUSHER_CACHE_DIR: join(dir, "cache") },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    assert.match(new TextDecoder().decode(run.stdout), /myapp-1\.0\.tar\.zst: OK/);
    await pullAndVerify(`${registry.host}/team/myapp:1.0`, {
      creds: "deployer:gap-Secret-1",
      expectedConfigDigest: fixture.configDigest,
      expectedDiffIds: fixture.diffIds,
    });
  } finally {
    await registry.stop();
  }
});

Deno.test("the Chinese README documents the same flags, variables and exit codes", async () => {
  const chinese = await Deno.readTextFile(join(REPO_ROOT, "README.zh-CN.md"));
  const flagsOf = (text: string): string[] =>
    [...text.matchAll(/^\| `(?:-\w, )?(--[a-z-]+)[^|]*\|\s+(`DOCKER_PUSHER_\w+`)?/gm)]
      .map((match) => `${match[1]} ${match[2] ?? ""}`).sort();
  const codesOf = (text: string): string[] =>
    [...text.matchAll(/^\| (\d+)\s+\| /gm)].map((match) => match[1] as string).sort();
  assert.deepEqual(flagsOf(chinese), flagsOf(readme));
  assert.deepEqual(codesOf(chinese), codesOf(readme));
  assert.match(chinese, /^npx -y deno@2\.9\.6 task demo/m);
  assert.match(chinese, /^npx -y deno@2\.9\.6 task test/m);
});
