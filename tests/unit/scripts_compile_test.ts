import assert from "node:assert/strict";
import { join } from "node:path";
import {
  assetName,
  checksumFileText,
  compileArgs,
  ENTRY_POINT,
  formatCommand,
  isCompileTarget,
  parseCompileOptions,
  PROJECT_ROOT,
  RUNTIME_FLAGS,
  RUNTIME_PERMISSIONS,
  runtimeDownloadFailure,
  sha256File,
  TARGETS,
  WORKER_SCRIPT,
} from "../../scripts/compile.ts";
import { PusherError } from "../../lib/errors.ts";
import { VERSION } from "../../lib/version.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const decoder = new TextDecoder();

/** Runs a command to completion (killed after `timeoutMs`) and decodes its output. */
async function run(
  command: string,
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await new Deno.Command(command, {
    args,
    cwd: options.cwd ?? PROJECT_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
  }).output();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

// What `deno compile` 2.9.6 printed here when its runtime download failed (colours off).
const DOWNLOAD_FAILURE = `Check main.ts
Compile main.ts to dist/docker-image-pusher-x86_64-unknown-linux-gnu
Download https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip
error: Writing deno compile executable to temporary file 'dist/out.tmp-fee35d27db5836d5'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address information: Name or service not known
    2: client error (Connect)
    3: dns error
    4: failed to lookup address information: Name or service not known
`;

Deno.test("the release targets are exactly the five platforms", () => {
  assert.deepEqual([...TARGETS], [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
  ]);
  assert.ok(TARGETS.every(isCompileTarget));
  assert.equal(isCompileTarget("x86_64-unknown-linux-musl"), false);
});

Deno.test("asset names are docker-image-pusher-<target>, .exe on Windows, no version", () => {
  assert.deepEqual(TARGETS.map(assetName), [
    "docker-image-pusher-x86_64-unknown-linux-gnu",
    "docker-image-pusher-aarch64-unknown-linux-gnu",
    "docker-image-pusher-x86_64-apple-darwin",
    "docker-image-pusher-aarch64-apple-darwin",
    "docker-image-pusher-x86_64-pc-windows-msvc.exe",
  ]);
});

Deno.test("compile arguments carry the permissions, the worker and the target", () => {
  const args = compileArgs("aarch64-apple-darwin", join(PROJECT_ROOT, "dist"));
  assert.equal(args[0], "compile");
  assert.deepEqual(args.filter((arg) => arg.startsWith("--allow-")), [
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-sys",
  ]);
  assert.ok(!args.some((arg) => arg === "-A" || arg === "--allow-all" || arg.includes("ffi")));
  const include = args.indexOf("--include");
  assert.equal(args[include + 1], "lib/pipeline/compress_worker.ts");
  assert.equal(args[args.indexOf("--target") + 1], "aarch64-apple-darwin");
  assert.equal(args[args.indexOf("--output") + 1], "dist/docker-image-pusher-aarch64-apple-darwin");
  assert.equal(args.at(-1), ENTRY_POINT);
  const outside = compileArgs("x86_64-pc-windows-msvc", "/tmp/release-out", PROJECT_ROOT);
  assert.equal(
    outside[outside.indexOf("--output") + 1],
    "/tmp/release-out/docker-image-pusher-x86_64-pc-windows-msvc.exe",
  );
});

Deno.test("the included worker is the file the compression pool loads", async () => {
  await Deno.stat(join(PROJECT_ROOT, WORKER_SCRIPT));
  await Deno.stat(join(PROJECT_ROOT, ENTRY_POINT));
  const pool = await Deno.readTextFile(join(PROJECT_ROOT, "lib/pipeline/compress.ts"));
  assert.match(pool, /new URL\("\.\/compress_worker\.ts", import\.meta\.url\)/);
});

Deno.test("main.ts starts with exactly the flags baked into the binaries", async () => {
  // V8 rejects a flag it does not know with exit code 1, so this also checks RUNTIME_V8_FLAGS.
  const version = await run(Deno.execPath(), [
    "run",
    "--no-prompt",
    ...RUNTIME_FLAGS,
    ENTRY_POINT,
    "--version",
  ]);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), `docker-image-pusher ${VERSION}`);
  const help = await run(Deno.execPath(), [
    "run",
    "--no-prompt",
    ...RUNTIME_FLAGS,
    ENTRY_POINT,
    "--help",
  ]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--repository-url/);
});

Deno.test("`deno task push` runs main.ts with the binaries' flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(PROJECT_ROOT, "deno.json")));
  assert.equal(config.tasks.push, `deno run ${RUNTIME_FLAGS.join(" ")} ${ENTRY_POINT}`);
});

Deno.test({
  name: "node:https with checks off (--skip-tls) works under the baked-in permissions",
  async fn() {
    await using temp = await tempDir();
    const dir = temp.path;
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    const made = await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
    ]);
    assert.equal(made.code, 0, made.stderr);
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(cert),
      key: await Deno.readTextFile(key),
      onListen: () => {},
    }, async (request) => new Response(`got ${(await request.text()).length}`));
    try {
      const client = join(dir, "client.ts");
      await Deno.writeTextFile(
        client,
        `import https from "node:https";
const port = Number(Deno.args[0]);
const text = await new Promise((resolve, reject) => {
  const request = https.request(
    { host: "127.0.0.1", port, method: "PUT", path: "/", rejectUnauthorized: false },
    (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve(body));
    },
  );
  request.on("error", reject);
  request.end("hello");
});
console.log(text);
`,
      );
      const result = await run(Deno.execPath(), [
        "run",
        "--no-prompt",
        "--no-config",
        ...RUNTIME_PERMISSIONS,
        client,
        String(server.addr.port),
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "got 5\n");
    } finally {
      await server.shutdown();
    }
  },
});

Deno.test("options: defaults, repeated targets, --out, and usage errors", () => {
  const defaults = parseCompileOptions([], "/somewhere");
  assert.deepEqual(defaults, {
    targets: [...TARGETS],
    outDir: join(PROJECT_ROOT, "dist"),
    dryRun: false,
    help: false,
  });
  const picked = parseCompileOptions([
    "--target",
    "x86_64-pc-windows-msvc",
    "--target=x86_64-unknown-linux-gnu",
    "--target",
    "x86_64-pc-windows-msvc",
    "--out",
    "build",
    "--dry-run",
  ], "/work/here");
  assert.deepEqual(picked.targets, ["x86_64-unknown-linux-gnu", "x86_64-pc-windows-msvc"]);
  assert.equal(picked.outDir, "/work/here/build");
  assert.equal(picked.dryRun, true);
  assert.throws(
    () => parseCompileOptions(["--target", "riscv64-unknown-linux-gnu"], "/"),
    (error: unknown) =>
      error instanceof PusherError && error.kind === "usage" &&
      error.message.includes("'riscv64-unknown-linux-gnu'") &&
      (error.hint ?? "").includes("x86_64-apple-darwin"),
  );
  assert.throws(
    () => parseCompileOptions(["--frobnicate"], "/"),
    (error: unknown) =>
      error instanceof PusherError && error.kind === "usage" &&
      error.message.includes("--frobnicate"),
  );
  assert.throws(
    () => parseCompileOptions(["main.ts"], "/"),
    (error: unknown) => error instanceof PusherError && error.kind === "usage",
  );
});

Deno.test("SHA256SUMS text is sorted sha256sum format that sha256sum -c accepts", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const big = new Uint8Array(3 * 2 ** 20 + 17).map((_, i) => (i * 31 + (i >> 12)) & 0xff);
  await Deno.writeFile(join(dir, "docker-image-pusher-x86_64-pc-windows-msvc.exe"), big);
  await Deno.writeTextFile(join(dir, "docker-image-pusher-aarch64-apple-darwin"), "arm64\n");
  const entries = [];
  for (
    const name of [
      "docker-image-pusher-x86_64-pc-windows-msvc.exe",
      "docker-image-pusher-aarch64-apple-darwin",
    ]
  ) {
    entries.push({ name, sha256: await sha256File(join(dir, name)) });
  }
  const text = checksumFileText(entries);
  const lines = text.split("\n");
  assert.equal(lines.pop(), "");
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? "", /^[0-9a-f]{64} {2}docker-image-pusher-aarch64-apple-darwin$/);
  assert.match(
    lines[1] ?? "",
    /^[0-9a-f]{64} {2}docker-image-pusher-x86_64-pc-windows-msvc\.exe$/,
  );
  await Deno.writeTextFile(join(dir, "SHA256SUMS"), text);
  const check = await run("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir });
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const direct = await run("sha256sum", ["docker-image-pusher-x86_64-pc-windows-msvc.exe"], {
    cwd: dir,
  });
  assert.equal(direct.stdout.split(" ")[0], entries[0]?.sha256);
});

Deno.test("SHA256SUMS text refuses a bad digest or a path", () => {
  assert.throws(() => checksumFileText([{ name: "a", sha256: "abc" }]), /SHA-256/);
  assert.throws(
    () => checksumFileText([{ name: "dist/a", sha256: "0".repeat(64) }]),
    /'dist\/a'/,
  );
});

Deno.test("a failed runtime download is recognised, other failures are not", () => {
  assert.deepEqual(runtimeDownloadFailure(DOWNLOAD_FAILURE), {
    url: "https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
  });
  assert.equal(
    runtimeDownloadFailure(
      "Check main.ts\nTS2307 [ERROR]: Cannot find module 'file:///x/lib/a.ts'.\n" +
        "error: Type checking failed.\n",
    ),
    undefined,
  );
  assert.equal(
    runtimeDownloadFailure(
      "Download https://dl.deno.land/release/v2.9.6/denort-x86_64-apple-darwin.zip\n" +
        "error: No space left on device (os error 28)\n",
    ),
    undefined,
  );
});

Deno.test("printed commands survive a round trip through sh", async () => {
  const args = ["--output", "/tmp/out dir/it's here", "plain-word_1.ts"];
  const line = formatCommand("printf", ["%s\\n", ...args]);
  assert.equal(
    line,
    `printf '%s\\n' --output '/tmp/out dir/it'\\''s here' plain-word_1.ts`,
  );
  const echoed = await run("sh", ["-c", line]);
  assert.deepEqual(echoed.stdout.split("\n").slice(0, -1), args);
});

Deno.test("deno task compile --dry-run prints the five deno compile commands", async () => {
  const result = await run(Deno.execPath(), ["task", "compile", "--dry-run"]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 5, result.stdout);
  TARGETS.forEach((target, index) => {
    const line = lines[index] ?? "";
    assert.ok(line.startsWith("deno compile --allow-net "), line);
    assert.ok(line.includes(` --target ${target} `), line);
    assert.ok(line.includes(" --include lib/pipeline/compress_worker.ts "), line);
    assert.ok(line.endsWith(` --output dist/${assetName(target)} main.ts`), line);
  });
  await using scratchDir = await tempDir();
  const scratch = scratchDir.path;
  const out = join(scratch, "never-made");
  const one = await run(Deno.execPath(), [
    "task",
    "compile",
    "--dry-run",
    "--target",
    "x86_64-pc-windows-msvc",
    "--out",
    out,
  ]);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(
    one.stdout,
    `deno compile ${RUNTIME_FLAGS.join(" ")} --include ${WORKER_SCRIPT} ` +
      `--target x86_64-pc-windows-msvc --output ${out}/${
        assetName("x86_64-pc-windows-msvc")
      } main.ts\n`,
  );
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("deno task compile rejects an unknown target with exit code 2", async () => {
  const result = await run(Deno.execPath(), ["task", "compile", "--target", "sparc-sun-solaris"]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /error: unknown --target 'sparc-sun-solaris'/);
});

Deno.test({
  name: "a real compile builds the binary, or says clearly that the runtime download failed",
  async fn() {
    await using outDir = await tempDir();
    const out = outDir.path;
    const target = "x86_64-unknown-linux-gnu";
    const result = await run(
      Deno.execPath(),
      ["task", "compile", "--target", target, "--out", out],
      { timeoutMs: 240_000 },
    );
    if (result.code === 0) {
      // A machine that reaches Deno's download server builds for real.
      const sums = await Deno.readTextFile(join(out, "SHA256SUMS"));
      const binary = join(out, assetName(target));
      assert.equal(
        sums,
        checksumFileText([{ name: assetName(target), sha256: await sha256File(binary) }]),
      );
      return;
    }
    // Here the download server is unreachable: one clear line, exit code 5, nothing built.
    const errors = result.stderr.split("\n").filter((line) => line.startsWith("error: "));
    assert.equal(errors.length, 1, result.stderr);
    assert.match(errors[0] ?? "", /runtime download failed/);
    assert.match(errors[0] ?? "", /denort-x86_64-unknown-linux-gnu\.zip/);
    assert.match(errors[0] ?? "", /release workflow/);
    assert.match(errors[0] ?? "", /deno task compile --dry-run/);
    assert.ok(!result.stderr.includes("Caused by"), result.stderr);
    assert.equal(result.code, 5);
    const left = [];
    for await (const entry of Deno.readDir(out)) left.push(entry.name);
    assert.deepEqual(left, []);
  },
});

// ---------------------------------------------------------------------------------------------
// The release workflow
// ---------------------------------------------------------------------------------------------

interface WorkflowStep {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, string | boolean | number>;
}

interface WorkflowJob {
  "runs-on": string;
  needs?: string | string[];
  permissions?: Record<string, string>;
  strategy?: { matrix: { include: Record<string, string>[] } };
  services?: Record<string, { image: string; ports?: string[] }>;
  env?: Record<string, string>;
  steps: WorkflowStep[];
}

interface Workflow {
  on?: { push: { tags: string[] } };
  /** PyYAML reads the bare key `on` as YAML 1.1's boolean true. */
  true?: { push: { tags: string[] } };
  env: Record<string, string>;
  jobs: Record<string, WorkflowJob>;
}

const WORKFLOW = join(PROJECT_ROOT, ".github/workflows/release.yml");

/** Parses the workflow with PyYAML (python3), the parser at hand on this machine and CI's. */
async function loadWorkflow(): Promise<Workflow> {
  const result = await run("python3", [
    "-c",
    "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
    WORKFLOW,
  ]);
  assert.equal(result.code, 0, `PyYAML could not parse ${WORKFLOW}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Workflow;
}

function job(workflow: Workflow, name: string): WorkflowJob {
  const found = workflow.jobs[name];
  assert.ok(found, `no job '${name}'`);
  return found;
}

function step(job: WorkflowJob, predicate: (step: WorkflowStep) => boolean): WorkflowStep {
  const found = job.steps.find(predicate);
  assert.ok(found, "no such step");
  return found;
}

Deno.test("release.yml: a v* tag builds every target on its own runner", async () => {
  const workflow = await loadWorkflow();
  assert.deepEqual((workflow.on ?? workflow.true)?.push.tags, ["v*"]);
  const build = job(workflow, "build");
  const include = build.strategy?.matrix.include ?? [];
  const runners = Object.fromEntries(include.map((entry) => [entry["target"], entry["runner"]]));
  assert.deepEqual(runners, {
    "x86_64-unknown-linux-gnu": "ubuntu-latest",
    "aarch64-unknown-linux-gnu": "ubuntu-24.04-arm",
    "x86_64-apple-darwin": "macos-15-intel",
    "aarch64-apple-darwin": "macos-14",
    "x86_64-pc-windows-msvc": "windows-latest",
  });
  assert.equal(build["runs-on"], "${{ matrix.runner }}");
  // The workflow's asset name, with each matrix entry substituted, is compile.ts's name.
  for (const entry of include) {
    const target = entry["target"] ?? "";
    assert.ok(isCompileTarget(target), target);
    const asset = (build.env?.["ASSET"] ?? "")
      .replace("${{ matrix.target }}", target)
      .replace("${{ matrix.suffix }}", entry["suffix"] ?? "");
    assert.equal(asset, assetName(target));
    const linux = target.endsWith("-linux-gnu");
    assert.equal(entry["registry"], linux ? "registry:2" : undefined, target);
  }
  assert.equal(build.services?.["registry"]?.image, "${{ matrix.registry }}");
  assert.deepEqual(build.services?.["registry"]?.ports, ["5000:5000"]);

  assert.equal(workflow.env["DENO_VERSION"], Deno.version.deno);
  const setup = step(build, (s) => s.uses === "denoland/setup-deno@v2");
  assert.equal(setup.with?.["deno-version"], "${{ env.DENO_VERSION }}");
  step(build, (s) => s.run === "deno task compile --target ${{ matrix.target }}");
  step(build, (s) => (s.run ?? "").includes(`"./dist/$ASSET" --version`));
  const push = step(build, (s) => (s.run ?? "").includes("-r http://localhost:5000/sample:ci"));
  assert.equal(push.if, "matrix.registry");
  const upload = step(build, (s) => s.uses === "actions/upload-artifact@v4");
  assert.equal(upload.with?.["path"], "dist/${{ env.ASSET }}");
});

Deno.test("release.yml: the last job publishes binaries and SHA256SUMS", async () => {
  const workflow = await loadWorkflow();
  const release = job(workflow, "release");
  assert.ok([release.needs ?? []].flat().includes("build"));
  assert.equal(release.permissions?.["contents"], "write");
  const download = step(release, (s) => s.uses === "actions/download-artifact@v4");
  assert.equal(download.with?.["merge-multiple"], true);
  const sums = step(release, (s) => (s.run ?? "").includes("sha256sum docker-image-pusher-*"));
  assert.match(sums.run ?? "", /> SHA256SUMS/);
  const publish = step(release, (s) => s.uses === "softprops/action-gh-release@v2");
  assert.equal(publish.with?.["files"], "release/*");
});

Deno.test("release.yml: the sample archive step makes an image skopeo accepts", async () => {
  const workflow = await loadWorkflow();
  const sample = step(job(workflow, "build"), (s) => s.name === "Build a sample image archive");
  await using temp = await tempDir();
  const dir = temp.path;
  await Deno.writeTextFile(join(dir, "step.sh"), sample.run ?? "");
  const built = await new Deno.Command("bash", {
    args: ["--noprofile", "--norc", "-eo", "pipefail", "step.sh"],
    cwd: dir,
    env: { VERSION: "9.8.7" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(built.code, 0, decoder.decode(built.stderr));
  const copied = await run("skopeo", [
    "copy",
    "--quiet",
    "docker-archive:sample.tar",
    "oci:layout:ci",
  ], { cwd: dir });
  assert.equal(copied.code, 0, copied.stderr);
  const inspected = await run("skopeo", ["inspect", "docker-archive:sample.tar"], { cwd: dir });
  assert.equal(inspected.code, 0, inspected.stderr);
  const image = JSON.parse(inspected.stdout) as { Architecture: string; Layers: string[] };
  assert.equal(image.Architecture, Deno.build.arch === "aarch64" ? "arm64" : "amd64");
  assert.equal(image.Layers.length, 1);
  const motd = await run("sh", [
    "-c",
    'tar -xOf sample.tar "$(tar -tf sample.tar | grep layer.tar)" | tar -xO etc/motd',
  ], { cwd: dir });
  assert.equal(motd.stdout, "docker-image-pusher 9.8.7 release check\n");
});
