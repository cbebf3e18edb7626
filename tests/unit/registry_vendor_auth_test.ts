/**
 * What no local registry can play: the challenge and token-answer shapes of Docker Hub, GitLab,
 * Harbor, ECR, Google Artifact Registry, ACR and Quay, replayed by small in-process servers;
 * credentials never sent to another origin; NO_PROXY CIDR blocks; CA certificates from `certs.d`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { certsDirectories, loadCaCertificates } from "../../lib/registry/ca_certs.ts";
import { RegistryClient } from "../../lib/registry/client.ts";
import { basicAuthorization, type Credentials } from "../../lib/credentials/credentials.ts";
import { RegistryError } from "../../lib/registry/errors.ts";
import { proxyFor } from "../../lib/registry/proxy.ts";
import { tlsFixture } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

interface Seen {
  method: string;
  url: URL;
  headers: Headers;
  body: string;
}

interface Server {
  origin: string;
  seen: Seen[];
  close(): Promise<void>;
}

function serve(route: (seen: Seen) => Response): Server {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const entry: Seen = {
      method: request.method,
      url: new URL(request.url),
      headers: new Headers(request.headers),
      body: await request.text(),
    };
    seen.push(entry);
    return route(entry);
  });
  return { origin: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

/** One registry's auth behaviour, as observed on the real service. */
interface Vendor {
  name: string;
  credentials: Credentials;
  /** The `WWW-Authenticate` value; `{origin}` stands for the test server. */
  challenge: string;
  /** Checks a token request the way the vendor does; returns the answer body or undefined (401). */
  grant?: (seen: Seen) => Record<string, unknown> | undefined;
  /** The `Authorization` the registry expects on API calls. */
  expected: string;
}

const ACR_USER = "00000000-0000-0000-0000-000000000000";
const GOOGLE_KEY = '{\n  "type": "service_account",\n  "private_key": "-----BEGIN…"\n}';

function basicOf(seen: Seen, username: string, password: string): boolean {
  return seen.headers.get("authorization") === basicAuthorization({ username, password });
}

const VENDORS: Vendor[] = [
  {
    name: "Docker Hub",
    credentials: { username: "hubuser", password: "dckr_pat_abc" },
    challenge: 'Bearer realm="{origin}/token",service="registry.docker.io"',
    grant: (seen) =>
      basicOf(seen, "hubuser", "dckr_pat_abc") &&
        seen.url.searchParams.get("service") === "registry.docker.io" &&
        seen.url.searchParams.getAll("scope").includes("repository:hubuser/app:pull,push")
        ? { token: "hub-token", access_token: "hub-token", expires_in: 300, issued_at: now() }
        : undefined,
    expected: "Bearer hub-token",
  },
  {
    name: "GitLab",
    credentials: { username: "gitlab-ci-token", password: "glcbt-64-abc" },
    challenge: 'Bearer realm="{origin}/jwt/auth",service="container_registry"',
    grant: (seen) =>
      seen.url.pathname === "/jwt/auth" && basicOf(seen, "gitlab-ci-token", "glcbt-64-abc")
        ? { token: "gitlab-jwt" }
        : undefined,
    expected: "Bearer gitlab-jwt",
  },
  {
    name: "Harbor robot account",
    credentials: { username: "robot$team+ci", password: "Robot/Secret+1=" },
    challenge: 'Bearer realm="{origin}/service/token",service="harbor-registry"',
    grant: (seen) =>
      basicOf(seen, "robot$team+ci", "Robot/Secret+1=") &&
        seen.url.search.includes("account=robot%24team%2Bci")
        ? { token: "harbor-token", expires_in: 1800, issued_at: now() }
        : undefined,
    expected: "Bearer harbor-token",
  },
  {
    name: "ECR (Basic at the registry)",
    credentials: { username: "AWS", password: "eyJwYXlsb2FkIjoiZWNy" },
    challenge: 'Basic realm="{origin}/",service="ecr.amazonaws.com"',
    expected: basicAuthorization({ username: "AWS", password: "eyJwYXlsb2FkIjoiZWNy" }) ?? "",
  },
  {
    name: "Google Artifact Registry, JSON key",
    credentials: { username: "_json_key", password: GOOGLE_KEY },
    challenge: 'Bearer realm="{origin}/v2/token",service="europe-docker.pkg.dev"',
    grant: (seen) =>
      basicOf(seen, "_json_key", GOOGLE_KEY) ? { token: "gar-token", expires_in: 3600 } : undefined,
    expected: "Bearer gar-token",
  },
  {
    name: "Google, oauth2accesstoken",
    credentials: { username: "oauth2accesstoken", password: "ya29.a0Af" },
    challenge: 'Bearer realm="{origin}/v2/token",service="gcr.io"',
    grant: (seen) =>
      basicOf(seen, "oauth2accesstoken", "ya29.a0Af") ? { token: "gcr-token" } : undefined,
    expected: "Bearer gcr-token",
  },
  {
    name: "ACR identity token (POST refresh_token, access_token only)",
    credentials: { identityToken: "acr-refresh", username: ACR_USER },
    challenge: 'Bearer realm="{origin}/oauth2/token",service="demo.azurecr.io"',
    grant: (seen) => {
      const form = new URLSearchParams(seen.body);
      return seen.method === "POST" && form.get("grant_type") === "refresh_token" &&
          form.get("refresh_token") === "acr-refresh" &&
          form.get("service") === "demo.azurecr.io" &&
          form.get("scope") === "repository:hubuser/app:pull,push"
        ? { access_token: "acr-access" }
        : undefined;
    },
    expected: "Bearer acr-access",
  },
  {
    name: "ACR admin user / token (GET with Basic)",
    credentials: { username: ACR_USER, password: "acr-refresh" },
    challenge: 'Bearer realm="{origin}/oauth2/token",service="demo.azurecr.io"',
    grant: (seen) =>
      seen.method === "GET" && basicOf(seen, ACR_USER, "acr-refresh")
        ? { access_token: "acr-basic" }
        : undefined,
    expected: "Bearer acr-basic",
  },
  {
    name: "Quay robot (scope in the challenge, token only)",
    credentials: { username: "org+builder", password: "QUAYROBOT" },
    challenge:
      'Bearer realm="{origin}/v2/auth",service="quay.io",scope="repository:hubuser/app:pull"',
    grant: (seen) => basicOf(seen, "org+builder", "QUAYROBOT") ? { token: "quay" } : undefined,
    expected: "Bearer quay",
  },
];

/** Registry API calls (the token realms live elsewhere, some under `/v2/` too). */
function isApi(seen: Seen): boolean {
  return seen.url.pathname === "/v2/" || seen.url.pathname.startsWith("/v2/hubuser/");
}

function now(): string {
  return new Date().toISOString();
}

for (const vendor of VENDORS) {
  Deno.test(`${vendor.name}: challenge, token answer, authorised API calls`, async () => {
    let origin = "";
    const server = serve((seen) => {
      if (isApi(seen)) {
        if (seen.headers.get("authorization") === vendor.expected) {
          return new Response(null, {
            status: seen.method === "POST" ? 202 : 200,
            headers: { location: "/v2/hubuser/app/blobs/uploads/1", "set-cookie": "sid=s; Path=/" },
          });
        }
        return new Response('{"errors":[{"code":"UNAUTHORIZED"}]}', {
          status: 401,
          headers: {
            "www-authenticate": vendor.challenge.replace("{origin}", origin),
            "set-cookie": "_gorilla_csrf=c; Path=/",
          },
        });
      }
      const body = vendor.grant?.(seen);
      return body === undefined ? new Response("denied", { status: 401 }) : Response.json(body);
    });
    origin = server.origin;
    const client = new RegistryClient({
      reference: {
        registry: "vendor.example",
        apiBase: new URL(origin),
        repository: "hubuser/app",
      },
      credentials: vendor.credentials,
    });
    try {
      await client.ping();
      const session = await client.startUpload();
      assert.equal(session.location.href, `${origin}/v2/hubuser/app/blobs/uploads/1`);
      const api = server.seen.filter(isApi);
      assert.deepEqual(
        api.map((seen) => seen.headers.get("authorization") === vendor.expected),
        [false, true, true],
        "challenged once, then authorised",
      );
      assert.ok(server.seen.every((seen) => !seen.headers.has("cookie")), "no cookie came back");
      const tokenRequests = server.seen.length - api.length;
      assert.equal(tokenRequests, vendor.grant === undefined ? 0 : 1);
    } finally {
      client.close();
      await server.close();
    }
  });
}

Deno.test("credentials never go to another origin; a 401 from there is an auth error, not a retry", async () => {
  const user: Credentials = { username: "bob", password: "bobs-Secret" };
  const storage = serve((seen) =>
    seen.method === "PATCH"
      ? new Response(null, { status: 202, headers: { location: seen.url.href } })
      : new Response(null, { status: 401, headers: { "www-authenticate": 'Basic realm="s"' } })
  );
  const registry = serve((seen) =>
    seen.headers.get("authorization") === basicAuthorization(user)
      ? new Response(null, {
        status: 202,
        headers: { location: `${storage.origin}/upload/1?sig=abc` },
      })
      : new Response(null, { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } })
  );
  const client = new RegistryClient({
    reference: { registry: "r.example", apiBase: new URL(registry.origin), repository: "a" },
    credentials: user,
  });
  try {
    const session = await client.startUpload();
    assert.equal(session.location.origin, storage.origin);
    const next = await client.patchChunk(session, new Uint8Array([1, 2, 3]));
    assert.equal(next.offset, 3);
    await assert.rejects(client.completeUpload(next, "sha256:" + "0".repeat(64)), (error) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.kind, "auth");
      assert.match(error.message, /asked for credentials, which are only sent to the registry/);
      assert.ok(!error.message.includes("bobs-Secret"));
      return true;
    });
    assert.deepEqual(storage.seen.map((seen) => seen.method), ["PATCH", "PUT"], "no retry");
    assert.ok(storage.seen.every((seen) => !seen.headers.has("authorization")));
    assert.ok(registry.seen.some((seen) => seen.headers.has("authorization")));
  } finally {
    client.close();
    await storage.close();
    await registry.close();
  }
});

Deno.test("NO_PROXY takes IPv4 CIDR blocks on the node:https path", () => {
  const env = (noProxy: string) => (name: string): string | undefined =>
    name === "HTTPS_PROXY" ? "http://proxy:3128" : name === "NO_PROXY" ? noProxy : undefined;
  const target = new URL("https://10.1.2.3:5000/v2/");
  for (const bypass of ["10.0.0.0/8", "10.1.2.3/32", "0.0.0.0/0", "192.168.0.0/16, 10.1.0.0/16"]) {
    assert.equal(proxyFor(target, env(bypass)), undefined, bypass);
  }
  for (const proxied of ["11.0.0.0/8", "10.1.2.4/32", "10.0.0.0/33", "10.0.0/8", "fe80::/10"]) {
    assert.ok(proxyFor(target, env(proxied)) !== undefined, proxied);
  }
  assert.ok(proxyFor(new URL("https://reg.example/v2/"), env("10.0.0.0/8")) !== undefined);
});

Deno.test("certs.d: $XDG_CONFIG_HOME (or ~/.config) first, then /etc/containers, then /etc/docker", () => {
  assert.deepEqual(certsDirectories((name) => ({ XDG_CONFIG_HOME: "/x", HOME: "/h" })[name]), [
    "/x/containers/certs.d",
    "/etc/containers/certs.d",
    "/etc/docker/certs.d",
  ]);
  assert.deepEqual(certsDirectories((name) => ({ HOME: "/h" })[name]), [
    "/h/.config/containers/certs.d",
    "/etc/containers/certs.d",
    "/etc/docker/certs.d",
  ]);
  assert.deepEqual(certsDirectories(() => undefined), [
    "/etc/containers/certs.d",
    "/etc/docker/certs.d",
  ]);
});

Deno.test("CA certificates: --ca-cert files, then every *.crt of the registry's certs.d directory", async () => {
  const { caCert } = await tlsFixture();
  await using temp = await tempDir("certs-d-");
  const dir = temp.path;
  const env = (name: string): string | undefined => name === "XDG_CONFIG_HOME" ? dir : undefined;
  const host = join(dir, "containers", "certs.d", "reg.test:5000");
  await Deno.mkdir(host, { recursive: true });
  await Deno.writeTextFile(join(host, "b.crt"), caCert);
  await Deno.writeTextFile(join(host, "a.crt"), caCert);
  await Deno.writeTextFile(join(host, "client.cert"), "ignored");
  await Deno.writeTextFile(join(host, "client.key"), "ignored");
  const flagFile = join(dir, "flag.pem");
  await Deno.writeTextFile(flagFile, caCert);
  const found = await loadCaCertificates([flagFile], ["reg.test:5000", "reg.test:5000"], env);
  assert.deepEqual(found.sources, [flagFile, join(host, "a.crt"), join(host, "b.crt")]);
  assert.equal(found.pems.length, 3);
  const other = await loadCaCertificates([], ["reg.test"], env);
  assert.deepEqual(other.sources, [], "the port is part of the directory name");

  await Deno.writeTextFile(join(host, "c.crt"), "not a certificate");
  await assert.rejects(loadCaCertificates([], ["reg.test:5000"], env), (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.match(error.message, /c\.crt \(certs\.d\) holds no PEM certificate/);
    return true;
  });
  await assert.rejects(
    loadCaCertificates([join(dir, "missing.pem")], [], env),
    /cannot read CA certificate .*missing\.pem \(--ca-cert\)/,
  );
});
