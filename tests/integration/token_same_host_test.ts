/**
 * A registry that serves its bearer tokens on its own host (Harbor's `/service/token`, GHCR,
 * Quay): the real Distribution registry and its token server behind one nginx, itself behind a
 * delay proxy that counts the connections it accepts (the long-link bench's `token-same-host`
 * registry). The token request of a cold push rides a connection the push already has with the
 * registry, so the push opens no more connections than the same push to a plain HTTP registry.
 * The pushed image is pulled back with skopeo.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startFarRegistry } from "../../scripts/bench_link_registry.ts";
import { pushedDigest, pushSample } from "./auth_tls_support.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const USER = "same-host";
const PASSWORD = "same-host-secret-3";
/**
 * Long enough that the push's first requests all start before any answer comes back, so each
 * run opens one connection per request in flight, the same number on both registries.
 */
const ONE_WAY_MS = 40;

Deno.test({
  name: "token on the registry's own host: a cold push fetches its token over a connection it " +
    "already has and opens no more connections than on plain HTTP",
  sanitizeResources: false,
  fn: async () => {
    await using dir = await tempDir("token-same-host-");
    const sample = await writeSampleDockerArchive(join(dir.path, "image.tar"), {
      layers: 3,
      randomBytes: 64 * 1024,
      seed: 31,
      name: "same/host:latest",
    });
    const users = { [USER]: PASSWORD };
    await using plain = await startFarRegistry("plain", ONE_WAY_MS, users);
    await using sameHost = await startFarRegistry("token-same-host", ONE_WAY_MS, users);
    const nginx = sameHost.nginx;
    assert.ok(nginx, "the same-host registry stands behind nginx");

    await pushSample(sample, `${plain.proxy.host}/same/plain:1`, join(dir.path, "plain-cache"));
    const pushed = await pushSample(
      sample,
      `${sameHost.proxy.host}/same/token:1`,
      join(dir.path, "token-cache"),
      ["-u", USER, "-p", PASSWORD],
    );

    const requests = await nginx.requests();
    const tokens = requests.filter((request) => request.path.startsWith("/token?"));
    assert.deepEqual(
      tokens.map((request) => `${request.method} ${request.status}`),
      ["GET 200"],
      "one token, served on the registry's host",
    );
    assert.equal(sameHost.registry.tokenRequests.length, 1);
    const token = tokens[0];
    assert.ok(token);
    const before = requests.slice(0, requests.indexOf(token));
    assert.ok(
      before.some((request) =>
        request.connection === token.connection && request.path.startsWith("/v2/")
      ),
      "the token request went out on a connection that had carried a registry request",
    );
    assert.ok(token.connectionRequests > 1);
    assert.ok(plain.proxy.connections > 1, "the plain push opened its connections in parallel");
    assert.ok(
      sameHost.proxy.connections <= plain.proxy.connections,
      `connections: ${sameHost.proxy.connections} with the token on the registry's host, ` +
        `${plain.proxy.connections} on plain HTTP`,
    );

    await pullAndVerify(`${sameHost.proxy.host}/same/token:1`, {
      expectedManifestDigest: pushedDigest(pushed),
      expectedConfigDigest: sample.configDigest,
      expectedDiffIds: sample.diffIds,
      creds: `${USER}:${PASSWORD}`,
    });
  },
});
