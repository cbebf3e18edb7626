import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  assetName,
  checksumFileText,
  type CompileTarget,
  isCompileTarget,
  PROJECT_ROOT,
  TARGETS,
} from "../../scripts/compile.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const INSTALL_SH = join(PROJECT_ROOT, "scripts/install.sh");
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A small shell script posing as the release binary. */
function fakeBinary(version: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`#!/bin/sh\necho "${version}"\n`);
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A release as served: every asset, one of them tampered with or left out of SHA256SUMS. */
function release(
  version: string,
  options: { tamper?: CompileTarget; omit?: CompileTarget } = {},
): Map<string, Uint8Array<ArrayBuffer>> {
  const files = new Map<string, Uint8Array<ArrayBuffer>>();
  const entries = [];
  for (const target of TARGETS) {
    const bytes = fakeBinary(`${version} ${target}`);
    if (target !== options.omit) entries.push({ name: assetName(target), sha256: sha256(bytes) });
    const served = target === options.tamper
      ? encoder.encode(`#!/bin/sh\necho "${version} ${target}"; echo tampered\n`)
      : bytes;
    files.set(assetName(target), served);
  }
  files.set("SHA256SUMS", encoder.encode(checksumFileText(entries)));
  return files;
}

/** A local release server: `/latest/download/<asset>` and `/download/<tag>/<asset>`. */
class ReleaseServer {
  readonly requests: string[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #releases: Map<string, Map<string, Uint8Array<ArrayBuffer>>>;

  constructor(releases: Record<string, Map<string, Uint8Array<ArrayBuffer>>>) {
    this.#releases = new Map(Object.entries(releases));
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#handle(request),
    );
  }

  get base(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  #handle(request: Request): Response {
    const path = new URL(request.url).pathname;
    this.requests.push(path);
    const match = path.match(/^\/(?:latest\/download|download\/([^/]+))\/([^/]+)$/);
    const tag = match ? match[1] ?? "latest" : undefined;
    const body = tag === undefined ? undefined : this.#releases.get(tag)?.get(match?.[2] ?? "");
    return body ? new Response(body) : new Response("Not Found", { status: 404 });
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `shell install.sh args…` with a clean environment. */
async function install(
  shell: string,
  args: string[],
  env: Record<string, string>,
): Promise<RunResult> {
  const result = await new Deno.Command(shell, {
    args: [INSTALL_SH, ...args],
    clearEnv: true,
    env: { PATH: "/usr/local/bin:/usr/bin:/bin", LANG: "C", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

async function runInstalled(path: string): Promise<string> {
  const result = await new Deno.Command(path, { args: ["--version"], stdout: "piped" }).output();
  assert.equal(result.code, 0);
  return decoder.decode(result.stdout).trim();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function listDir(path: string): Promise<string[]> {
  const names = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  return names.sort();
}

/** A directory of links to every command on the usual PATH except `hidden`. */
async function pathWithout(root: string, hidden: readonly string[]): Promise<string> {
  const bin = join(root, "limited-bin");
  await Deno.mkdir(bin);
  for (const dir of ["/usr/local/bin", "/usr/bin", "/bin"]) {
    if (!(await exists(dir))) continue;
    for await (const entry of Deno.readDir(dir)) {
      if (hidden.includes(entry.name) || (await exists(join(bin, entry.name)))) continue;
      await Deno.symlink(join(dir, entry.name), join(bin, entry.name));
    }
  }
  return bin;
}

/** A `uname` that reports the given system and machine, in a directory to put first on PATH. */
async function fakeUname(root: string, system: string, machine: string): Promise<string> {
  const bin = join(root, `uname-${system}-${machine}`);
  await Deno.mkdir(bin);
  await Deno.writeTextFile(
    join(bin, "uname"),
    `#!/bin/sh\ncase "$1" in -s) echo '${system}' ;; -m) echo '${machine}' ;; *) echo '${system}' ;; esac\n`,
    { mode: 0o755 },
  );
  return bin;
}

const hostTarget = isCompileTarget(Deno.build.target) ? Deno.build.target : undefined;
const SHELLS = ["sh", "dash", "bash"].filter((shell) =>
  ["/bin", "/usr/bin"].some((dir) => {
    try {
      return Deno.statSync(join(dir, shell)).isFile;
    } catch {
      return false;
    }
  })
);

Deno.test({
  name: "install.sh installs the latest and a pinned release for this machine",
  ignore: hostTarget === undefined || Deno.build.os === "windows",
  async fn(t) {
    const target = hostTarget as CompileTarget;
    const server = new ReleaseServer({ latest: release("0.3.0"), "v0.2.0": release("0.2.0") });
    await using homeDir = await tempDir();
    const home = homeDir.path;
    try {
      for (const shell of SHELLS) {
        await t.step(`latest, with ${shell}`, async () => {
          const dir = join(home, `${shell}-latest`, "bin");
          server.requests.length = 0;
          const result = await install(shell, [], {
            HOME: home,
            INSTALL_DIR: dir,
            DOCKER_PUSHER_RELEASE_BASE: server.base,
          });
          assert.equal(result.code, 0, result.stderr);
          const dest = join(dir, "docker-image-pusher");
          assert.equal(((await Deno.stat(dest)).mode ?? 0) & 0o777, 0o755);
          assert.equal(await runInstalled(dest), `0.3.0 ${target}`);
          assert.deepEqual(server.requests, [
            `/latest/download/${assetName(target)}`,
            "/latest/download/SHA256SUMS",
          ]);
          assert.match(
            result.stdout,
            new RegExp(`installed docker-image-pusher 0\\.3\\.0 .* to ${dest}\\n`),
          );
          assert.match(result.stdout, new RegExp(`${dir} is not on your PATH`));
          assert.deepEqual(await listDir(dir), ["docker-image-pusher"]);
        });
      }

      await t.step(
        "pinned v0.2.0 replaces an install, and a directory on PATH is noticed",
        async () => {
          const dir = join(home, "pinned");
          await Deno.mkdir(dir);
          await Deno.writeTextFile(join(dir, "docker-image-pusher"), "#!/bin/sh\necho old\n");
          server.requests.length = 0;
          const result = await install("sh", ["v0.2.0"], {
            HOME: home,
            INSTALL_DIR: `${dir}/`,
            DOCKER_PUSHER_RELEASE_BASE: `${server.base}/`,
            PATH: `/usr/bin:/bin:${dir}`,
          });
          assert.equal(result.code, 0, result.stderr);
          assert.equal(await runInstalled(join(dir, "docker-image-pusher")), `0.2.0 ${target}`);
          assert.deepEqual(server.requests, [
            `/download/v0.2.0/${assetName(target)}`,
            "/download/v0.2.0/SHA256SUMS",
          ]);
          assert.match(result.stdout, new RegExp(`${dir} is on your PATH`));
        },
      );

      await t.step("a version without the v, into the default ~/.local/bin", async () => {
        const result = await install("sh", ["0.2.0"], {
          HOME: home,
          DOCKER_PUSHER_RELEASE_BASE: server.base,
        });
        assert.equal(result.code, 0, result.stderr);
        const dest = join(home, ".local", "bin", "docker-image-pusher");
        assert.equal(await runInstalled(dest), `0.2.0 ${target}`);
      });
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "install.sh refuses a binary whose checksum does not match and installs nothing",
  ignore: hostTarget === undefined || Deno.build.os === "windows",
  async fn(t) {
    const target = hostTarget as CompileTarget;
    const server = new ReleaseServer({
      latest: release("0.3.0", { tamper: target }),
      "v0.2.0": release("0.2.0", { omit: target }),
    });
    await using homeDir = await tempDir();
    const home = homeDir.path;
    try {
      for (const shell of SHELLS) {
        await t.step(`tampered asset, with ${shell}`, async () => {
          const dir = join(home, shell);
          const result = await install(shell, [], {
            HOME: home,
            INSTALL_DIR: dir,
            DOCKER_PUSHER_RELEASE_BASE: server.base,
          });
          assert.notEqual(result.code, 0);
          assert.match(
            result.stderr,
            new RegExp(
              `error: checksum mismatch for ${assetName(target)}: SHA256SUMS says [0-9a-f]{64} ` +
                "but the download is [0-9a-f]{64}; nothing was installed",
            ),
          );
          assert.equal(await exists(dir), false);
        });
      }

      await t.step("an existing install is left as it was", async () => {
        const dir = join(home, "existing");
        await Deno.mkdir(dir);
        const old = "#!/bin/sh\necho old\n";
        await Deno.writeTextFile(join(dir, "docker-image-pusher"), old, { mode: 0o755 });
        const result = await install("sh", [], {
          HOME: home,
          INSTALL_DIR: dir,
          DOCKER_PUSHER_RELEASE_BASE: server.base,
        });
        assert.notEqual(result.code, 0);
        assert.match(result.stderr, /checksum mismatch/);
        assert.equal(await Deno.readTextFile(join(dir, "docker-image-pusher")), old);
        assert.deepEqual(await listDir(dir), ["docker-image-pusher"]);
      });

      await t.step("an asset missing from SHA256SUMS is refused", async () => {
        const dir = join(home, "unlisted");
        const result = await install("sh", ["v0.2.0"], {
          HOME: home,
          INSTALL_DIR: dir,
          DOCKER_PUSHER_RELEASE_BASE: server.base,
        });
        assert.notEqual(result.code, 0);
        assert.match(
          result.stderr,
          new RegExp(`SHA256SUMS has no entry for ${assetName(target)}; nothing was installed`),
        );
        assert.equal(await exists(dir), false);
      });

      await t.step("a release that does not exist is reported, nothing installed", async () => {
        const dir = join(home, "missing");
        const result = await install("sh", ["v9.9.9"], {
          HOME: home,
          INSTALL_DIR: dir,
          DOCKER_PUSHER_RELEASE_BASE: server.base,
        });
        assert.notEqual(result.code, 0);
        assert.match(
          result.stderr,
          new RegExp(
            `could not download ${server.base}/download/v9\\.9\\.9/${assetName(target)} ` +
              `\\(is there a v9\\.9\\.9 release with a ${target} binary\\?\\)`,
          ),
        );
        assert.equal(await exists(dir), false);
      });
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "install.sh works with wget and shasum, and refuses to install unverified",
  ignore: hostTarget === undefined || Deno.build.os === "windows",
  async fn(t) {
    const target = hostTarget as CompileTarget;
    const server = new ReleaseServer({
      latest: release("0.3.0"),
      "v0.1.0": release("0.1.0", { tamper: target }),
    });
    await using homeDir = await tempDir();
    const home = homeDir.path;
    try {
      const noCurl = await pathWithout(home, ["curl", "sha256sum"]);
      const haveTools = await exists(join(noCurl, "wget")) && await exists(join(noCurl, "shasum"));
      await t.step({
        name: "wget downloads and shasum verifies",
        ignore: !haveTools,
        fn: async () => {
          const dir = join(home, "wget");
          const result = await install("sh", [], {
            HOME: home,
            INSTALL_DIR: dir,
            DOCKER_PUSHER_RELEASE_BASE: server.base,
            PATH: noCurl,
          });
          assert.equal(result.code, 0, result.stderr);
          assert.equal(await runInstalled(join(dir, "docker-image-pusher")), `0.3.0 ${target}`);
          const tampered = await install("sh", ["v0.1.0"], {
            HOME: home,
            INSTALL_DIR: join(home, "wget-tampered"),
            DOCKER_PUSHER_RELEASE_BASE: server.base,
            PATH: noCurl,
          });
          assert.notEqual(tampered.code, 0);
          assert.match(tampered.stderr, /checksum mismatch/);
          assert.equal(await exists(join(home, "wget-tampered")), false);
        },
      });

      await t.step("no SHA-256 tool at all: nothing is installed", async () => {
        const bare = join(home, "bare");
        await Deno.mkdir(bare);
        const limited = await pathWithout(bare, ["sha256sum", "shasum", "openssl"]);
        const dir = join(home, "unverified");
        const result = await install("sh", [], {
          HOME: home,
          INSTALL_DIR: dir,
          DOCKER_PUSHER_RELEASE_BASE: server.base,
          PATH: limited,
        });
        assert.notEqual(result.code, 0);
        assert.match(result.stderr, /no sha256sum, shasum or openssl .*; nothing was installed/);
        assert.equal(await exists(dir), false);
      });
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "install.sh maps uname to the release target and rejects what has no binary",
  ignore: Deno.build.os === "windows",
  async fn(t) {
    const server = new ReleaseServer({ latest: release("0.3.0") });
    await using homeDir = await tempDir();
    const home = homeDir.path;
    try {
      const cases: [string, string, CompileTarget][] = [
        ["Linux", "x86_64", "x86_64-unknown-linux-gnu"],
        ["Linux", "amd64", "x86_64-unknown-linux-gnu"],
        ["Linux", "aarch64", "aarch64-unknown-linux-gnu"],
        ["Linux", "arm64", "aarch64-unknown-linux-gnu"],
        ["Darwin", "x86_64", "x86_64-apple-darwin"],
        ["Darwin", "arm64", "aarch64-apple-darwin"],
      ];
      for (const [system, machine, target] of cases) {
        await t.step(`${system} ${machine} → ${target}`, async () => {
          const bin = await fakeUname(home, system, machine);
          const dir = join(home, `${system}-${machine}`);
          server.requests.length = 0;
          const result = await install("sh", [], {
            HOME: home,
            INSTALL_DIR: dir,
            DOCKER_PUSHER_RELEASE_BASE: server.base,
            PATH: `${bin}:/usr/bin:/bin`,
          });
          assert.equal(result.code, 0, result.stderr);
          assert.equal(server.requests[0], `/latest/download/${assetName(target)}`);
          assert.equal(await runInstalled(join(dir, "docker-image-pusher")), `0.3.0 ${target}`);
        });
      }
      const refusals: [string, string, RegExp][] = [
        ["FreeBSD", "amd64", /unsupported operating system 'FreeBSD'/],
        ["Linux", "riscv64", /unsupported CPU architecture 'riscv64'/],
        ["MINGW64_NT-10.0-19045", "x86_64", /run install\.ps1 in PowerShell instead/],
      ];
      for (const [system, machine, message] of refusals) {
        await t.step(`${system} ${machine} is refused`, async () => {
          const bin = await fakeUname(home, system, machine);
          server.requests.length = 0;
          const result = await install("sh", [], {
            HOME: home,
            INSTALL_DIR: join(home, "refused"),
            DOCKER_PUSHER_RELEASE_BASE: server.base,
            PATH: `${bin}:/usr/bin:/bin`,
          });
          assert.equal(result.code, 1);
          assert.match(result.stderr, message);
          assert.deepEqual(server.requests, []);
        });
      }
      await t.step("a bad version argument is refused before any download", async () => {
        for (const args of [["v1.0/../../x"], ["beta"], ["v1", "v2"]]) {
          const result = await install("sh", args, {
            HOME: home,
            INSTALL_DIR: join(home, "refused"),
            DOCKER_PUSHER_RELEASE_BASE: server.base,
          });
          assert.equal(result.code, 1, args.join(" "));
          assert.match(result.stderr, /not a version|too many arguments/);
        }
        assert.deepEqual(server.requests, []);
        assert.equal(await exists(join(home, "refused")), false);
      });
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "release.yml's installer step installs a built binary from a local release copy",
  ignore: hostTarget === undefined || Deno.build.os === "windows",
  async fn() {
    const target = hostTarget as CompileTarget;
    const parsed = await new Deno.Command("python3", {
      args: [
        "-c",
        "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        join(PROJECT_ROOT, ".github/workflows/release.yml"),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(parsed.code, 0, decoder.decode(parsed.stderr));
    const workflow = JSON.parse(decoder.decode(parsed.stdout)) as {
      jobs: { build: { steps: { name?: string; run?: string }[] } };
    };
    const script = workflow.jobs.build.steps.find((step) => step.name?.startsWith("Install it"))
      ?.run;
    assert.ok(script, "no installer step in the build job");

    await using workDir = await tempDir();
    const work = workDir.path;
    // The step's server port, swapped for one that is free now.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    await Deno.mkdir(join(work, "dist"));
    await Deno.mkdir(join(work, "scripts"));
    await Deno.copyFile(INSTALL_SH, join(work, "scripts/install.sh"));
    const binary = fakeBinary("docker-image-pusher 4.5.6");
    await Deno.writeFile(join(work, "dist", assetName(target)), binary, { mode: 0o755 });
    await Deno.writeTextFile(
      join(work, "dist/SHA256SUMS"),
      checksumFileText([{ name: assetName(target), sha256: sha256(binary) }]),
    );
    await Deno.writeTextFile(join(work, "step.sh"), script.replaceAll("8765", String(port)));
    const denoDir = Deno.execPath().replace(/\/[^/]+$/, "");
    const result = await new Deno.Command("bash", {
      args: ["--noprofile", "--norc", "-eo", "pipefail", "step.sh"],
      cwd: work,
      clearEnv: true,
      env: {
        PATH: `${denoDir}:/usr/local/bin:/usr/bin:/bin`,
        HOME: work,
        RUNNER_OS: "Linux",
        RUNNER_TEMP: join(work, "runner-temp"),
        ASSET: assetName(target),
        VERSION: "4.5.6",
      },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const output = decoder.decode(result.stdout) + decoder.decode(result.stderr);
    assert.equal(result.code, 0, output);
    assert.match(output, /installed docker-image-pusher docker-image-pusher 4\.5\.6/);
    const installed = join(work, "runner-temp/installed/docker-image-pusher");
    assert.equal(await runInstalled(installed), "docker-image-pusher 4.5.6");
  },
});
