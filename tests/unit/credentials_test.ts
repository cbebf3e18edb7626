import assert from "node:assert/strict";
import { join } from "node:path";
import { ANONYMOUS } from "../../lib/credentials/credentials.ts";
import { configKeys, DOCKER_HUB_CONFIG_KEY } from "../../lib/credentials/docker_config.ts";
import { resolveCredentials } from "../../lib/credentials/resolve.ts";
import { tempDir } from "../helpers/temp_dir.ts";

function envOf(values: Record<string, string>): (name: string) => string | undefined {
  return (name) => values[name];
}

Deno.test("docker hub credentials are found under the historical index.docker.io key", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({ auths: { [DOCKER_HUB_CONFIG_KEY]: { auth: btoa("hubuser:hubpass") } } }),
  );
  const found = await resolveCredentials(
    undefined,
    "docker.io",
    "library/nginx",
    envOf({ DOCKER_CONFIG: dir, HOME: dir }),
  );
  assert.deepEqual(found, { username: "hubuser", password: "hubpass" });
  assert.ok(configKeys("docker.io", "library/nginx").includes(DOCKER_HUB_CONFIG_KEY));
});

Deno.test("explicit credentials win over config files; none found means anonymous", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({ auths: { "reg.example:5000": { auth: btoa("fileuser:filepass") } } }),
  );
  const env = envOf({ DOCKER_CONFIG: dir, HOME: dir });
  const explicit = await resolveCredentials(
    { username: "u", password: "p" },
    "reg.example:5000",
    "a/b",
    env,
  );
  assert.deepEqual(explicit, { username: "u", password: "p" });
  const explicitlyAnonymous = await resolveCredentials(ANONYMOUS, "reg.example:5000", "a/b", env);
  assert.deepEqual(explicitlyAnonymous, ANONYMOUS, "given anonymous credentials skip the files");
  const fromFile = await resolveCredentials(undefined, "reg.example:5000", "a/b", env);
  assert.deepEqual(fromFile, { username: "fileuser", password: "filepass" });
  const none = await resolveCredentials(undefined, "other.example", "a/b", env);
  assert.deepEqual(none, ANONYMOUS);
});

Deno.test("identity tokens and podman repository-scoped keys", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  await Deno.writeTextFile(
    join(dir, "auth.json"),
    JSON.stringify({
      auths: {
        "acr.example.io/team/app": {
          auth: btoa("00000000-0000-0000-0000-000000000000:"),
          identitytoken: "refresh-token-value",
        },
        "acr.example.io": { auth: btoa("general:pw") },
      },
    }),
  );
  const env = envOf({
    HOME: dir,
    DOCKER_CONFIG: join(dir, "none"),
    REGISTRY_AUTH_FILE: join(dir, "auth.json"),
  });
  const scoped = await resolveCredentials(undefined, "acr.example.io", "team/app", env);
  assert.deepEqual(scoped, {
    identityToken: "refresh-token-value",
    username: "00000000-0000-0000-0000-000000000000",
  });
  const general = await resolveCredentials(undefined, "acr.example.io", "other/app", env);
  assert.deepEqual(general, { username: "general", password: "pw" });
});

Deno.test("a credential helper on PATH is run with the registry on stdin", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  const helper = join(dir, "docker-credential-testhelper");
  await Deno.writeTextFile(
    helper,
    `#!/bin/sh\nread server\necho "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"helper-user\\",\\"Secret\\":\\"secret-for-$server\\"}"\n`,
  );
  await Deno.chmod(helper, 0o755);
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({ credHelpers: { "reg.example:5000": "testhelper" } }),
  );
  const path = `${dir}:${Deno.env.get("PATH")}`;
  const originalPath = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", path);
  try {
    const found = await resolveCredentials(
      undefined,
      "reg.example:5000",
      "a/b",
      envOf({ DOCKER_CONFIG: dir, HOME: dir }),
    );
    assert.deepEqual(found, { username: "helper-user", password: "secret-for-reg.example:5000" });
  } finally {
    Deno.env.set("PATH", originalPath);
  }
});

Deno.test("a helper's <token> user and a bare identitytoken give identity tokens without a user name", async () => {
  await using temp = await tempDir();
  const dir = temp.path;
  await Deno.writeTextFile(
    join(dir, "docker-credential-tokenhelper"),
    `#!/bin/sh\nread server\necho '{"ServerURL":"x","Username":"<token>","Secret":"helper-refresh"}'\n`,
  );
  await Deno.chmod(join(dir, "docker-credential-tokenhelper"), 0o755);
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({
      credHelpers: { "helper.example": "tokenhelper" },
      auths: { "bare.example": { identitytoken: "bare-refresh" } },
    }),
  );
  const env = envOf({ DOCKER_CONFIG: dir, HOME: dir });
  const originalPath = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", `${dir}:${originalPath}`);
  try {
    const helped = await resolveCredentials(undefined, "helper.example", "a/b", env);
    assert.deepEqual(helped, { identityToken: "helper-refresh" });
  } finally {
    Deno.env.set("PATH", originalPath);
  }
  const bare = await resolveCredentials(undefined, "bare.example", "a/b", env);
  assert.deepEqual(bare, { identityToken: "bare-refresh" });
});
