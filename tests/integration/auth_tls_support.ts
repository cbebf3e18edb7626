/**
 * Shared pieces of the auth, TLS, proxy and redirect CLI tests: an isolated credentials
 * environment for each run, a secret register that every run's output is scanned against, a
 * verbose CLI runner that does the scan, pull-back verification with skopeo, and a small
 * CONNECT/forward HTTP proxy on loopback that counts what it carried (and can throttle uploads).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliRun, runPusher } from "../helpers/cli.ts";
import { pullAndVerify, skopeoInspect } from "../helpers/pull_verify.ts";
import { type SampleArchive, writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir, tempDirUntilExit } from "../helpers/temp_dir.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Something a bearer token looks like (the test token server issues JWTs). */
const JWT = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}/;
/** Basic or Bearer credentials that were not masked (`Basic ***` is what redaction leaves). */
const UNMASKED_AUTHORIZATION = /\b(?:basic|bearer)\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}/i;

const secrets = new Set<string>();

/** Registers a value that must never appear in any output; returns it. */
export function secret(value: string): string {
  secrets.add(value);
  return value;
}

/**
 * Registers a user name and password pair: the password, its URL-encoded form and the base64 of
 * `user:password` (what a Basic header carries) must never be printed.
 */
export function credentialsOf(username: string, password: string): string {
  secret(password);
  secret(encodeURIComponent(password));
  const bytes = encoder.encode(`${username}:${password}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  secret(btoa(binary));
  return password;
}

/** Fails when the run's stdout or stderr holds a registered secret or anything token-shaped. */
export function assertNoSecrets(run: CliRun): void {
  const output = `${run.stdout}\n${run.stderr}`;
  for (const value of secrets) {
    assert.ok(!output.includes(value), `the output leaks a secret (${value.slice(0, 3)}…)`);
  }
  assert.doesNotMatch(output, JWT, "the output leaks a bearer token");
  assert.doesNotMatch(output, UNMASKED_AUTHORIZATION, "the output leaks an Authorization value");
}

/** An environment with no credentials, certs.d or proxies of the machine running the tests. */
export interface IsolatedEnv {
  /** The temporary directory holding it all. */
  dir: string;
  /** `$DOCKER_CONFIG`. */
  dockerConfig: string;
  /** `$XDG_CONFIG_HOME` (podman's auth.json and `containers/certs.d` live below it). */
  configHome: string;
  /** `$XDG_RUNTIME_DIR`. */
  runtimeDir: string;
  /** Variables to pass to the run. */
  env: Record<string, string>;
  /** Removes the directory. */
  remove(): Promise<void>;
}

/** A fresh isolated environment (empty docker config, no auth files, no proxies). */
export async function isolatedEnv(): Promise<IsolatedEnv> {
  const temp = await tempDir("auth-cli-");
  const dir = temp.path;
  const dockerConfig = join(dir, "docker");
  const configHome = join(dir, "config");
  const runtimeDir = join(dir, "run");
  for (const path of [dockerConfig, configHome, runtimeDir]) await Deno.mkdir(path);
  const env: Record<string, string> = {
    DOCKER_CONFIG: dockerConfig,
    XDG_CONFIG_HOME: configHome,
    XDG_RUNTIME_DIR: runtimeDir,
    REGISTRY_AUTH_FILE: "",
  };
  for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"]) {
    env[name] = "";
    env[name.toLowerCase()] = "";
  }
  return {
    dir,
    dockerConfig,
    configHome,
    runtimeDir,
    env,
    remove: temp.remove,
  };
}

/** Options of {@link pushVerbose}. */
export interface VerboseRun {
  /** The isolated environment. */
  isolated: IsolatedEnv;
  /** Variables added on top of it. */
  env?: Record<string, string>;
  /** Bytes for stdin. */
  stdin?: string;
  /** Cache directory shared between runs. */
  cacheDir?: string;
}

/** Runs the CLI with `--verbose` in the isolated environment and scans its output for secrets. */
export async function pushVerbose(args: string[], options: VerboseRun): Promise<CliRun> {
  const runOptions: Parameters<typeof runPusher>[1] = {
    env: { ...options.isolated.env, ...(options.env ?? {}) },
  };
  if (options.stdin !== undefined) runOptions.stdin = options.stdin;
  if (options.cacheDir !== undefined) runOptions.cacheDir = options.cacheDir;
  const run = await runPusher([...args, "--verbose"], runOptions);
  assertNoSecrets(run);
  return run;
}

/** Fails with the run's stderr unless it exited with `code`. */
export function assertExit(run: CliRun, code: number): void {
  assert.equal(run.code, code, `exit ${run.code}, expected ${code}; stderr:\n${run.stderr}`);
}

/** Pushes `sample` to `reference` quietly with `cacheDir` as the cache; fails unless it exits 0. */
export async function pushSample(
  sample: SampleArchive,
  reference: string,
  cacheDir: string,
  extra: string[] = [],
): Promise<CliRun> {
  const run = await runPusher(["-f", sample.path, "-r", reference, "--quiet", ...extra], {
    cacheDir,
  });
  assertExit(run, 0);
  return run;
}

/** The manifest digest a successful run printed (`registry/repo@sha256:…`). */
export function pushedDigest(run: CliRun): string {
  const match = /@(sha256:[0-9a-f]{64})\s*$/m.exec(run.stdout);
  assert.ok(match?.[1], `no digest reference on stdout: ${run.stdout}`);
  return match[1];
}

/**
 * Pulls `reference` back with skopeo (`creds` as `user:password`) and checks it is the image the
 * run printed, with the sample's layers.
 */
export async function assertPulled(
  run: CliRun,
  reference: string,
  sample: SampleArchive,
  creds?: string,
): Promise<void> {
  assertExit(run, 0);
  const options: Parameters<typeof pullAndVerify>[1] = {
    expectedManifestDigest: pushedDigest(run),
    expectedConfigDigest: sample.configDigest,
    expectedDiffIds: sample.diffIds,
  };
  if (creds !== undefined) options.creds = creds;
  await pullAndVerify(reference, options);
}

/** Checks with `skopeo inspect` that `reference` is the manifest the run printed. */
export async function assertLanded(run: CliRun, reference: string, creds: string): Promise<void> {
  assertExit(run, 0);
  const found = await skopeoInspect(reference, { creds });
  assert.equal(found.digest, pushedDigest(run), `${reference} holds another manifest`);
}

/** Number of lines of `text` that match `pattern`. */
export function countLines(text: string, pattern: RegExp): number {
  return text.split("\n").filter((line) => pattern.test(line)).length;
}

/** The HTTP exchanges a `--verbose` run logged (`METHOD URL → status`). */
export function loggedRequests(run: CliRun): string[] {
  return run.stderr.split("\n").filter((line) =>
    /^(GET|HEAD|POST|PUT|PATCH|DELETE) \S+ → /.test(line)
  );
}

const samples = new Map<string, Promise<SampleArchive>>();

/**
 * A sample docker-save archive, written once per process: 2 layers, the last with
 * `randomBytes` of incompressible data.
 */
export function sampleArchive(randomBytes = 64 * 1024): Promise<SampleArchive> {
  const key = String(randomBytes);
  let sample = samples.get(key);
  if (sample === undefined) {
    sample = (async () => {
      const dir = await tempDirUntilExit("auth-sample-");
      return await writeSampleDockerArchive(join(dir, "sample.tar"), {
        layers: 2,
        randomBytes,
        seed: randomBytes,
        name: "auth/sample:latest",
      });
    })();
    samples.set(key, sample);
  }
  return sample;
}

/** Writes a docker/podman config file. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(value));
}

/** Options of {@link startTestProxy}. */
export interface TestProxyOptions {
  /** Caps the client-to-server bytes per second (uploads); unlimited when absent. */
  bytesPerSecond?: number;
}

/** A running CONNECT/forward proxy. */
export interface TestProxy {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Authorities of the `CONNECT` tunnels opened, in order. */
  tunnels: string[];
  /** Requests forwarded in absolute form, as `METHOD origin+path`. */
  forwarded: string[];
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const MAX_HEAD = 64 * 1024;
const PIECE = 16 * 1024;
const DROPPED_HEADERS = /^(proxy-connection|proxy-authorization|connection|keep-alive):/i;

/**
 * Starts an HTTP proxy on 127.0.0.1 that tunnels `CONNECT host:port` and forwards absolute-form
 * requests (each on its own upstream connection, with `Connection: close`), to loopback targets
 * only.
 */
export function startTestProxy(options: TestProxyOptions = {}): TestProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const tunnels: string[] = [];
  const forwarded: string[] = [];
  const rate = options.bytesPerSecond;

  const track = (conn: Deno.Conn): Deno.Conn => {
    conns.add(conn);
    return conn;
  };
  const upstreamWrite = async (conn: Deno.Conn, bytes: Uint8Array): Promise<void> => {
    if (rate === undefined) {
      await writeAll(conn, bytes);
      return;
    }
    for (let at = 0; at < bytes.byteLength; at += PIECE) {
      const piece = bytes.subarray(at, at + PIECE);
      await writeAll(conn, piece);
      await new Promise((resolve) => setTimeout(resolve, (piece.byteLength / rate) * 1000));
    }
  };
  const splice = async (
    client: Deno.Conn,
    upstream: Deno.Conn,
    pending: Uint8Array,
  ): Promise<void> => {
    const up = (async () => {
      await upstreamWrite(upstream, pending);
      const buffer = new Uint8Array(PIECE * 4);
      for (;;) {
        const read = await client.read(buffer);
        if (read === null) return;
        await upstreamWrite(upstream, buffer.slice(0, read));
      }
    })();
    const down = (async () => {
      const buffer = new Uint8Array(PIECE * 4);
      for (;;) {
        const read = await upstream.read(buffer);
        if (read === null) return;
        await writeAll(client, buffer.subarray(0, read));
      }
    })();
    await Promise.race([up, down]).catch(() => {});
    closeQuietly(client);
    closeQuietly(upstream);
    await Promise.allSettled([up, down]);
  };
  const handle = async (client: Deno.Conn): Promise<void> => {
    try {
      const request = await readHead(client);
      if (request === undefined) return;
      const [requestLine = "", ...headers] = request.head.split("\r\n");
      const [method = "", target = ""] = requestLine.split(" ");
      if (method === "CONNECT") {
        const { hostname, port } = splitAuthority(target);
        if (!LOOPBACK.has(hostname)) {
          await writeAll(client, encoder.encode("HTTP/1.1 403 Forbidden\r\n\r\n"));
          return;
        }
        const upstream = track(await Deno.connect({ hostname, port }));
        tunnels.push(target);
        await writeAll(client, encoder.encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
        await splice(client, upstream, request.rest);
        return;
      }
      const url = URL.canParse(target) ? new URL(target) : undefined;
      if (url === undefined || url.protocol !== "http:" || !LOOPBACK.has(url.hostname)) {
        await writeAll(client, encoder.encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
        return;
      }
      forwarded.push(`${method} ${url.origin}${url.pathname}`);
      const upstream = track(
        await Deno.connect({ hostname: url.hostname, port: Number(url.port || 80) }),
      );
      const kept = headers.filter((line) => line !== "" && !DROPPED_HEADERS.test(line));
      const head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\n${kept.join("\r\n")}\r\n` +
        "Connection: close\r\n\r\n";
      await writeAll(upstream, encoder.encode(head));
      await splice(client, upstream, request.rest);
    } finally {
      closeQuietly(client);
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const task = handle(track(conn)).catch(() => {}).finally(() => tasks.delete(task));
        tasks.add(task);
      }
    } catch {
      // the listener was closed
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    tunnels,
    forwarded,
    async close(): Promise<void> {
      listener.close();
      for (const conn of conns) closeQuietly(conn);
      await accepting;
      await Promise.allSettled([...tasks]);
    },
  };
}

async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array } | undefined> {
  let buffer = new Uint8Array(0);
  const chunk = new Uint8Array(PIECE);
  while (buffer.byteLength < MAX_HEAD) {
    const read = await conn.read(chunk);
    if (read === null) return undefined;
    const joined = new Uint8Array(buffer.byteLength + read);
    joined.set(buffer);
    joined.set(chunk.subarray(0, read), buffer.byteLength);
    buffer = joined;
    const end = headEnd(buffer);
    if (end >= 0) {
      return { head: decoder.decode(buffer.subarray(0, end)), rest: buffer.slice(end + 4) };
    }
  }
  return undefined;
}

/** Index of the first `\r\n\r\n` in `bytes`, or -1. */
function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.byteLength; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

function splitAuthority(authority: string): { hostname: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(authority);
  return {
    hostname: (match?.[1] ?? authority).replace(/^\[|\]$/g, ""),
    port: Number(match?.[2] ?? 443),
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) written += await conn.write(bytes.subarray(written));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
