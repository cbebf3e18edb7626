/**
 * Starts a real containerd (Debian's `containerd`, as root) for integration tests, with its root,
 * state and sockets in a temporary directory, the CRI plugin and snapshotters that need special
 * filesystems disabled, and wraps `ctr` to fill it (`images import --no-unpack`) and to list it.
 *
 * ```ts
 * await using containerd = await startContainerd();
 * await containerd.importArchive("demo", "app.tar", { allPlatforms: true });
 * const images = await containerd.listImages("demo");
 * await containerd.stop(); // the store stays until the helper is disposed
 * ```
 *
 * @module
 */

import { tempDir } from "./temp_dir.ts";

/** One row of `ctr images ls`. */
export interface CtrImage {
  /** The image name (REF). */
  name: string;
  /** The target's media type (TYPE). */
  mediaType: string;
  /** The target's digest (DIGEST). */
  digest: string;
}

/** Options of {@link TestContainerd.importArchive}. */
export interface ImportOptions {
  /** Keep the content of every platform (`--all-platforms`), not only the host's. */
  allPlatforms?: boolean;
  /** Name images by this repository plus their OCI ref-name tag (`--base-name`). */
  baseName?: string;
}

/** A running (or stopped) test containerd. */
export interface TestContainerd extends AsyncDisposable {
  /** The containerd root (`<root>/io.containerd.metadata.v1.bolt/meta.db` etc.). */
  readonly root: string;
  /** The gRPC socket `ctr --address` talks to. */
  readonly address: string;
  /** Runs `ctr --address SOCK ARGS…`; returns stdout, throws with stderr on failure. */
  ctr(args: string[]): Promise<string>;
  /** `ctr -n NAMESPACE images import --no-unpack [options] ARCHIVE`. */
  importArchive(namespace: string, archive: string, options?: ImportOptions): Promise<void>;
  /** `ctr -n NAMESPACE images ls`, parsed. */
  listImages(namespace: string): Promise<CtrImage[]>;
  /** Stops containerd (SIGTERM) and waits for it; the root stays. Idempotent. */
  stop(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 20_000;

/** Plugins a test store needs no part of (CRI; snapshotters wanting btrfs, zfs, devmapper). */
const DISABLED_PLUGINS = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
];

function configToml(dir: string): string {
  return [
    "version = 2",
    `root = ${JSON.stringify(`${dir}/root`)}`,
    `state = ${JSON.stringify(`${dir}/state`)}`,
    `disabled_plugins = ${JSON.stringify(DISABLED_PLUGINS)}`,
    "[grpc]",
    `  address = ${JSON.stringify(`${dir}/containerd.sock`)}`,
    "[ttrpc]",
    `  address = ${JSON.stringify(`${dir}/containerd.sock.ttrpc`)}`,
    "",
  ].join("\n");
}

async function runCtr(address: string, args: string[]): Promise<string> {
  const output = await new Deno.Command("ctr", {
    args: ["--address", address, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`ctr ${args.join(" ")} failed: ${stderr}`);
  }
  return new TextDecoder().decode(output.stdout);
}

/** Parses `ctr images ls`: REF, TYPE and DIGEST are the first three columns. */
function parseImageList(text: string): CtrImage[] {
  return text.split("\n").slice(1).filter((line) => line.trim() !== "").map((line) => {
    const [name = "", mediaType = "", digest = ""] = line.trim().split(/\s+/);
    return { name, mediaType, digest };
  });
}

async function waitUntilServing(
  address: string,
  exited: () => boolean,
  log: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`containerd exited at start: ${(await log()).slice(-2000)}`);
    try {
      await runCtr(address, ["version"]);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`containerd did not answer on ${address} within ${STARTUP_TIMEOUT_MS} ms`);
}

/**
 * Starts containerd in a new temporary directory. Needs root and the `containerd` and `ctr`
 * binaries (Debian package `containerd`). Dispose of the result to stop it and remove the
 * directory.
 */
export async function startContainerd(): Promise<TestContainerd> {
  if (Deno.uid() !== 0) throw new Error("containerd tests must run as root");
  const temp = await tempDir("test-containerd-");
  const dir = temp.path;
  const address = `${dir}/containerd.sock`;
  await Deno.writeTextFile(`${dir}/config.toml`, configToml(dir));
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("containerd", {
      args: ["--config", `${dir}/config.toml`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    await temp.remove();
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "containerd is not installed; install it with: apt-get install -y containerd",
      );
    }
    throw error;
  }
  const log = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((result) => {
    exited = true;
    return result;
  });
  const stop = async (): Promise<void> => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    await status;
    await log;
  };
  const containerd: TestContainerd = {
    root: `${dir}/root`,
    address,
    ctr: (args) => runCtr(address, args),
    importArchive: async (namespace, archive, options = {}) => {
      await runCtr(address, [
        ...["-n", namespace, "images", "import", "--no-unpack"],
        ...(options.allPlatforms === true ? ["--all-platforms"] : []),
        ...(options.baseName === undefined ? [] : ["--base-name", options.baseName]),
        archive,
      ]);
    },
    listImages: async (namespace) =>
      parseImageList(await runCtr(address, ["-n", namespace, "images", "ls"])),
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
      await temp.remove();
    },
  };
  try {
    await waitUntilServing(address, () => exited, () => log);
  } catch (error) {
    await containerd[Symbol.asyncDispose]();
    throw error;
  }
  return containerd;
}
