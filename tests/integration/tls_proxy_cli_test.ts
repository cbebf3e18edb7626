/**
 * TLS and proxies end to end: the real CLI (always `--verbose`, every run's output scanned for
 * secrets) against real Distribution serving HTTPS with a certificate from a private test CA, and
 * through a CONNECT/forward proxy on loopback that counts what it carried.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import {
  assertExit,
  assertLanded,
  assertPulled,
  countLines,
  credentialsOf,
  isolatedEnv,
  loggedRequests,
  pushVerbose,
  sampleArchive,
  startTestProxy,
} from "./auth_tls_support.ts";

const PASSWORD = credentialsOf("alice", "tls-Secret-4-alice");
const CREDS = `alice:${PASSWORD}`;
const SKIP_WARNING = /^warning: TLS certificate verification is off \(--skip-tls\)/;

function login(registry: TestRegistry, repository: string): string[] {
  return ["-r", `https://${registry.host}/${repository}:v1`, "-u", "alice", "--password-stdin"];
}

Deno.test("HTTPS with a private CA: refused by default (exit 5); --skip-tls, --ca-cert, certs.d", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({ tls: true, htpasswd: { alice: PASSWORD } });
  const isolated = await isolatedEnv();
  const caFile = join(isolated.dir, "ca.pem");
  await Deno.writeTextFile(caFile, registry.caCert ?? "");
  const push = (repository: string, extra: string[], env: Record<string, string> = {}) =>
    pushVerbose(["-f", sample.path, ...login(registry, repository), ...extra], {
      isolated,
      stdin: PASSWORD,
      env,
    });
  try {
    const refused = await push("tls/default", []);
    assertExit(refused, 5);
    assert.ok(loggedRequests(refused).every((line) => / → failed: /.test(line)), "no answer");
    assert.match(
      refused.stderr,
      /^error: the TLS certificate of 127\.0\.0\.1:\d+ was rejected: .*UnknownIssuer.*--ca-cert <file>.*--skip-tls/m,
    );
    assert.match(refused.stderr, /GET https:\/\/127\.0\.0\.1:\d+\/v2\/ → failed: .*certificate/);

    const skipped = await push("tls/skip", ["--skip-tls"]);
    await assertPulled(skipped, `${registry.host}/tls/skip:v1`, sample, CREDS);
    assert.equal(countLines(skipped.stderr, SKIP_WARNING), 1, "said once");
    const fromEnv = await push("tls/skip-env", [], { DOCKER_PUSHER_SKIP_TLS: "true" });
    await assertLanded(fromEnv, `${registry.host}/tls/skip-env:v1`, CREDS);
    assert.equal(countLines(fromEnv.stderr, SKIP_WARNING), 1);

    const trusted = await push("tls/ca", ["--ca-cert", caFile]);
    await assertPulled(trusted, `${registry.host}/tls/ca:v1`, sample, CREDS);
    assert.equal(countLines(trusted.stderr, SKIP_WARNING), 0);
    assert.ok(loggedRequests(trusted).every((line) => line.includes(" https://")));

    const certsD = join(isolated.configHome, "containers", "certs.d", registry.host);
    await Deno.mkdir(certsD, { recursive: true });
    await Deno.writeTextFile(join(certsD, "ca.crt"), registry.caCert ?? "");
    const fromCertsD = await push("tls/certs-d", []);
    await assertLanded(fromCertsD, `${registry.host}/tls/certs-d:v1`, CREDS);
    assert.match(
      fromCertsD.stderr,
      /trusting the CA certificate .*certs\.d\/127\.0\.0\.1:\d+\/ca\.crt/,
    );
    await Deno.remove(certsD, { recursive: true });

    const notPem = join(isolated.dir, "not-a-cert.pem");
    await Deno.writeTextFile(notPem, "this is not a certificate\n");
    const badCa = await push("tls/bad-ca", ["--ca-cert", notPem]);
    assertExit(badCa, 2);
    assert.match(
      badCa.stderr,
      /error: CA certificate .*not-a-cert\.pem \(--ca-cert\) holds no PEM/,
    );
  } finally {
    await isolated.remove();
    await registry.stop();
  }
});

Deno.test("https:// never falls back to plain HTTP, with or without --skip-tls", async () => {
  const sample = await sampleArchive();
  let answered = 0;
  const plain = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    answered++;
    return new Response(null, {
      status: 401,
      headers: { "www-authenticate": 'Basic realm="plain"' },
    });
  });
  const host = `127.0.0.1:${plain.addr.port}`;
  const isolated = await isolatedEnv();
  try {
    for (const extra of [[], ["--skip-tls"]]) {
      const run = await pushVerbose(
        ["-f", sample.path, "-r", `https://${host}/plain/app:v1`, ...extra],
        { isolated },
      );
      assertExit(run, 5);
      assert.match(
        run.stderr,
        /error: TLS handshake with 127\.0\.0\.1:\d+ failed: .*use an http:\/\/ URL/,
      );
      assert.ok(loggedRequests(run).every((line) => !line.includes("http://")));
    }
    assert.equal(answered, 0, "nothing was sent over plain HTTP");
    const bare = await pushVerbose(["-f", sample.path, "-r", `${host}/plain/app:v1`], { isolated });
    assertExit(bare, 4);
    assert.ok(answered > 0, "a bare loopback reference is spoken to over plain HTTP");
    assert.match(bare.stderr, /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/ → 401 /m);
  } finally {
    await isolated.remove();
    await plain.shutdown();
  }
});

Deno.test("HTTP_PROXY forwards every plain-HTTP request, the token service's too; NO_PROXY bypasses", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({ token: { users: { alice: PASSWORD } } });
  const proxy = startTestProxy();
  const isolated = await isolatedEnv();
  try {
    const target = `${registry.host}/proxied/app:v1`;
    const run = await pushVerbose(
      ["-f", sample.path, "-r", target, "-u", "alice", "--password-stdin"],
      { isolated, stdin: PASSWORD, env: { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url } },
    );
    await assertPulled(run, target, sample, CREDS);
    const logged = loggedRequests(run);
    assert.equal(proxy.forwarded.length, logged.length, "each exchange went through the proxy");
    assert.ok(proxy.forwarded.some((line) => /^GET http:\/\/127\.0\.0\.1:\d+\/token$/.test(line)));
    assert.ok(
      proxy.forwarded.some((line) =>
        line.startsWith(`PUT http://${registry.host}/v2/proxied/app/blobs/uploads/`)
      ),
      "the uploads went through the proxy",
    );
    assert.equal(proxy.tunnels.length, 0);

    const direct = await pushVerbose(
      [
        "-f",
        sample.path,
        "-r",
        `${registry.host}/direct/app:v1`,
        "-u",
        "alice",
        "--password-stdin",
      ],
      {
        isolated,
        stdin: PASSWORD,
        env: { http_proxy: proxy.url, NO_PROXY: "localhost,127.0.0.1" },
      },
    );
    await assertLanded(direct, `${registry.host}/direct/app:v1`, CREDS);
    assert.equal(proxy.forwarded.length, logged.length, "NO_PROXY: nothing more went through");
  } finally {
    await isolated.remove();
    await proxy.close();
    await registry.stop();
  }
});

Deno.test("HTTPS_PROXY tunnels with CONNECT on both paths: fetch (--ca-cert) and node:https (--skip-tls)", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({ tls: true, htpasswd: { alice: PASSWORD } });
  const proxy = startTestProxy();
  const isolated = await isolatedEnv();
  const caFile = join(isolated.dir, "ca.pem");
  await Deno.writeTextFile(caFile, registry.caCert ?? "");
  const env = { HTTPS_PROXY: proxy.url };
  try {
    const verified = await pushVerbose(
      ["-f", sample.path, ...login(registry, "connect/fetch"), "--ca-cert", caFile],
      { isolated, stdin: PASSWORD, env },
    );
    await assertPulled(verified, `${registry.host}/connect/fetch:v1`, sample, CREDS);
    const fetchTunnels = proxy.tunnels.length;
    assert.ok(fetchTunnels >= 1, "fetch tunnelled through the proxy");
    assert.ok(fetchTunnels < loggedRequests(verified).length, "fetch keeps its tunnels alive");

    const skipping = await pushVerbose(
      ["-f", sample.path, ...login(registry, "connect/node"), "--skip-tls"],
      { isolated, stdin: PASSWORD, env },
    );
    await assertPulled(skipping, `${registry.host}/connect/node:v1`, sample, CREDS);
    assert.equal(
      proxy.tunnels.length - fetchTunnels,
      loggedRequests(skipping).length,
      "node:https opened one tunnel per request",
    );
    assert.ok(proxy.tunnels.every((authority) => authority === registry.host));
    assert.equal(proxy.forwarded.length, 0);

    const tunnels = proxy.tunnels.length;
    for (const extra of [["--skip-tls"], ["--ca-cert", caFile]]) {
      const bypassed = await pushVerbose(
        ["-f", sample.path, ...login(registry, "connect/bypass"), ...extra],
        { isolated, stdin: PASSWORD, env: { ...env, NO_PROXY: "example.com,127.0.0.0/8" } },
      );
      await assertLanded(bypassed, `${registry.host}/connect/bypass:v1`, CREDS);
    }
    assert.equal(proxy.tunnels.length, tunnels, "NO_PROXY with a CIDR block bypasses the proxy");
  } finally {
    await isolated.remove();
    await proxy.close();
    await registry.stop();
  }
});
