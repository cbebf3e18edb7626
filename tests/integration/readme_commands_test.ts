/**
 * Keeps the README true: the demo task runs, both ways to run from source push an image, the
 * batch-loop example works as written (with the tool on PATH as `docker-image-pusher`), the
 * registry recipes run against local stand-ins of those registries, the `ls` example prints the
 * table it shows, the containerd recipe lists and pushes from a real containerd store, the nightly
 * sync recipe mirrors its LIST (upstream and the Aliyun prefix played by local registries), the
 * copy recipes copy between two registries and within one, the air-gap workflow pulls on one side
 * and pushes on the other, the bundle, delta and backup recipes move images between registries as
 * written, every flag in the flag table exists in `--help` and the other way round, the pull, copy
 * and sync sections name every flag their `--help` offers, and the exit-code table matches the
 * code. The Chinese README shows the same commands.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_CODES } from "../../lib/errors.ts";
import { REPO_ROOT, runPusher } from "../helpers/cli.ts";
import { startContainerd } from "../helpers/containerd.ts";
import { sharedFixtures, writeBuildkitLayout } from "../helpers/fixtures.ts";
import { startNginx } from "../helpers/nginx.ts";
import { pullAndVerify, skopeoInspect } from "../helpers/pull_verify.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { startVendorProxy } from "../helpers/vendor_proxy.ts";

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

/** The commands of a shell code block: continuation lines joined, comments left out. */
function shellCommands(block: string): string[] {
  return block.replaceAll("\\\n", " ").split("\n")
    .filter((line) => line.trim() !== "" && !line.trim().startsWith("#"));
}

/** A section of the Chinese README, from its heading to the next. */
async function chineseSection(heading: string): Promise<string> {
  const chinese = await Deno.readTextFile(join(REPO_ROOT, "README.zh-CN.md"));
  const start = chinese.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `README.zh-CN.md has a "${heading}" section`);
  const end = chinese.indexOf("\n## ", start + 4);
  return chinese.slice(start, end < 0 ? undefined : end);
}

/** Runs one README command with `sh` in `dir`, the tool on PATH, with extra `env`. */
async function runShell(
  command: string,
  dir: string,
  bin: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = await new Deno.Command("sh", {
    args: ["-e", "-c", command],
    cwd: dir,
    env: {
      PATH: `${bin}:${Deno.env.get("PATH")}`,
      DOCKER_PUSHER_CACHE_DIR: join(dir, "cache"),
      NO_COLOR: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: run.code, stdout: decoder.decode(run.stdout), stderr: decoder.decode(run.stderr) };
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

Deno.test("the air-gapped workflow from the README works as written, pulled or saved", async () => {
  const blocks = shellBlocks(section("Air-gapped networks"));
  const chinese = await chineseSection("离线（空气隔离）网络");
  assert.deepEqual(
    shellBlocks(chinese).map(shellCommands),
    blocks.map(shellCommands),
    "the Chinese README shows the same commands",
  );
  const [pulled = "", saved = "", ...others] = blocks;
  assert.equal(others.length, 0, "two ways: pull, or docker save");
  assert.match(pulled, /^docker-image-pusher pull /m, "the usual way needs no Docker");
  const fixture = (await sharedFixtures())["docker-archive"];
  const connected = await startRegistry();
  const registry = await startRegistry({ tls: true, htpasswd: { deployer: "gap-Secret-1" } });
  await using temp = await tempDir();
  const dir = temp.path;
  try {
    const bin = await installWrapper(dir);
    await Deno.writeTextFile(join(dir, "ca.pem"), registry.caCert ?? "");
    await Deno.writeTextFile(join(dir, "secret"), "gap-Secret-1\n");
    const isolated = (script: string) =>
      script.replace("https://registry.internal/", `https://${registry.host}/`)
        .replace("/etc/pki/internal-ca.pem", join(dir, "ca.pem"))
        .replace("/run/secrets/registry", join(dir, "secret"));
    const digest = await seedSample(connected, dir, "team/myapp:1.0", 96 * 1024);
    const pull = await runShell(
      isolated(pulled.replace("registry.example.com/", `${connected.host}/`)),
      dir,
      bin,
    );
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout, /myapp-1\.0\.tar: OK/);
    assert.equal(pull.stdout.trim().split("\n").at(-1), `${registry.host}/team/myapp@${digest}`);
    await pullAndVerify(`${registry.host}/team/myapp:1.0`, {
      creds: "deployer:gap-Secret-1",
      expectedManifestDigest: digest,
    });

    const save = await runShell(
      isolated(saved.replace("docker save myapp:1.0", `cat ${fixture.path}`))
        .replaceAll("/team/myapp:1.0", "/team/myapp:saved"),
      dir,
      bin,
    );
    assert.equal(save.code, 0, save.stderr);
    await pullAndVerify(`${registry.host}/team/myapp:saved`, {
      creds: "deployer:gap-Secret-1",
      expectedConfigDigest: fixture.configDigest,
      expectedDiffIds: fixture.diffIds,
    });
  } finally {
    await registry.stop();
    await connected.stop();
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

Deno.test("every registry recipe in the README pushes to a local stand-in of its registry", async () => {
  const commands = shellCommands(firstCodeBlock(section("Registry recipes"), "sh"));
  const chinese = await Deno.readTextFile(join(REPO_ROOT, "README.zh-CN.md"));
  const chineseSection = chinese.slice(chinese.indexOf("\n## 仓库适配指南\n"));
  assert.deepEqual(
    shellCommands(firstCodeBlock(chineseSection, "sh")),
    commands,
    "the Chinese README shows the same recipe commands",
  );
  const secrets = {
    ACR_PASSWORD: "acr-Secret-1",
    TCR_PASSWORD: "tcr-Secret-2",
    SWR_PASSWORD: "swr-Secret-3",
    SWR_ACCESS_KEY: "AKTEST0123",
    ROBOT_SECRET: "robot-Secret-4",
  };
  const registry = await startRegistry({
    htpasswd: {
      "my-aliyun-account": secrets.ACR_PASSWORD,
      "100012345678": secrets.TCR_PASSWORD,
      [`cn-north-4@${secrets.SWR_ACCESS_KEY}`]: secrets.SWR_PASSWORD,
      "robot$myproject+ci": secrets.ROBOT_SECRET,
    },
  });
  await using dir = await tempDir("readme-recipes-");
  try {
    await using swr = startVendorProxy({ upstream: registry.url, vendor: "huawei-swr" });
    await using acr = startVendorProxy({ upstream: registry.url, vendor: "aliyun-acr-personal" });
    await using nginx = await startNginx({ upstream: registry.host, maxBodySize: "300k" });
    const standIns: Record<string, string> = {
      "registry.cn-hangzhou.aliyuncs.com": acr.host,
      "myinstance-registry.cn-hangzhou.cr.aliyuncs.com": registry.host,
      "ccr.ccs.tencentyun.com": registry.host,
      "swr.cn-north-4.myhuaweicloud.com": swr.host,
      "harbor.example.com": nginx.host,
    };
    const layout = await writeBuildkitLayout(join(dir.path, "app.tar"));
    const bin = await installWrapper(dir.path);
    const pushed: Record<string, string> = {};
    for (const command of commands) {
      const host = Object.keys(standIns).find((name) => command.includes(` ${name}/`));
      assert.ok(host, `a known registry in: ${command}`);
      const run = await new Deno.Command("sh", {
        args: ["-e", "-c", command.replace(` ${host}/`, ` ${standIns[host]}/`)],
        cwd: dir.path,
        env: {
          ...secrets,
          PATH: `${bin}:${Deno.env.get("PATH")}`,
          DOCKER_PUSHER_CACHE_DIR: join(dir.path, "cache"),
          NO_COLOR: "1",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(run.stderr);
      assert.equal(run.code, 0, `${command}\n${stderr}`);
      pushed[host] = command.match(new RegExp(`${host.replaceAll(".", "\\.")}/(\\S+)`))?.[1] ?? "";
    }
    assert.deepEqual(Object.keys(pushed).sort(), Object.keys(standIns).sort());
    assert.equal(new Set(Object.values(pushed)).size, commands.length, "one repository each");
    const creds = (user: string, password: string): string => `${user}:${password}`;
    const check = async (host: string, user: string, password: string) => {
      const reference = `${registry.host}/${pushed[host]}`;
      const pulled = await pullAndVerify(reference, { all: true, creds: creds(user, password) });
      for (const expected of layout.platforms) {
        const image = pulled.images.find((found) => found.configDigest === expected.configDigest);
        assert.deepEqual(image?.layers.map((layer) => layer.diffId), expected.diffIds, host);
      }
      return pulled;
    };
    const acrPulled = await check(
      "registry.cn-hangzhou.aliyuncs.com",
      "my-aliyun-account",
      secrets.ACR_PASSWORD,
    );
    assert.equal(acrPulled.images.length, 2, "ACR personal: attestations left out");
    // The image manifests after the first go up together: each attestation may be refused once.
    const acrRefused = acr.refusals.map((refusal) => refusal.path);
    assert.ok(acrRefused.length >= 1, "ACR personal refused the attestations");
    assert.equal(
      new Set(acrRefused).size,
      acrRefused.length,
      "ACR personal: nothing refused twice",
    );
    const swrPulled = await check(
      "swr.cn-north-4.myhuaweicloud.com",
      `cn-north-4@${secrets.SWR_ACCESS_KEY}`,
      secrets.SWR_PASSWORD,
    );
    assert.equal(swrPulled.mediaType, "application/vnd.docker.distribution.manifest.list.v2+json");
    assert.equal(swr.refusals.length, 0, "--format docker: nothing refused");
    for (
      const host of ["myinstance-registry.cn-hangzhou.cr.aliyuncs.com", "ccr.ccs.tencentyun.com"]
    ) {
      const user = host.startsWith("ccr") ? "100012345678" : "my-aliyun-account";
      const password = host.startsWith("ccr") ? secrets.TCR_PASSWORD : secrets.ACR_PASSWORD;
      const index = await skopeoInspect(`${registry.host}/${pushed[host]}`, {
        creds: creds(user, password),
      });
      assert.equal(
        (index.manifest["manifests"] as unknown[]).length,
        4,
        `${host}: attestations kept`,
      );
      await check(host, user, password);
    }
    await check("harbor.example.com", "robot$myproject+ci", secrets.ROBOT_SECRET);
    const refused = (await nginx.requests()).filter((request) => request.status === 413);
    assert.ok(refused.length > 0, "nginx answered 413 before the chunks fitted");
  } finally {
    await registry.stop();
  }
});

Deno.test("the ls example prints the table the README shows, and its push works", async () => {
  const text = section("List: what an archive holds");
  const script = firstCodeBlock(text, "sh");
  const shown = firstCodeBlock(text.slice(text.indexOf(script) + script.length + "```".length), "");
  const chinese = await chineseSection("列出归档内容：ls");
  const chineseScript = firstCodeBlock(chinese, "sh");
  assert.equal(chineseScript, script, "the Chinese README shows the same commands");
  assert.equal(
    firstCodeBlock(
      chinese.slice(chinese.indexOf(chineseScript) + chineseScript.length + "```".length),
      "",
    ),
    shown,
    "and the same table",
  );
  const fixture = (await sharedFixtures())["docker-legacy-multi"];
  const registry = await startRegistry();
  await using temp = await tempDir();
  try {
    const bin = await installWrapper(temp.path);
    await Deno.copyFile(fixture.path, join(temp.path, "images.tar"));
    const [list, push, ...rest] = shellCommands(script)
      .map((command) => command.replaceAll("registry.example.com/", `${registry.host}/`));
    assert.ok(list && push && rest.length === 0, script);
    const listed = await runShell(list, temp.path, bin);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout, shown);
    const pushed = await runShell(push, temp.path, bin);
    assert.equal(pushed.code, 0, pushed.stderr);
    await pullAndVerify(`${registry.host}/team/tools:v2`, {
      expectedConfigDigest: fixture.configDigest,
      expectedDiffIds: fixture.diffIds,
    });
  } finally {
    await registry.stop();
  }
});

Deno.test("the containerd recipe lists and pushes from a real containerd store", async () => {
  const script = firstCodeBlock(
    section("Push from a containerd store (k3s, Kubernetes nodes)"),
    "sh",
  );
  const chinese = await chineseSection("从 containerd 存储推送（k3s、Kubernetes 节点）");
  assert.deepEqual(
    shellCommands(firstCodeBlock(chinese, "sh")),
    shellCommands(script),
    "the Chinese README shows the same commands",
  );
  const k3sRoot = "/var/lib/rancher/k3s/agent/containerd";
  // Images a node pulled have compressed layers, so the push keeps the store's digest.
  const fixture = (await sharedFixtures())["oci-archive"];
  await using containerd = await startContainerd();
  await containerd.importArchive("k8s.io", fixture.path, { baseName: "docker.io/library/app" });
  const [stored] = await containerd.listImages("k8s.io");
  assert.equal(stored?.name, "docker.io/library/app:v1");
  const registry = await startRegistry();
  await using temp = await tempDir();
  try {
    const bin = await installWrapper(temp.path);
    const [list, push, ...rest] = shellCommands(script).map((command) =>
      command.replaceAll(k3sRoot, containerd.root)
        .replaceAll("registry.example.com/", `${registry.host}/`)
    );
    assert.ok(list && push && rest.length === 0, script);
    const listed = await runShell(list, temp.path, bin);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^app:v1\\s+linux/amd64\\s+${stored.digest}\\s`, "m"));
    const pushed = await runShell(push, temp.path, bin);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(pushed.stdout.trim(), `${registry.host}/team/app@${stored.digest}`);
    await pullAndVerify(`${registry.host}/team/app:v1`, {
      expectedManifestDigest: stored.digest,
      expectedConfigDigest: fixture.configDigest,
      expectedDiffIds: fixture.diffIds,
    });
  } finally {
    await registry.stop();
  }
});

/** Puts an OCI archive fixture's image into a registry with skopeo, digests preserved. */
async function seedRegistry(archive: string, target: string, creds?: string): Promise<void> {
  const output = await new Deno.Command("skopeo", {
    args: [
      ...["--insecure-policy", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false"],
      ...(creds !== undefined ? ["--dest-creds", creds] : []),
      `oci-archive:${archive}:v1`,
      `docker://${target}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(output.success, `skopeo copy failed: ${new TextDecoder().decode(output.stderr)}`);
}

Deno.test("the nightly sync recipe mirrors its LIST: a dry run writes nothing, the run lands every line, a re-run is unchanged", async () => {
  const text = section("Sync: mirror a list of images");
  const listText = firstCodeBlock(text, "text");
  const script = firstCodeBlock(text, "sh");
  const chinese = await chineseSection("同步：按清单镜像一批镜像");
  assert.equal(firstCodeBlock(chinese, "text"), listText, "the Chinese README shows the same LIST");
  assert.equal(firstCodeBlock(chinese, "sh"), script, "and the same commands");
  const commands = shellCommands(script);
  assert.equal(commands.length, 3, script);
  const aliyun = "registry.cn-hangzhou.aliyuncs.com/";
  const fixtures = await sharedFixtures();
  const password = "acr-Sync-5";
  const upstream = await startRegistry();
  const mirror = await startRegistry({ htpasswd: { "my-aliyun-account": password } });
  await using temp = await tempDir();
  try {
    // Upstream: docker.io and ghcr.io played by one local registry.
    await seedRegistry(fixtures["oci-archive"].path, `${upstream.host}/library/nginx:1.27`);
    await seedRegistry(fixtures["oci-multi-platform"].path, `${upstream.host}/library/redis:7.4`);
    await seedRegistry(fixtures["oci-archive"].path, `${upstream.host}/acme/api:2.3`);
    await Deno.copyFile(fixtures["docker-archive"].path, join(temp.path, "app.tar"));
    await Deno.writeTextFile(
      join(temp.path, "images.txt"),
      listText.replaceAll("docker.io/", `${upstream.host}/`)
        .replaceAll("ghcr.io/", `${upstream.host}/`)
        .replaceAll(aliyun, `${mirror.host}/`),
    );
    const bin = await installWrapper(temp.path);
    const [exports, dryRun, run] = commands.map((command) =>
      command.replaceAll(aliyun, `${mirror.host}/`)
    );
    const env = { ACR_PASSWORD: password };

    const planned = await runShell(`${exports}\n${dryRun}`, temp.path, bin, env);
    assert.equal(planned.code, 0, planned.stderr);
    const statuses = (stdout: string): string[] =>
      stdout.trimEnd().split("\n").slice(1).map((row) => row.split(/ {3,}/)[3] ?? "");
    assert.deepEqual(statuses(planned.stdout), Array(4).fill("would transfer"), planned.stdout);
    const targets = [
      `${mirror.host}/mirror/nginx:1.27`,
      `${mirror.host}/mirror/redis:7.4`,
      `${mirror.host}/acme/api:2.3`,
      `${mirror.host}/mirror/app:v1`,
    ];
    assert.deepEqual(
      planned.stdout.trimEnd().split("\n").slice(1).map((row) => row.split(/ {3,}/)[2]),
      targets,
    );
    const creds = `my-aliyun-account:${password}`;
    const tagged = await new Deno.Command("skopeo", {
      args: ["inspect", "--tls-verify=false", "--creds", creds, `docker://${targets[0]}`],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(!tagged.success, "the dry run wrote nothing");

    const synced = await runShell(`${exports}\n${run}`, temp.path, bin, env);
    assert.equal(synced.code, 0, synced.stderr);
    assert.deepEqual(statuses(synced.stdout), Array(4).fill("done"), synced.stdout);
    const nginx = fixtures["oci-archive"];
    for (const target of [targets[0], targets[2]]) {
      await pullAndVerify(target ?? "", {
        creds,
        expectedConfigDigest: nginx.configDigest,
        expectedDiffIds: nginx.diffIds,
      });
    }
    const redis = await pullAndVerify(targets[1] ?? "", { creds, all: true });
    assert.deepEqual(
      redis.images.map((image) => image.platform).filter((platform) =>
        platform !== "unknown/unknown"
      )
        .sort(),
      ["linux/amd64", "linux/arm64/v8"],
    );
    await pullAndVerify(targets[3] ?? "", {
      creds,
      expectedConfigDigest: fixtures["docker-archive"].configDigest,
      expectedDiffIds: fixtures["docker-archive"].diffIds,
    });

    const again = await runShell(`${exports}\n${run}`, temp.path, bin, env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(statuses(again.stdout), Array(4).fill("unchanged"), again.stdout);
    assert.match(again.stderr, /^synced 4 lines in .*: 0 transferred \(0 B sent\), 4 unchanged/m);
  } finally {
    await mirror.stop();
    await upstream.stop();
  }
});

/** Every shell code block of a README section, in order. */
function shellBlocks(text: string): string[] {
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
}

/** Puts a sample image into `registry` with skopeo; returns its manifest digest. */
async function seedSample(
  registry: TestRegistry,
  dir: string,
  name: string,
  randomBytes: number,
): Promise<string> {
  const file = join(dir, `${name.replaceAll(/[/:]/g, "-")}.tar`);
  await writeSampleDockerArchive(file, { layers: 3, randomBytes, name });
  const copied = await new Deno.Command("skopeo", {
    args: [
      ...["--insecure-policy", "copy", "--dest-tls-verify=false"],
      `docker-archive:${file}`,
      `docker://${registry.host}/${name}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(copied.success, new TextDecoder().decode(copied.stderr));
  return (await skopeoInspect(`${registry.host}/${name}`)).digest;
}

Deno.test("the bundle and delta recipes move images across as written", async () => {
  const heading = "Many images across an air gap (bundles)";
  const blocks = shellBlocks(section(heading));
  const chinese = await chineseSection("多镜像跨越隔离区（镜像包）");
  assert.deepEqual(
    shellBlocks(chinese).map(shellCommands),
    blocks.map(shellCommands),
    "the Chinese README shows the same commands",
  );
  const [bundle = "", delta = "", ...others] = blocks;
  assert.equal(others.length, 0, "two recipes: the bundle and the delta");
  const source = await startRegistry();
  const target = await startRegistry();
  await using temp = await tempDir();
  try {
    const bin = await installWrapper(temp.path);
    const commands = (block: string) =>
      shellCommands(block).map((command) =>
        command.replaceAll("registry.internal/mirror", `${target.host}/mirror`)
      );
    const base = await seedSample(source, temp.path, "k8s/base:1", 128 * 1024);
    const next = await seedSample(source, temp.path, "k8s/next:1", 64 * 1024);
    const list = join(temp.path, "images.txt");
    await Deno.writeTextFile(list, `# the set\n${source.host}/k8s/base:1\n`);
    const [pullBundle = "", pushBundle = ""] = commands(bundle);
    const pulled = await runShell(pullBundle, temp.path, bin);
    assert.equal(pulled.code, 0, pulled.stderr);
    const pushed = await runShell(pushBundle, temp.path, bin);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(pushed.stdout, `${target.host}/mirror/k8s/base@${base}\n`);

    await Deno.writeTextFile(list, `${source.host}/k8s/next:1\n`, { append: true });
    const [pullDelta = "", pushDelta = ""] = commands(delta);
    const made = await runShell(pullDelta, temp.path, bin);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /3 layer\(s\) \(.*\) left out/, "base's layers, two shared by next");
    const landed = await runShell(pushDelta, temp.path, bin);
    assert.equal(landed.code, 0, landed.stderr);
    assert.deepEqual(landed.stdout.split("\n").filter(Boolean).sort(), [
      `${target.host}/mirror/k8s/base@${base}`,
      `${target.host}/mirror/k8s/next@${next}`,
    ]);
    await pullAndVerify(`${target.host}/mirror/k8s/next:1`, { expectedManifestDigest: next });
  } finally {
    await target.stop();
    await source.stop();
  }
});

Deno.test("the copy recipes copy between two registries keeping the digest, drop platforms, and mount within one", async () => {
  const blocks = shellBlocks(section("Copy: registry to registry"));
  const chinese = await chineseSection("复制：从仓库到仓库");
  assert.deepEqual(
    shellBlocks(chinese).map(shellCommands),
    blocks.map(shellCommands),
    "the Chinese README shows the same commands",
  );
  const [across, arm64, promote, ...rest] = shellCommands(blocks[0] ?? "");
  assert.ok(across && arm64 && promote && rest.length === 0, blocks[0]);
  const secrets = { SRC_TOKEN: "src-Secret-6", DST_TOKEN: "dst-Secret-7" };
  const source = await startRegistry({ htpasswd: { reader: secrets.SRC_TOKEN } });
  const target = await startRegistry({ htpasswd: { writer: secrets.DST_TOKEN } });
  await using temp = await tempDir();
  try {
    const bin = await installWrapper(temp.path);
    await Deno.writeTextFile(join(temp.path, "token.txt"), `${secrets.DST_TOKEN}\n`);
    const fixture = (await sharedFixtures())["oci-multi-platform"];
    await seedRegistry(fixture.path, `${source.host}/team/app:1.0`, `reader:${secrets.SRC_TOKEN}`);
    const sourceDigest = (await skopeoInspect(`${source.host}/team/app:1.0`, {
      creds: `reader:${secrets.SRC_TOKEN}`,
    })).digest;
    const local = (command: string) =>
      command.replaceAll("src.example.com/", `${source.host}/`)
        .replaceAll("registry.example.com/", `${target.host}/`);
    const creds = `writer:${secrets.DST_TOKEN}`;
    const platformsOf = async (reference: string) =>
      (await pullAndVerify(reference, { creds, all: true })).images.map((image) => image.platform)
        .filter((platform) => platform !== "unknown/unknown").sort();

    const copied = await runShell(local(across), temp.path, bin, secrets);
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(copied.stdout.trim(), `${target.host}/team/app@${sourceDigest}`);
    assert.equal(
      (await skopeoInspect(`${target.host}/team/app:1.0`, { creds })).digest,
      sourceDigest,
      "the copy keeps the index digest",
    );
    assert.deepEqual(await platformsOf(`${target.host}/team/app:1.0`), [
      "linux/amd64",
      "linux/arm64/v8",
    ]);

    const narrowed = await runShell(local(arm64), temp.path, bin, secrets);
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.match(narrowed.stderr, /the index digest changed from /);
    assert.notEqual(narrowed.stdout.trim(), `${target.host}/team/app@${sourceDigest}`);
    assert.deepEqual(await platformsOf(`${target.host}/team/app:1.0-arm64`), ["linux/arm64/v8"]);

    // `docker login registry.example.com` as writer: both ends of the promotion read it.
    const dockerConfig = join(temp.path, "docker");
    await Deno.mkdir(dockerConfig);
    await Deno.writeTextFile(
      join(dockerConfig, "config.json"),
      JSON.stringify({ auths: { [target.host]: { auth: btoa(creds) } } }),
    );
    const promoted = await runShell(local(promote), temp.path, bin, {
      DOCKER_CONFIG: dockerConfig,
    });
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.equal(promoted.stdout.trim(), `${target.host}/prod/app@${sourceDigest}`);
    const summary = promoted.stderr.match(
      /: 0 uploaded \(0 B sent\), 0 already there, (\d+) mounted/,
    );
    assert.ok(summary && Number(summary[1]) > 0, promoted.stderr);
    await pullAndVerify(`${target.host}/prod/app:1.0`, {
      creds,
      all: true,
      expectedManifestDigest: sourceDigest,
    });
  } finally {
    await target.stop();
    await source.stop();
  }
});

Deno.test("the backup and restore recipe brings every image back with its digest, or one alone", async () => {
  const text = section("Backup and restore");
  const listText = firstCodeBlock(text, "text");
  const [script = "", ...others] = shellBlocks(text);
  assert.equal(others.length, 0, text);
  const chinese = await chineseSection("备份与恢复");
  assert.equal(firstCodeBlock(chinese, "text"), listText, "the Chinese README shows the same list");
  assert.deepEqual(
    shellBlocks(chinese).map(shellCommands),
    [shellCommands(script)],
    "and the same commands",
  );
  const [backup = "", restoreAll = "", restoreOne = "", ...rest] = shellCommands(script);
  assert.equal(rest.length, 0, script);
  const original = await startRegistry();
  const rebuilt = await startRegistry();
  const another = await startRegistry();
  await using temp = await tempDir();
  try {
    const bin = await installWrapper(temp.path);
    const api = await seedSample(original, temp.path, "team/api:2.3", 96 * 1024);
    const web = await seedSample(original, temp.path, "team/web:1.8", 64 * 1024);
    await Deno.writeTextFile(
      join(temp.path, "images.txt"),
      listText.replaceAll("registry.example.com/", `${original.host}/`),
    );
    const backedUp = await runShell(backup, temp.path, bin);
    assert.equal(backedUp.code, 0, backedUp.stderr);

    const restored = await runShell(
      restoreAll.replace(/registry\.example\.com$/, rebuilt.host),
      temp.path,
      bin,
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(restored.stdout.trim().split("\n").sort(), [
      `${rebuilt.host}/team/api@${api}`,
      `${rebuilt.host}/team/web@${web}`,
    ]);
    await pullAndVerify(`${rebuilt.host}/team/web:1.8`, { expectedManifestDigest: web });

    // The bundle names its images as they were pulled: from the original registry.
    const one = await runShell(
      restoreOne.replace("--image registry.example.com/", `--image ${original.host}/`)
        .replace("-r registry.example.com/", `-r ${another.host}/`),
      temp.path,
      bin,
    );
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout.trim(), `${another.host}/team/api@${api}`);
    await pullAndVerify(`${another.host}/team/api:2.3`, { expectedManifestDigest: api });
    const absent = await new Deno.Command("skopeo", {
      args: ["inspect", "--tls-verify=false", `docker://${another.host}/team/web:1.8`],
      stdout: "null",
      stderr: "null",
    }).output();
    assert.ok(!absent.success, "only the one image was restored");
  } finally {
    await another.stop();
    await rebuilt.stop();
    await original.stop();
  }
});

/** The long names (and short aliases) of the options a `--help` text lists. */
function helpOptions(help: string): string[][] {
  return [...help.matchAll(/^ {2}(?:(-\w), )?(--[a-z-]+)/gm)]
    .map((match) => [match[2] ?? "", ...(match[1] ? [match[1]] : [])]);
}

Deno.test("the pull, copy and sync sections name every flag their --help offers, with the variables of their own", async () => {
  const main = helpOptions((await runPusher(["--help"])).stdout).map(([long]) => long);
  const sections: [string, string, string][] = [
    ["pull", "Pull: registry to archive", "拉取：从仓库到归档"],
    ["copy", "Copy: registry to registry", "复制：从仓库到仓库"],
    ["sync", "Sync: mirror a list of images", "同步：按清单镜像一批镜像"],
  ];
  for (const [command, heading, chineseHeading] of sections) {
    const help = await runPusher([command, "--help"]);
    assert.equal(help.code, 0, help.stderr);
    const offered = helpOptions(help.stdout).filter(([long]) => long !== "--help");
    for (const text of [section(heading), await chineseSection(chineseHeading)]) {
      for (const names of offered) {
        assert.ok(
          names.some((name) => new RegExp("`" + name + "[`\\s,=]").test(text)),
          `the ${command} section names ${names.join(" / ")}`,
        );
      }
      for (const [long = ""] of offered.filter(([long]) => !main.includes(long ?? ""))) {
        const variable = `DOCKER_PUSHER_${long.slice(2).replaceAll("-", "_").toUpperCase()}`;
        assert.ok(help.stdout.includes(variable), `${command} --help names ${variable}`);
        assert.ok(text.includes(`\`${variable}\``), `the ${command} section names ${variable}`);
      }
      const documented = [...text.matchAll(/^[|-] `(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]);
      for (const flag of documented) {
        assert.ok(
          offered.some(([long]) => long === flag),
          `${command} --help offers ${flag}, which its section documents`,
        );
      }
    }
  }
});
