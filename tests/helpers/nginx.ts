/**
 * A real nginx (Debian's `nginx-light`) in front of a registry, the way Harbor, GitLab and most
 * self-hosted registries run: a reverse proxy with a request-body limit (`client_max_body_size`)
 * that streams request bodies through (`proxy_request_buffering off`) and passes the client's
 * `Host` on, so the registry's upload `Location`s point back at nginx. Given a token server too,
 * nginx also serves `/token` from it, as Harbor (`/service/token`), GHCR and Quay serve tokens on
 * the registry's own host.
 *
 * nginx runs as a child process in the foreground (`daemon off`) with a generated config; its pid
 * file, logs and temporary paths all live in a temporary directory removed on {@link
 * NginxProxy.stop}. The access log records each request's method, status, path and client
 * connection, so a test can count the answers nginx gave (its own 413s included, which never
 * reach the registry) and see which requests shared a connection.
 *
 * ```ts
 * await using proxy = await startNginx({ upstream: registry.host, maxBodySize: "10m" });
 * // push to `${proxy.host}/app:1` …
 * const refused = (await proxy.requests()).filter((entry) => entry.status === 413).length;
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { freePort } from "../../scripts/distribution_config.ts";
import { tempDir } from "./temp_dir.ts";

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /** The registry nginx forwards to, as `host:port`. */
  upstream: string;
  /** `client_max_body_size`, in nginx's syntax: `1m`, `10m`, `512k`. */
  maxBodySize: string;
  /** The port to listen on (default: a free one); lets a realm name nginx before it starts. */
  port?: number;
  /** A token server, as `host:port`, that nginx serves `/token` from (default: none). */
  tokenUpstream?: string;
}

/** One line of the access log. */
export interface NginxRequest {
  /** HTTP method. */
  method: string;
  /** Status nginx answered with. */
  status: number;
  /** Request path and query. */
  path: string;
  /** nginx's serial number of the client connection the request came on. */
  connection: number;
  /** The request's place on its connection: 1 for the connection's first. */
  connectionRequests: number;
}

/** A running nginx. */
export interface NginxProxy extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `127.0.0.1:<port>`: the registry host to push to. */
  readonly host: string;
  /** The requests nginx answered so far, oldest first. */
  requests(): Promise<NginxRequest[]>;
  /** Stops nginx and removes its directory. */
  stop(): Promise<void>;
}

/** The access log format: one request per line, fields separated by spaces. */
const LOG_FORMAT = "'$request_method $status $request_uri $connection $connection_requests'";

/** The nginx configuration for a proxy in `dir` on `port` with `options`. */
function nginxConfig(dir: string, port: number, options: NginxOptions): string {
  const path = (name: string): string => JSON.stringify(join(dir, name));
  return [
    // As root, the workers would otherwise run as nobody and could not use the private dir.
    ...(Deno.uid() === 0 ? ["user root;"] : []),
    "worker_processes 1;",
    `pid ${path("nginx.pid")};`,
    `error_log ${path("error.log")} warn;`,
    "events { worker_connections 256; }",
    "http {",
    `  client_body_temp_path ${path("client_body")};`,
    `  proxy_temp_path ${path("proxy")};`,
    `  fastcgi_temp_path ${path("fastcgi")};`,
    `  uwsgi_temp_path ${path("uwsgi")};`,
    `  scgi_temp_path ${path("scgi")};`,
    `  log_format requests ${LOG_FORMAT};`,
    `  access_log ${path("access.log")} requests;`,
    "  server {",
    `    listen 127.0.0.1:${port};`,
    `    client_max_body_size ${options.maxBodySize};`,
    "    chunked_transfer_encoding on;",
    "    location /v2/ {",
    `      proxy_pass http://${options.upstream};`,
    "      proxy_set_header Host $http_host;",
    "      proxy_set_header X-Forwarded-Proto $scheme;",
    "      proxy_http_version 1.1;",
    "      proxy_request_buffering off;",
    "      proxy_buffering off;",
    "      proxy_read_timeout 900s;",
    "    }",
    ...(options.tokenUpstream === undefined ? [] : [
      "    location /token {",
      `      proxy_pass http://${options.tokenUpstream};`,
      "      proxy_set_header Host $http_host;",
      "    }",
    ]),
    "  }",
    "}",
  ].join("\n") + "\n";
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
async function listening(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** Parses the access log written with {@link LOG_FORMAT}. */
function parseAccessLog(text: string): NginxRequest[] {
  return text.split("\n").filter((line) => line !== "").map((line) => {
    const [method = "", status = "", path = "", connection = "", requests = ""] = line.split(" ");
    return {
      method,
      status: Number(status),
      path,
      connection: Number(connection),
      connectionRequests: Number(requests),
    };
  });
}

/**
 * Starts nginx in front of `options.upstream` (and `options.tokenUpstream`); stop it with
 * `stop()` or `await using`.
 */
export async function startNginx(options: NginxOptions): Promise<NginxProxy> {
  const temp = await tempDir("test-nginx-");
  const dir = temp.path;
  const port = options.port ?? freePort();
  const configPath = join(dir, "nginx.conf");
  await Deno.writeTextFile(configPath, nginxConfig(dir, port, options));
  const child = new Deno.Command("nginx", {
    args: ["-p", dir, "-c", configPath, "-g", "daemon off;"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((result) => {
    exited = true;
    return result;
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // SIGQUIT: nginx finishes open requests and exits with its workers.
    if (!exited) child.kill("SIGQUIT");
    await status;
    await stderr;
    await temp.remove();
  };
  const deadline = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not start on port ${port}: ${await stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const host = `127.0.0.1:${port}`;
  return {
    url: `http://${host}`,
    host,
    requests: async () => parseAccessLog(await Deno.readTextFile(join(dir, "access.log"))),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
