/**
 * Starts a real CNCF Distribution registry (`docker-registry serve`) on 127.0.0.1 and a free port
 * for integration tests, with storage in a temporary directory and optional htpasswd Basic auth,
 * Docker token auth (an in-process token server signing RS256 JWTs with an `x5c` certificate)
 * and TLS (a test CA and a server certificate it signed).
 *
 * @module
 */

import { createSign } from "node:crypto";
import { distributionConfig, freePort } from "../../scripts/distribution_config.ts";
import { tempDir, tempDirUntilExit } from "./temp_dir.ts";

/** A user name → password table. */
export type Users = Record<string, string>;

/** Token auth settings. */
export interface TokenAuthOptions {
  /** Accounts the token server accepts. */
  users: Users;
  /** How long the registry accepts a token, in seconds (default 300). */
  lifetimeSeconds?: number;
  /** `expires_in` told to clients, in seconds (default: the real lifetime). */
  advertisedSeconds?: number;
  /** Answer the OAuth2 `POST` grant (default true); false answers 404 to `POST`. */
  allowPost?: boolean;
  /**
   * The `host:port` the realm names, given the token server's own (default: itself); lets a
   * proxy stand between clients and the token server.
   */
  realmHost?: (tokenServerHost: string) => string;
}

/** Options of {@link startRegistry}. */
export interface TestRegistryOptions {
  /** Basic auth with these accounts (an htpasswd file made with `htpasswd -Bbn`). */
  htpasswd?: Users;
  /** Docker token auth. */
  token?: TokenAuthOptions;
  /** Serve HTTPS with a certificate signed by a test CA. */
  tls?: boolean;
}

/** One request the token server answered. */
export interface TokenRequestLog {
  /** `GET` or `POST`. */
  method: string;
  /** `grant_type` of a `POST`. */
  grantType?: string;
  /** The authenticated account, if any. */
  user?: string;
  /** Requested scopes. */
  scopes: string[];
  /** HTTP status answered. */
  status: number;
}

/** A running test registry. */
export interface TestRegistry {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** `127.0.0.1:<port>`. */
  host: string;
  /** The test CA certificate (PEM) when TLS is on. */
  caCert?: string;
  /** Requests the token server answered (token auth only). */
  tokenRequests: TokenRequestLog[];
  /** Refresh tokens the token server issued, by user. */
  refreshTokens: Map<string, string>;
  /** Distribution's storage directory (its filesystem `rootdirectory`). */
  storage: string;
  /**
   * Kills the registry process with SIGKILL, as a crash would, and waits for it to exit; the port,
   * the storage and the token server stay. Clients now get refused connections.
   */
  kill(): Promise<void>;
  /** Starts a killed registry again on the same port and storage; resolves once it answers. */
  restart(): Promise<void>;
  /** Stops the registry and the token server and removes the storage. */
  stop(): Promise<void>;
}

const SERVICE = "test-registry";
const ISSUER = "test-token-issuer";
/** Distribution accepts tokens up to 60 s past `exp` (clock-skew leeway); tokens compensate. */
const REGISTRY_LEEWAY_SECONDS = 60;

/** Starts a registry; call `stop()` when done (in a `finally`). */
export async function startRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const storage = await tempDir("test-registry-");
  const dir = storage.path;
  const tokenRequests: TokenRequestLog[] = [];
  const refreshTokens = new Map<string, string>();
  let tokenServer: Deno.HttpServer | undefined;
  let child: Deno.ChildProcess | undefined;
  let stderr: Promise<string> | undefined;
  let client: Deno.HttpClient | undefined;
  const end = async (signal: Deno.Signal): Promise<void> => {
    if (child === undefined) return;
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
    await child.status;
    await stderr;
    child = undefined;
  };
  const stop = async (): Promise<void> => {
    await end("SIGTERM");
    await tokenServer?.shutdown();
    client?.close();
    await storage.remove();
  };
  try {
    const httpLines: string[] = [];
    const sections: string[] = [];
    let caCert: string | undefined;
    if (options.tls === true) {
      const certs = await certificates();
      caCert = certs.caCert;
      client = Deno.createHttpClient({ caCerts: [caCert] });
      httpLines.push(
        "  tls:",
        `    certificate: ${JSON.stringify(certs.serverCertPath)}`,
        `    key: ${JSON.stringify(certs.serverKeyPath)}`,
      );
    }
    if (options.htpasswd !== undefined) {
      const path = `${dir}/htpasswd`;
      await Deno.writeTextFile(path, await htpasswdFile(options.htpasswd));
      sections.push(
        "auth:",
        "  htpasswd:",
        "    realm: test-realm",
        `    path: ${JSON.stringify(path)}`,
      );
    } else if (options.token !== undefined) {
      const certs = await certificates();
      const server = startTokenServer(options.token, certs, tokenRequests, refreshTokens);
      tokenServer = server.server;
      sections.push(
        "auth:",
        "  token:",
        `    realm: ${JSON.stringify(server.realm)}`,
        `    service: ${SERVICE}`,
        `    issuer: ${ISSUER}`,
        `    rootcertbundle: ${JSON.stringify(certs.signingCertPath)}`,
      );
    }
    // Chosen once this process's own servers (the token server, a proxy in front of it) hold
    // their ports, so none of them can take the registry's in between.
    const port = freePort();
    const host = `127.0.0.1:${port}`;
    const configPath = `${dir}/config.yml`;
    await Deno.writeTextFile(
      configPath,
      distributionConfig({
        root: `${dir}/data`,
        host,
        secret: "integration-test-secret",
        deleteEnabled: true,
        httpLines,
        sections,
      }),
    );
    const url = `${options.tls === true ? "https" : "http"}://${host}`;
    const launch = async (): Promise<void> => {
      if (child !== undefined) throw new Error("the test registry is already running");
      child = spawnRegistry(configPath);
      stderr = new Response(child.stderr).text();
      await waitUntilUp(url, child, stderr, client);
    };
    await launch();
    const registry: TestRegistry = {
      url,
      host,
      tokenRequests,
      refreshTokens,
      storage: `${dir}/data`,
      kill: () => end("SIGKILL"),
      restart: launch,
      stop,
    };
    if (caCert !== undefined) registry.caCert = caCert;
    return registry;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Starts `docker-registry serve` with a config file, stderr piped. */
function spawnRegistry(configPath: string): Deno.ChildProcess {
  try {
    return new Deno.Command("docker-registry", {
      args: ["serve", configPath],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "docker-registry is not installed; install it with: apt-get install -y docker-registry",
      );
    }
    throw error;
  }
}

async function waitUntilUp(
  url: string,
  child: Deno.ChildProcess,
  stderr: Promise<string>,
  client: Deno.HttpClient | undefined,
): Promise<void> {
  let exited = false;
  child.status.then(() => {
    exited = true;
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`docker-registry exited at start: ${await stderr}`);
    try {
      const init: RequestInit & { client?: Deno.HttpClient } = {};
      if (client !== undefined) init.client = client;
      const response = await fetch(`${url}/v2/`, init);
      await response.body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`docker-registry did not answer at ${url} within 15 s`);
}

async function htpasswdFile(users: Users): Promise<string> {
  let text = "";
  for (const [user, password] of Object.entries(users)) {
    text += (await run("htpasswd", ["-Bbn", user, password])).trim() + "\n";
  }
  return text;
}

interface Certificates {
  caCert: string;
  serverCertPath: string;
  serverKeyPath: string;
  signingCertPath: string;
  signingCertDer: string;
  signingKey: string;
}

let certificatesOnce: Promise<Certificates> | undefined;

/** Test certificates, made once per process with openssl (kept in a temp dir until exit). */
function certificates(): Promise<Certificates> {
  certificatesOnce ??= makeCertificates();
  return certificatesOnce;
}

/** A test CA and a certificate it signed for 127.0.0.1 and localhost, for TLS test servers. */
export interface TlsFixture {
  /** The CA certificate, PEM. */
  caCert: string;
  /** The server certificate, PEM. */
  cert: string;
  /** The server key, PEM. */
  key: string;
}

/** The TLS certificates the test registry uses, for in-process HTTPS servers. */
export async function tlsFixture(): Promise<TlsFixture> {
  const certs = await certificates();
  return {
    caCert: certs.caCert,
    cert: await Deno.readTextFile(certs.serverCertPath),
    key: await Deno.readTextFile(certs.serverKeyPath),
  };
}

async function makeCertificates(): Promise<Certificates> {
  const dir = await tempDirUntilExit("test-registry-certs-");
  const path = (name: string): string => `${dir}/${name}`;
  await run("openssl", [
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"],
    ...["-keyout", path("ca.key"), "-out", path("ca.pem"), "-subj", "/CN=Test Registry CA"],
    ...["-addext", "basicConstraints=critical,CA:TRUE"],
    ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  ]);
  await run("openssl", [
    ...["req", "-newkey", "rsa:2048", "-nodes", "-keyout", path("server.key")],
    ...["-out", path("server.csr"), "-subj", "/CN=127.0.0.1"],
  ]);
  await Deno.writeTextFile(
    path("server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
  );
  await run("openssl", [
    ...["x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem")],
    ...["-CAkey", path("ca.key"), "-CAcreateserial", "-days", "2"],
    ...["-out", path("server.pem"), "-extfile", path("server.ext")],
  ]);
  await run("openssl", [
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"],
    ...["-keyout", path("signing.key"), "-out", path("signing.pem"), "-subj", "/CN=" + ISSUER],
  ]);
  const signingPem = await Deno.readTextFile(path("signing.pem"));
  return {
    caCert: await Deno.readTextFile(path("ca.pem")),
    serverCertPath: path("server.pem"),
    serverKeyPath: path("server.key"),
    signingCertPath: path("signing.pem"),
    signingCertDer: signingPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""),
    signingKey: await Deno.readTextFile(path("signing.key")),
  };
}

interface TokenServer {
  server: Deno.HttpServer;
  realm: string;
}

/** A Docker-style token server; its realm carries its own query, which it insists on. */
function startTokenServer(
  options: TokenAuthOptions,
  certs: Certificates,
  log: TokenRequestLog[],
  refreshTokens: Map<string, string>,
): TokenServer {
  const lifetime = options.lifetimeSeconds ?? 300;
  const advertised = options.advertisedSeconds ?? lifetime;
  const handler = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (url.pathname !== "/token" || url.searchParams.get("tenant") !== "test") {
      return new Response("unknown realm", { status: 400 });
    }
    let user: string | undefined;
    let scopes: string[];
    let grantType: string | undefined;
    let issueRefresh = false;
    const answer = (status: number, body: unknown): Response => {
      const entry: TokenRequestLog = { method: request.method, scopes, status };
      if (grantType !== undefined) entry.grantType = grantType;
      if (user !== undefined) entry.user = user;
      log.push(entry);
      return Response.json(body, { status });
    };
    if (request.method === "POST") {
      const form = new URLSearchParams(await request.text());
      grantType = form.get("grant_type") ?? undefined;
      scopes = (form.get("scope") ?? "").split(" ").filter((scope) => scope !== "");
      if (options.allowPost === false) return answer(404, { error: "not found" });
      if (form.get("client_id") === null) return answer(400, { error: "invalid_request" });
      if (grantType === "password") {
        const name = form.get("username") ?? "";
        if (options.users[name] === undefined || options.users[name] !== form.get("password")) {
          return answer(401, { error: "invalid_grant" });
        }
        user = name;
        issueRefresh = true;
      } else if (grantType === "refresh_token") {
        const token = form.get("refresh_token") ?? "";
        user = [...refreshTokens].find(([, issued]) => issued === token)?.[0];
        if (user === undefined) return answer(401, { error: "invalid_grant" });
      } else {
        return answer(400, { error: "unsupported_grant_type" });
      }
    } else {
      scopes = url.searchParams.getAll("scope");
      const basic = /^Basic (.+)$/i.exec(request.headers.get("authorization") ?? "");
      if (basic !== null) {
        const decoded = new TextDecoder().decode(
          Uint8Array.from(atob(basic[1] ?? ""), (char) => char.charCodeAt(0)),
        );
        const colon = decoded.indexOf(":");
        const name = decoded.slice(0, colon);
        const secret = decoded.slice(colon + 1);
        const known = options.users[name] === secret || refreshTokens.get(name) === secret;
        if (!known) return answer(401, { details: "incorrect username or password" });
        user = name;
      }
    }
    const token = signToken(certs, user, scopes, lifetime, url.searchParams.get("service"));
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: advertised,
      issued_at: new Date().toISOString(),
    };
    if (issueRefresh && user !== undefined) {
      const refresh = `refresh-${crypto.randomUUID()}`;
      refreshTokens.set(user, refresh);
      body.refresh_token = refresh;
    }
    return answer(200, body);
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const own = `127.0.0.1:${server.addr.port}`;
  const host = options.realmHost?.(own) ?? own;
  return { server, realm: `http://${host}/token?tenant=test` };
}

function signToken(
  certs: Certificates,
  user: string | undefined,
  scopes: string[],
  lifetimeSeconds: number,
  service: string | null,
): string {
  const now = Math.floor(Date.now() / 1000);
  const access = scopes.flatMap((scope) => {
    const parts = scope.split(":");
    if (parts.length < 3 || parts[0] !== "repository") return [];
    const requested = (parts[parts.length - 1] ?? "").split(",");
    const granted = requested.filter((action) =>
      user !== undefined ? ["pull", "push", "delete"].includes(action) : false
    );
    return [{ type: "repository", name: parts.slice(1, -1).join(":"), actions: granted }];
  });
  const header = { alg: "RS256", typ: "JWT", x5c: [certs.signingCertDer] };
  const claims = {
    iss: ISSUER,
    sub: user ?? "",
    aud: service ?? SERVICE,
    iat: now,
    nbf: now - 1,
    exp: Math.ceil(Date.now() / 1000) + lifetimeSeconds - REGISTRY_LEEWAY_SECONDS,
    jti: crypto.randomUUID(),
    access,
  };
  const encode = (value: unknown): string =>
    base64url(new TextEncoder().encode(JSON.stringify(value)));
  const signingInput = `${encode(header)}.${encode(claims)}`;
  const signature = createSign("RSA-SHA256").update(signingInput).sign(certs.signingKey);
  return `${signingInput}.${base64url(signature)}`;
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function run(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`${command} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}
