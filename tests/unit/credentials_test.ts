import assert from "node:assert/strict";
import { join } from "node:path";
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
  assert.equal(found.kind, "basic");
  if (found.kind === "basic") {
    assert.equal(found.username, "hubuser");
    assert.equal(found.password, "hubpass");
  }
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
  assert.equal(explicit.kind === "basic" && explicit.username, "u");
  const fromFile = await resolveCredentials(undefined, "reg.example:5000", "a/b", env);
  assert.equal(fromFile.kind === "basic" && fromFile.username, "fileuser");
  const none = await resolveCredentials(undefined, "other.example", "a/b", env);
  assert.equal(none.kind, "anonymous");
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
  assert.equal(scoped.kind, "identity-token");
  if (scoped.kind === "identity-token") assert.equal(scoped.token, "refresh-token-value");
  const general = await resolveCredentials(undefined, "acr.example.io", "other/app", env);
  assert.equal(general.kind === "basic" && general.username, "general");
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
    assert.equal(found.kind, "basic");
    if (found.kind === "basic") {
      assert.equal(found.username, "helper-user");
      assert.equal(found.password, "secret-for-reg.example:5000");
    }
  } finally {
    Deno.env.set("PATH", originalPath);
  }
});
