/**
 * Registry authentication end to end: the real CLI (`main.ts` in a child process, always with
 * `--verbose`, every run's output scanned for secrets) against real Distribution with htpasswd
 * Basic auth or Docker token auth, images pulled back with skopeo.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startRegistry } from "../helpers/registry.ts";
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
  secret,
  startTestProxy,
  writeJson,
} from "./auth_tls_support.ts";

const PASSWORD = credentialsOf("alice", "alice-Pa55:word");
const WRONG = credentialsOf("alice", "not-alices-password");
const CLI_WARNING = /^warning: a password on the command line can be seen/;
const ACR_USER = "00000000-0000-0000-0000-000000000000";
/** Requests a push of the sample sends before the registry's challenge is known. */
const FIRST_ROUND = 6;

/**
 * Fails unless the challenges a push met were those of its first round: requests sent together
 * before the registry's challenge was known, each refused once at most (credentials or a token
 * go with everything after), and no upload data among them.
 */
function assertFirstRoundChallenges(requests: readonly string[]): void {
  const challenged = requests.filter((line) => / → 401 /.test(line)).map((line) =>
    line.split(" → ")[0] ?? ""
  );
  assert.ok(challenged.length >= 1, "the registry challenged");
  assert.ok(challenged.length <= FIRST_ROUND, `only the first round:\n${challenged.join("\n")}`);
  const repeated = challenged.filter((line, index) =>
    !line.startsWith("POST ") && challenged.indexOf(line) !== index
  );
  assert.deepEqual(repeated, [], "no request challenged twice");
  assert.ok(
    challenged.every((line) => !/^(PATCH|PUT) /.test(line)),
    `no upload met a challenge:\n${challenged.join("\n")}`,
  );
}

Deno.test("htpasswd Basic: -u/-p pushes and warns once; wrong or missing credentials exit 4", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({ htpasswd: { alice: PASSWORD } });
  const isolated = await isolatedEnv();
  try {
    const target = `${registry.host}/basic/app:v1`;
    const good = await pushVerbose(
      ["-f", sample.path, "-r", target, "-u", "alice", "-p", PASSWORD],
      { isolated },
    );
    await assertPulled(good, target, sample, `alice:${PASSWORD}`);
    assert.equal(countLines(good.stderr, CLI_WARNING), 1, "one warning about -p");
    assertFirstRoundChallenges(loggedRequests(good));

    const wrong = await pushVerbose(
      ["-f", sample.path, "-r", target, "-u", "alice", "-p", WRONG],
      { isolated },
    );
    assertExit(wrong, 4);
    assert.match(wrong.stderr, /error: the credentials of alice were refused by 127\.0\.0\.1:\d+/);

    const anonymous = await pushVerbose(["-f", sample.path, "-r", target], { isolated });
    assertExit(anonymous, 4);
    assert.match(anonymous.stderr, /error: registry 127\.0\.0\.1:\d+ requires credentials/);
    assert.match(anonymous.stderr, /pass --username and --password/);
    assert.equal(countLines(anonymous.stderr, CLI_WARNING), 0);
  } finally {
    await isolated.remove();
    await registry.stop();
  }
});

Deno.test("token auth, GET grant: --password-stdin, scoped tokens; wrong credentials exit 4", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({ token: { users: { alice: PASSWORD } } });
  const isolated = await isolatedEnv();
  try {
    const target = `${registry.host}/tok/app:v1`;
    const good = await pushVerbose(
      ["-f", sample.path, "-r", target, "-u", "alice", "--password-stdin"],
      { isolated, stdin: `${PASSWORD}\n` },
    );
    const pushed = [...registry.tokenRequests];
    await assertPulled(good, target, sample, `alice:${PASSWORD}`);
    assert.equal(countLines(good.stderr, CLI_WARNING), 0, "no warning without -p");
    assert.ok(pushed.length >= 1);
    for (const request of pushed) {
      assert.equal(request.method, "GET");
      assert.equal(request.status, 200);
      assert.deepEqual(request.scopes, ["repository:tok/app:pull,push"]);
    }
    assert.match(
      good.stderr,
      /GET http:\/\/127\.0\.0\.1:\d+\/token\?tenant=…&service=test-registry/,
    );

    const before = registry.tokenRequests.length;
    const wrong = await pushVerbose(
      ["-f", sample.path, "-r", target, "-u", "alice", "--password-stdin"],
      { isolated, stdin: WRONG },
    );
    assertExit(wrong, 4);
    assert.match(
      wrong.stderr,
      /error: the credentials of alice were refused by the token service at http:\/\/127\.0\.0\.1:\d+\/token \(HTTP 401\)/,
    );
    assert.deepEqual(
      registry.tokenRequests.slice(before).map((request) => request.status),
      [401],
      "one refused token request, no retries",
    );
  } finally {
    await isolated.remove();
    await registry.stop();
  }
});

/**
 * Writes `docker-credential-<name>` into `dir`: it answers `get` with `username` and `password`
 * and logs the server it was asked for to `<name>.log`.
 */
async function credentialHelper(
  dir: string,
  name: string,
  username: string,
  password: string,
): Promise<string> {
  const path = join(dir, `docker-credential-${name}`);
  const log = join(dir, `${name}.log`);
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\n[ "$1" = get ] || exit 3\nread -r server\nprintf '%s\\n' "$server" >> '${log}'\n` +
      `printf '{"ServerURL":"%s","Username":"${username}","Secret":"%s"}\\n' "$server" '${password}'\n`,
  );
  await Deno.chmod(path, 0o755);
  return log;
}

Deno.test("token auth, POST grants: identitytoken in docker config or from a helper; 404 → GET", async () => {
  const sample = await sampleArchive();
  const refresh = secret(`refresh-${crypto.randomUUID()}`);
  for (const allowPost of [true, false]) {
    const registry = await startRegistry({ token: { users: { alice: PASSWORD }, allowPost } });
    registry.refreshTokens.set("alice", refresh);
    const isolated = await isolatedEnv();
    try {
      await writeJson(join(isolated.dockerConfig, "config.json"), {
        auths: { [registry.host]: { auth: btoa("alice:"), identitytoken: refresh } },
      });
      const target = `${registry.host}/post/app:v1`;
      const run = await pushVerbose(["-f", sample.path, "-r", target], { isolated });
      const grants = registry.tokenRequests.map((request) =>
        `${request.method} ${request.grantType ?? "-"} ${request.status} ${request.user ?? "-"}`
      );
      await assertPulled(run, target, sample, `alice:${PASSWORD}`);
      if (allowPost) {
        assert.ok(grants.length >= 1);
        for (const grant of grants) assert.equal(grant, "POST refresh_token 200 alice");
        assert.deepEqual(registry.tokenRequests[0]?.scopes, ["repository:post/app:pull,push"]);

        const bin = join(isolated.dir, "bin");
        await Deno.mkdir(bin);
        await credentialHelper(bin, "tokenhelper", "<token>", refresh);
        await writeJson(join(isolated.dockerConfig, "config.json"), {
          credHelpers: { [registry.host]: "tokenhelper" },
        });
        const before = registry.tokenRequests.length;
        const helperTarget = `${registry.host}/post/helper:v1`;
        const viaHelper = await pushVerbose(["-f", sample.path, "-r", helperTarget], {
          isolated,
          env: { PATH: `${bin}:${Deno.env.get("PATH") ?? ""}` },
        });
        const helperGrants = registry.tokenRequests.slice(before);
        await assertLanded(viaHelper, helperTarget, `alice:${PASSWORD}`);
        assert.ok(helperGrants.length >= 1);
        for (const grant of helperGrants) {
          assert.deepEqual(
            [grant.method, grant.grantType, grant.user],
            ["POST", "refresh_token", "alice"],
            "a helper's <token> user means an identity token",
          );
        }
      } else {
        assert.deepEqual(grants.slice(0, 2), ["POST refresh_token 404 -", "GET - 200 alice"]);
        assert.ok(grants.slice(2).every((grant) => grant === "GET - 200 alice"), "POST once");
      }
    } finally {
      await isolated.remove();
      await registry.stop();
    }
  }
});

Deno.test("credentials order: flags, env, stdin, docker config, REGISTRY_AUTH_FILE, podman", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({ htpasswd: { alice: PASSWORD } });
  const isolated = await isolatedEnv();
  const creds = `alice:${PASSWORD}`;
  const good = { auth: btoa(`alice:${PASSWORD}`) };
  const bad = { auth: btoa(`alice:${WRONG}`) };
  const dockerConfig = join(isolated.dockerConfig, "config.json");
  const authFile = join(isolated.dir, "auth.json");
  const push = (repository: string, args: string[], env: Record<string, string> = {}) =>
    pushVerbose(["-f", sample.path, "-r", `${registry.host}/${repository}:v1`, ...args], {
      isolated,
      env,
    });
  try {
    const fromEnv = await push("order/env", [], {
      DOCKER_PUSHER_USERNAME: "alice",
      DOCKER_PUSHER_PASSWORD: PASSWORD,
    });
    await assertLanded(fromEnv, `${registry.host}/order/env:v1`, creds);
    assert.equal(countLines(fromEnv.stderr, CLI_WARNING), 0, "no warning for the env variable");

    const flagWins = await push("order/flag", ["-u", "alice", "-p", PASSWORD], {
      DOCKER_PUSHER_USERNAME: "mallory",
      DOCKER_PUSHER_PASSWORD: WRONG,
    });
    await assertLanded(flagWins, `${registry.host}/order/flag:v1`, creds);
    assert.equal(countLines(flagWins.stderr, CLI_WARNING), 1);

    const stdinRun = await pushVerbose(
      ["-f", sample.path, "-r", `${registry.host}/order/stdin:v1`, "--password-stdin"],
      { isolated, env: { DOCKER_PUSHER_USERNAME: "alice" }, stdin: PASSWORD },
    );
    await assertLanded(stdinRun, `${registry.host}/order/stdin:v1`, creds);

    await writeJson(dockerConfig, { auths: { [registry.host]: good } });
    const explicitFirst = await push("order/explicit", ["-u", "alice", "-p", WRONG]);
    assertExit(explicitFirst, 4);
    assert.match(explicitFirst.stderr, /credentials of alice were refused/);
    const fromConfig = await push("order/config", []);
    await assertLanded(fromConfig, `${registry.host}/order/config:v1`, creds);
    assert.match(fromConfig.stderr, /using credentials for 127\.0\.0\.1:\d+ from .*config\.json/);

    await writeJson(authFile, { auths: { [registry.host]: good } });
    await writeJson(dockerConfig, { auths: { [registry.host]: bad } });
    const dockerFirst = await push("order/docker-first", [], { REGISTRY_AUTH_FILE: authFile });
    assertExit(dockerFirst, 4);
    await writeJson(dockerConfig, { auths: { "other.example": bad } });
    const fromAuthFile = await push("order/auth-file", [], { REGISTRY_AUTH_FILE: authFile });
    await assertLanded(fromAuthFile, `${registry.host}/order/auth-file:v1`, creds);

    await Deno.mkdir(join(isolated.runtimeDir, "containers"));
    await writeJson(join(isolated.runtimeDir, "containers", "auth.json"), {
      auths: { [`${registry.host}/order/podman`]: good },
    });
    const fromPodman = await push("order/podman", []);
    await assertLanded(fromPodman, `${registry.host}/order/podman:v1`, creds);
    const notScoped = await push("order/other", []);
    assertExit(notScoped, 4);
    assert.match(notScoped.stderr, /requires credentials/, "a repository-scoped key stays scoped");
  } finally {
    await isolated.remove();
    await registry.stop();
  }
});

Deno.test("credential helpers: credHelpers and credsStore run docker-credential-<name> get", async () => {
  const sample = await sampleArchive();
  const helperSecret = credentialsOf("helperuser", "secret-from-the-helper");
  const registry = await startRegistry({ htpasswd: { helperuser: helperSecret } });
  const isolated = await isolatedEnv();
  const bin = join(isolated.dir, "bin");
  await Deno.mkdir(bin);
  const env = { PATH: `${bin}:${Deno.env.get("PATH") ?? ""}` };
  try {
    const helperLog = await credentialHelper(bin, "testhelper", "helperuser", helperSecret);
    const storeLog = await credentialHelper(bin, "teststore", "helperuser", helperSecret);
    const config = join(isolated.dockerConfig, "config.json");
    await writeJson(config, {
      credsStore: "teststore",
      credHelpers: { [registry.host]: "testhelper" },
      auths: { [registry.host]: { auth: btoa(`helperuser:${WRONG}`) } },
    });
    const target = `${registry.host}/helper/app:v1`;
    const viaHelper = await pushVerbose(["-f", sample.path, "-r", target], { isolated, env });
    await assertPulled(viaHelper, target, sample, `helperuser:${helperSecret}`);
    assert.equal(await Deno.readTextFile(helperLog), `${registry.host}\n`);

    await writeJson(config, { credsStore: "teststore" });
    const storeTarget = `${registry.host}/helper/store:v1`;
    const viaStore = await pushVerbose(["-f", sample.path, "-r", storeTarget], { isolated, env });
    await assertLanded(viaStore, storeTarget, `helperuser:${helperSecret}`);
    assert.equal(await Deno.readTextFile(storeLog), `${registry.host}\n`);

    await writeJson(config, { credHelpers: { [registry.host]: "missing" } });
    const missing = await pushVerbose(["-f", sample.path, "-r", target], { isolated, env });
    assertExit(missing, 4);
    assert.match(
      missing.stderr,
      /error: credential helper docker-credential-missing is not on PATH/,
    );
  } finally {
    await isolated.remove();
    await registry.stop();
  }
});

/** A service-account key shaped like Google's (multi-line JSON with quotes and a PEM key). */
const GOOGLE_KEY = JSON.stringify(
  {
    type: "service_account",
    project_id: "demo-project",
    private_key_id: "0123456789abcdef",
    private_key: "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" +
      "-----END PRIVATE KEY-----\n",
    client_email: "pusher@demo-project.iam.gserviceaccount.com",
  },
  null,
  2,
);

Deno.test("registry flavours: ECR AWS user, Google _json_key and oauth2accesstoken, Harbor robot, ACR", async () => {
  const sample = await sampleArchive();
  const ecrPassword = credentialsOf("AWS", `eyJwYXlsb2FkIjoi${"QUJD".repeat(58)}`);
  const ecr = await startRegistry({ htpasswd: { AWS: ecrPassword } });
  const accessToken = credentialsOf("oauth2accesstoken", "ya29.a0-access-token-value");
  const robotSecret = credentialsOf("robot$team+ci", "Robot+Secret/With=Chars");
  credentialsOf("_json_key", GOOGLE_KEY);
  secret(GOOGLE_KEY.split("\n")[4] ?? "");
  const acrRefresh = credentialsOf(ACR_USER, secret(`acr-refresh-${crypto.randomUUID()}`));
  const tokens = await startRegistry({
    token: {
      users: {
        _json_key: GOOGLE_KEY,
        oauth2accesstoken: accessToken,
        "robot$team+ci": robotSecret,
      },
    },
  });
  tokens.refreshTokens.set(ACR_USER, acrRefresh);
  const isolated = await isolatedEnv();
  try {
    const ecrTarget = `${ecr.host}/ecr/app:v1`;
    const ecrRun = await pushVerbose(
      ["-f", sample.path, "-r", ecrTarget, "-u", "AWS", "--password-stdin"],
      { isolated, stdin: `${ecrPassword}\n` },
    );
    await assertLanded(ecrRun, ecrTarget, `AWS:${ecrPassword}`);

    const google = `${tokens.host}/gar/app:v1`;
    const keyRun = await pushVerbose(
      ["-f", sample.path, "-r", google, "-u", "_json_key", "--password-stdin"],
      { isolated, stdin: `${GOOGLE_KEY}\n` },
    );
    await assertPulled(keyRun, google, sample, `_json_key:${GOOGLE_KEY}`);
    const accessRun = await pushVerbose(
      ["-f", sample.path, "-r", `${tokens.host}/gar/app:v2`],
      {
        isolated,
        env: { DOCKER_PUSHER_USERNAME: "oauth2accesstoken", DOCKER_PUSHER_PASSWORD: accessToken },
      },
    );
    await assertLanded(accessRun, `${tokens.host}/gar/app:v2`, `oauth2accesstoken:${accessToken}`);

    const harbor = `${tokens.host}/team/app:v1`;
    const robotRun = await pushVerbose(
      ["-f", sample.path, "-r", harbor, "-u", "robot$team+ci", "--password-stdin"],
      { isolated, stdin: robotSecret },
    );
    await assertLanded(robotRun, harbor, `robot$team+ci:${robotSecret}`);
    assert.match(robotRun.stderr, /account=…/, "the account query value is masked in logs");

    await writeJson(join(isolated.dockerConfig, "config.json"), {
      auths: { [tokens.host]: { auth: btoa(`${ACR_USER}:`), identitytoken: acrRefresh } },
    });
    const before = tokens.tokenRequests.length;
    const acrTarget = `${tokens.host}/acr/app:v1`;
    const acrRun = await pushVerbose(["-f", sample.path, "-r", acrTarget], { isolated });
    const acrGrants = tokens.tokenRequests.slice(before);
    await assertLanded(acrRun, acrTarget, `${ACR_USER}:${acrRefresh}`);
    assert.ok(acrGrants.length >= 1);
    for (const grant of acrGrants) {
      assert.deepEqual([grant.method, grant.grantType, grant.user, grant.status], [
        "POST",
        "refresh_token",
        ACR_USER,
        200,
      ]);
    }
    const acrLogin = await pushVerbose(
      ["-f", sample.path, "-r", `${tokens.host}/acr/app:v2`, "-u", ACR_USER, "--password-stdin"],
      { isolated, stdin: acrRefresh },
    );
    await assertLanded(acrLogin, `${tokens.host}/acr/app:v2`, `${ACR_USER}:${acrRefresh}`);

    const users = new Set(tokens.tokenRequests.map((request) => request.user));
    for (const user of ["_json_key", "oauth2accesstoken", "robot$team+ci", ACR_USER]) {
      assert.ok(users.has(user), `the token service saw ${user}`);
    }
  } finally {
    await isolated.remove();
    await ecr.stop();
    await tokens.stop();
  }
});

Deno.test("anonymous push to an open registry; anonymous tokens can't push (exit 4)", async () => {
  const sample = await sampleArchive();
  const open = await startRegistry();
  const tokens = await startRegistry({ token: { users: { alice: PASSWORD } } });
  const isolated = await isolatedEnv();
  try {
    const target = `${open.host}/anon/app:v1`;
    const run = await pushVerbose(["-f", sample.path, "-r", target], { isolated });
    await assertPulled(run, target, sample);
    assert.equal(loggedRequests(run).filter((line) => / → 401 /.test(line)).length, 0);

    const refused = await pushVerbose(
      ["-f", sample.path, "-r", `${tokens.host}/anon/app:v1`],
      { isolated },
    );
    assertExit(refused, 4);
    assert.match(refused.stderr, /error: registry 127\.0\.0\.1:\d+ requires credentials/);
    assert.ok(tokens.tokenRequests.every((request) => request.user === undefined));
  } finally {
    await isolated.remove();
    await open.stop();
    await tokens.stop();
  }
});

Deno.test("cross-repository mount: the token asks for pull on the source repository", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({ token: { users: { alice: PASSWORD } } });
  const isolated = await isolatedEnv();
  // Layers go up as they are, so their digests are known without the layer cache.
  const common = ["-u", "alice", "--password-stdin", "--compression", "none", "--no-cache"];
  try {
    const base = await pushVerbose(
      ["-f", sample.path, "-r", `${registry.host}/team/base:v1`, ...common],
      { isolated, stdin: PASSWORD },
    );
    assertExit(base, 0);
    const before = registry.tokenRequests.length;
    const target = `${registry.host}/team/app:v1`;
    const app = await pushVerbose(
      ["-f", sample.path, "-r", target, ...common, "--mount-from", "team/base"],
      { isolated, stdin: PASSWORD },
    );
    const grants = registry.tokenRequests.slice(before);
    await assertPulled(app, target, sample, `alice:${PASSWORD}`);
    assert.equal(
      countLines(app.stderr, /: mounted \(from team\/base\)/),
      2,
      `both layers mounted:\n${app.stderr}`,
    );
    assert.ok(
      grants.some((grant) =>
        grant.scopes.includes("repository:team/app:pull,push") &&
        grant.scopes.includes("repository:team/base:pull")
      ),
      `a token for the mount: ${JSON.stringify(grants)}`,
    );
    assert.equal(
      countLines(app.stderr, /^PUT \S+\/blobs\/uploads\/\S+ → 201 /),
      1,
      "only the config is uploaded",
    );
    assert.equal(countLines(app.stderr, /^POST \S+\?mount=\S+&from=team\/base → 201 /), 2);
  } finally {
    await isolated.remove();
    await registry.stop();
  }
});

/** Upload speed of the throttling proxy: the large sample's layer takes about 4 s. */
const THROTTLE_BYTES_PER_SECOND = 128 * 1024;

Deno.test("2-second tokens: a 4-second push refreshes its token before expiry and succeeds", async () => {
  const sample = await sampleArchive(512 * 1024);
  const registry = await startRegistry({
    token: { users: { alice: PASSWORD }, lifetimeSeconds: 2 },
  });
  const proxy = startTestProxy({ bytesPerSecond: THROTTLE_BYTES_PER_SECOND });
  const isolated = await isolatedEnv();
  try {
    const target = `${registry.host}/slow/app:v1`;
    const started = performance.now();
    const run = await pushVerbose(
      ["-f", sample.path, "-r", target, "-u", "alice", "--password-stdin", "--max-concurrent", "1"],
      { isolated, stdin: PASSWORD, env: { HTTP_PROXY: proxy.url } },
    );
    const seconds = (performance.now() - started) / 1000;
    const grants = registry.tokenRequests.length;
    await assertPulled(run, target, sample, `alice:${PASSWORD}`);
    assert.ok(seconds > 3, `the push outlived a token (${seconds.toFixed(1)} s)`);
    assert.ok(grants >= 2, `tokens were refreshed (${grants} fetched)`);
    const requests = loggedRequests(run);
    const longPatch = requests.findIndex((line) => /^PATCH .*\(5\d{5} bytes sent/.test(line));
    assert.ok(longPatch > 0, "the large layer went up in one PATCH");
    assert.match(requests[longPatch + 1] ?? "", /^GET \S+\/token\?.* → 200 /, "a fresh token");
    assert.match(requests[longPatch + 2] ?? "", /^PUT \S+ → 201 /, "before the closing PUT");
    // No request went out with an expired token: only the first round, sent before the
    // challenge was known, met one.
    assertFirstRoundChallenges(requests);
    assert.ok(proxy.forwarded.some((line) => line.startsWith("PATCH ")), "uploads were throttled");
  } finally {
    await isolated.remove();
    await proxy.close();
    await registry.stop();
  }
});

Deno.test("tokens that die before their expires_in: a 401 mid-push gets one fresh token and a retry", async () => {
  const sample = await sampleArchive(512 * 1024);
  const registry = await startRegistry({
    token: { users: { alice: PASSWORD }, lifetimeSeconds: 2, advertisedSeconds: 300 },
  });
  const proxy = startTestProxy({ bytesPerSecond: THROTTLE_BYTES_PER_SECOND });
  const isolated = await isolatedEnv();
  try {
    const target = `${registry.host}/early/app:v1`;
    const run = await pushVerbose(
      ["-f", sample.path, "-r", target, "-u", "alice", "--password-stdin", "--max-concurrent", "1"],
      { isolated, stdin: PASSWORD, env: { HTTP_PROXY: proxy.url } },
    );
    const grants = registry.tokenRequests.length;
    await assertPulled(run, target, sample, `alice:${PASSWORD}`);
    const challenged = loggedRequests(run).filter((line) => / → 401 /.test(line));
    assert.ok(challenged.length >= 2, `a request mid-push was refused:\n${run.stderr}`);
    assert.ok(grants >= 2 && grants <= challenged.length, `one token per 401 (${grants})`);
    const requests = loggedRequests(run);
    const refused = requests.findIndex((line) => /^PUT \S+ → 401 /.test(line));
    assert.ok(refused > 0, "the closing PUT after the long PATCH met a dead token");
    assert.match(requests[refused + 1] ?? "", /^GET \S+\/token\?.* → 200 /, "a fresh token");
    const retried = (requests[refused] ?? "").split(" → ")[0] ?? "";
    assert.equal(requests[refused + 2]?.split(" → ")[0], retried, "the same PUT once more");
    assert.match(requests[refused + 2] ?? "", / → 201 /);
  } finally {
    await isolated.remove();
    await proxy.close();
    await registry.stop();
  }
});

Deno.test("a registry that refuses every token: exit 4 after one fresh token, no loop", async () => {
  const sample = await sampleArchive();
  const registry = await startRegistry({
    token: { users: { alice: PASSWORD }, lifetimeSeconds: -30 },
  });
  const isolated = await isolatedEnv();
  try {
    const run = await pushVerbose(
      ["-f", sample.path, "-r", `${registry.host}/loop/app:v1`, "-u", "alice", "--password-stdin"],
      { isolated, stdin: PASSWORD },
    );
    assertExit(run, 4);
    assert.match(run.stderr, /error: the credentials of alice were refused by 127\.0\.0\.1:\d+/);
    assert.equal(registry.tokenRequests.length, 1, "one token fetched");
    // The first round (registry check, tag and config lookups, upload starts) is refused without
    // a token and once more with it; then the push stops: nothing is uploaded, nothing looped.
    const requests = loggedRequests(run);
    assert.ok(requests.every((line) => !/^(PATCH|PUT) /.test(line)), requests.join("\n"));
    assert.ok(requests.length <= 2 * FIRST_ROUND + 1, requests.join("\n"));
  } finally {
    await isolated.remove();
    await registry.stop();
  }
});
