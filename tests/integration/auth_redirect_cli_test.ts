/**
 * Redirects and upload locations on another origin, end to end: the real CLI (always `--verbose`,
 * every run's output scanned for secrets) pushes to a purpose-built front in front of real
 * Distribution with token auth. The front sends blob uploads to a second origin (a "storage"
 * host that forwards to Distribution with its own token) by a 307/308 redirect or by the upload
 * `Location`; that origin must never see the client's `Authorization`. The front also rewrites
 * the challenge (Basic and Bearer in one header, a relative realm with a query, a scope list with
 * spaces) and serves the token realm itself. Cookies the servers set must never come back.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startRegistry, type TestRegistry, tlsFixture } from "../helpers/registry.ts";
import {
  assertExit,
  assertPulled,
  credentialsOf,
  isolatedEnv,
  loggedRequests,
  pushVerbose,
  sampleArchive,
  secret,
} from "./auth_tls_support.ts";

const PASSWORD = credentialsOf("alice", "redirect-Pa55-alice");
const STORAGE_PASSWORD = credentialsOf("storage", "storage-service-Pa55");
const COOKIE = `session=${secret("cookie-value-1234")}; Path=/; HttpOnly`;

/** One request a server received. */
interface Seen {
  method: string;
  path: string;
  authorization: string | null;
  cookie: string | null;
}

/**
 * How the front hands blob uploads to the storage origin: by the upload `Location`, or by a
 * 307/308 redirect; `login-…`: the storage origin answers everything with a 401 challenge.
 */
type Mode = "location" | "redirect" | "login-location" | "login-redirect";

interface Splitter {
  /** `127.0.0.1:<port>` of the front (the registry the CLI is given). */
  front: string;
  /** Requests the front received. */
  frontSeen: Seen[];
  /** Requests the storage origin received. */
  storageSeen: Seen[];
  /** `host:port` of the token service behind the front. */
  tokenHost: string;
  close(): Promise<void>;
}

function record(list: Seen[], request: Request): void {
  const url = new URL(request.url);
  list.push({
    method: request.method,
    path: url.pathname,
    authorization: request.headers.get("authorization"),
    cookie: request.headers.get("cookie"),
  });
}

/**
 * Forwards `request` to `upstream`, with `authorization` (or none), rewriting `Location` and, when
 * `challenge` is given, `WWW-Authenticate`.
 */
async function forward(
  request: Request,
  upstream: string,
  authorization: string | null,
  relocate: (location: URL) => string,
  challenge?: (header: string) => string,
): Promise<Response> {
  const url = new URL(request.url);
  const headers = new Headers(request.headers);
  headers.delete("host");
  headers.delete("cookie");
  if (authorization === null) headers.delete("authorization");
  else headers.set("authorization", authorization);
  const init: RequestInit = { method: request.method, headers, redirect: "manual" };
  if (request.body !== null && request.method !== "GET" && request.method !== "HEAD") {
    init.body = request.body;
  }
  const answer = await fetch(`${upstream}${url.pathname}${url.search}`, init);
  const out = new Headers(answer.headers);
  const location = out.get("location");
  if (location !== null) out.set("location", relocate(new URL(location, upstream)));
  const authenticate = out.get("www-authenticate");
  if (authenticate !== null && challenge !== undefined) {
    out.set("www-authenticate", challenge(authenticate));
  }
  out.append("set-cookie", COOKIE);
  return new Response(answer.body, { status: answer.status, headers: out });
}

/** The registry's bearer challenge: the token realm and service. */
interface BearerChallenge {
  realm: URL;
  service: string;
}

async function registryChallenge(registry: TestRegistry): Promise<BearerChallenge> {
  const answer = await fetch(`${registry.url}/v2/`);
  await answer.body?.cancel();
  const header = answer.headers.get("www-authenticate") ?? "";
  return {
    realm: new URL(/realm="([^"]+)"/.exec(header)?.[1] ?? ""),
    service: /service="([^"]+)"/.exec(header)?.[1] ?? "",
  };
}

/**
 * The front's version of a challenge: Basic first, then Bearer with a relative realm that keeps
 * its query, and a scope list with spaces.
 */
function frontChallenge(bearer: BearerChallenge, original: string): string {
  const scopes = [/scope="([^"]*)"/.exec(original)?.[1], "repository:other/app:pull"]
    .filter((scope) => scope !== undefined).join(" ");
  return `Basic realm="front door", Bearer realm="${bearer.realm.pathname}${bearer.realm.search}",` +
    `service="${bearer.service}",scope="${scopes}"`;
}

/** A bearer token for `repository`, fetched by the storage host with its own account. */
async function storageToken(bearer: BearerChallenge, repository: string): Promise<string> {
  const url = new URL(bearer.realm);
  url.searchParams.set("service", bearer.service);
  url.searchParams.set("scope", `repository:${repository}:pull,push`);
  const response = await fetch(url, {
    headers: { authorization: `Basic ${btoa(`storage:${STORAGE_PASSWORD}`)}` },
  });
  const body = await response.json() as { token: string };
  return `Bearer ${body.token}`;
}

async function startSplitter(registry: TestRegistry, mode: Mode): Promise<Splitter> {
  const bearer = await registryChallenge(registry);
  const frontSeen: Seen[] = [];
  const storageSeen: Seen[] = [];
  const tokens = new Map<string, Promise<string>>();
  let frontOrigin = "";
  let storageOrigin = "";
  const on = (origin: () => string) => (location: URL): string =>
    `${origin()}${location.pathname}${location.search}`;
  const storage = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    record(storageSeen, request);
    if (mode.startsWith("login-")) {
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": `Bearer realm="${storageOrigin}/token",service="storage"` },
      });
    }
    const repository = /^\/v2\/(.+)\/(?:blobs|manifests)\//.exec(new URL(request.url).pathname)
      ?.[1] ?? "";
    let token = tokens.get(repository);
    if (token === undefined) {
      token = storageToken(bearer, repository);
      tokens.set(repository, token);
    }
    return token.then((value) => forward(request, registry.url, value, on(() => storageOrigin)));
  });
  const front = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    record(frontSeen, request);
    const url = new URL(request.url);
    if (url.pathname === bearer.realm.pathname) {
      return forward(
        request,
        bearer.realm.origin,
        request.headers.get("authorization"),
        on(() => frontOrigin),
      );
    }
    const startsUpload = request.method === "POST" && url.pathname.endsWith("/blobs/uploads/") &&
      !url.searchParams.has("mount");
    const putsManifest = request.method === "PUT" && url.pathname.includes("/manifests/");
    const redirects = mode === "redirect" || mode === "login-redirect";
    if (redirects && (startsUpload || putsManifest)) {
      return new Response(null, {
        status: startsUpload ? 307 : 308,
        headers: { location: `${storageOrigin}${url.pathname}${url.search}`, "set-cookie": COOKIE },
      });
    }
    const target = startsUpload ? () => storageOrigin : () => frontOrigin;
    const authorization = request.headers.get("authorization");
    return forward(
      request,
      registry.url,
      authorization,
      on(target),
      (header) => frontChallenge(bearer, header),
    );
  });
  frontOrigin = `http://127.0.0.1:${front.addr.port}`;
  storageOrigin = `http://127.0.0.1:${storage.addr.port}`;
  return {
    front: `127.0.0.1:${front.addr.port}`,
    frontSeen,
    storageSeen,
    tokenHost: bearer.realm.host,
    async close(): Promise<void> {
      await front.shutdown();
      await storage.shutdown();
    },
  };
}

function methods(seen: Seen[]): string[] {
  return [...new Set(seen.map((entry) => entry.method))].sort();
}

Deno.test("uploads on another origin (Location or 307/308) get no Authorization; relative realm; no cookies", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({
    token: { users: { alice: PASSWORD, storage: STORAGE_PASSWORD } },
  });
  const isolated = await isolatedEnv();
  try {
    for (const mode of ["location", "redirect"] as const) {
      const splitter = await startSplitter(registry, mode);
      try {
        const repository = `split/${mode}`;
        const run = await pushVerbose(
          ["-f", sample.path, "-r", `${splitter.front}/${repository}:v1`, "-u", "alice"],
          { isolated, env: { DOCKER_PUSHER_PASSWORD: PASSWORD } },
        );
        await assertPulled(run, `${registry.host}/${repository}:v1`, sample, `alice:${PASSWORD}`);
        // The blobs are small: each goes up in its closing PUT, with no PATCH.
        assert.deepEqual(
          methods(splitter.storageSeen),
          mode === "redirect" ? ["POST", "PUT"] : ["PUT"],
          `${mode}: the uploads went to the storage origin`,
        );
        const uploads = splitter.storageSeen.filter((seen) =>
          seen.method === "PUT" && seen.path.includes("/blobs/uploads/")
        ).length;
        assert.equal(uploads, 3, `${mode}: config and two layers`);
        for (const seen of splitter.storageSeen) {
          assert.equal(seen.authorization, null, `${mode}: ${seen.method} ${seen.path} had auth`);
        }
        assert.ok(
          splitter.frontSeen.some((seen) =>
            seen.authorization?.startsWith("Bearer ") === true
          ),
          `${mode}: the front got the token`,
        );
        for (const seen of [...splitter.frontSeen, ...splitter.storageSeen]) {
          assert.equal(seen.cookie, null, `${mode}: a cookie came back on ${seen.method}`);
        }
        const logged = loggedRequests(run);
        assert.ok(
          logged.some((line) => line.startsWith(`GET http://${splitter.front}/token?tenant=…&`)),
          `${mode}: the relative realm (with its query) was resolved against the front`,
        );
        assert.ok(logged.every((line) => !line.includes(splitter.tokenHost)), "never direct");
        if (mode === "redirect") {
          assert.ok(logged.some((line) => /^POST \S+ → 307 /.test(line)));
          assert.ok(logged.some((line) => /^PUT \S+\/manifests\/v1 → 308 /.test(line)));
          assert.ok(splitter.storageSeen.some((seen) => seen.path.endsWith("/manifests/v1")));
        }
      } finally {
        await splitter.close();
      }
    }
  } finally {
    await isolated.remove();
    await registry.stop();
  }
});

Deno.test("an upload origin that asks for a login gets none, not even after a redirect: exit 4", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({ token: { users: { alice: PASSWORD } } });
  const isolated = await isolatedEnv();
  try {
    for (const mode of ["login-location", "login-redirect"] as const) {
      const splitter = await startSplitter(registry, mode);
      try {
        const run = await pushVerbose(
          ["-f", sample.path, "-r", `${splitter.front}/split/login:v1`, "-u", "alice"],
          { isolated, env: { DOCKER_PUSHER_PASSWORD: PASSWORD } },
        );
        assertExit(run, 4);
        const what = mode === "login-location"
          ? "completing the upload of sha256:[0-9a-f]{64} to"
          : "starting an upload to";
        assert.match(
          run.stderr,
          new RegExp(
            `error: ${what} 127\\.0\\.0\\.1:\\d+/split/login: http://127\\.0\\.0\\.1:\\d+ ` +
              "asked for credentials, which are only sent to the registry itself",
          ),
        );
        const first = mode === "login-location" ? "PUT" : "POST";
        const attempts = splitter.storageSeen.filter((seen) => seen.method === first);
        // The config and both layers start together; each meets the login once.
        assert.ok(attempts.length >= 1 && attempts.length <= 3, `${mode}: blobs in flight, once`);
        assert.ok(
          splitter.storageSeen.every((seen) => seen.method === first || seen.method === "DELETE"),
          `${mode}: no token request to the storage's realm, nothing but cancellations`,
        );
        assert.ok(splitter.storageSeen.every((seen) => seen.authorization === null));
      } finally {
        await splitter.close();
      }
    }
  } finally {
    await isolated.remove();
    await registry.stop();
  }
});

Deno.test("redirects: a loop stops after 10 hops (exit 6); https → http is refused", async () => {
  const sample = await sampleArchive();
  const isolated = await isolatedEnv();
  let loopHits = 0;
  const loop = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    loopHits++;
    return Response.redirect(new URL(`/v2/?hop=${loopHits}`, request.url), 302);
  });
  let plainHits = 0;
  const plain = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    plainHits++;
    return new Response("{}");
  });
  const tls = await tlsFixture();
  const secure = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key, onListen() {} },
    () => Response.redirect(`http://127.0.0.1:${plain.addr.port}/v2/`, 302),
  );
  const caFile = join(isolated.dir, "ca.pem");
  await Deno.writeTextFile(caFile, tls.caCert);
  try {
    const looped = await pushVerbose(
      ["-f", sample.path, "-r", `127.0.0.1:${loop.addr.port}/loop/app:v1`],
      { isolated },
    );
    assertExit(looped, 6);
    assert.match(
      looped.stderr,
      /error: GET http:\/\/127\.0\.0\.1:\d+\/v2\/ was redirected more than 10 times/,
    );
    // The registry check and the requests sent beside it (tag and config lookups, uploads of
    // the config and two layers: six) each stop after their first request and 10 redirects.
    assert.ok(loopHits >= 11 && loopHits <= 6 * 11, `${loopHits} requests to the loop`);

    const downgraded = await pushVerbose(
      ["-f", sample.path, "-r", `https://127.0.0.1:${secure.addr.port}/down/app:v1`],
      { isolated, env: { DOCKER_PUSHER_CA_CERT: caFile } },
    );
    assertExit(downgraded, 6);
    assert.match(
      downgraded.stderr,
      /error: refused a redirect from https:\/\/127\.0\.0\.1:\d+\/v2\/ to http:\/\/127\.0\.0\.1:\d+\/v2\/: it leaves HTTPS/,
    );
    assert.equal(plainHits, 0);
  } finally {
    await isolated.remove();
    await loop.shutdown();
    await plain.shutdown();
    await secure.shutdown();
  }
});
