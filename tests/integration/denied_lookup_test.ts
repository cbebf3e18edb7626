/**
 * A registry that answers a blob lookup (`HEAD`) with 403 "denied" instead of 404, as Aliyun ACR
 * does when the repository's namespace does not exist or the account may not write to it: the
 * push ends with an authentication error (exit 4) whose one line names the namespace and the
 * account, and no upload is started.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_CODES } from "../../lib/errors.ts";
import { runPusher } from "../helpers/cli.ts";
import { startMemoryRegistry } from "../helpers/memory_registry.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";
import { tempDir } from "../helpers/temp_dir.ts";

const PASSWORD = "s3cret-denied-pw";
const DENIED = JSON.stringify({
  errors: [{ code: "DENIED", message: "requested access to the resource is denied" }],
});

Deno.test("a 403 DENIED to a blob HEAD is an auth error naming the namespace; nothing is tagged", async () => {
  await using dir = await tempDir();
  await using registry = startMemoryRegistry({
    auth: { username: "bob", password: PASSWORD, scheme: "bearer" },
    faults: ({ kind }) =>
      kind === "blob-head"
        ? {
          type: "status",
          status: 403,
          headers: { "Content-Type": "application/json" },
          body: DENIED,
        }
        : undefined,
  });
  const sample = await writeSampleDockerArchive(join(dir.path, "app.tar"), { layers: 2 });
  const run = await runPusher([
    ...["-f", sample.path, "-r", `${registry.host}/missing-team/app:1`],
    ...["-u", "bob", "-p", PASSWORD],
  ]);
  assert.equal(run.code, EXIT_CODES.auth, run.stderr);
  const errors = run.stderr.split("\n").filter((line) => line.startsWith("error:"));
  assert.equal(errors.length, 1, run.stderr);
  assert.match(errors[0] ?? "", /denied access to missing-team\/app .*\(HTTP 403\)/);
  assert.match(errors[0] ?? "", /create the namespace "missing-team"/);
  assert.match(errors[0] ?? "", /the account "bob"/);
  assert.ok(!`${run.stdout}${run.stderr}`.includes(PASSWORD), "the password never shows");
  assert.ok((registry.stats.requests["HEAD blob-head"] ?? 0) >= 1, "the lookup was made");
  // Uploads start beside the lookups (one round trip less on a long link); the refused lookup
  // stops them, and nothing is written under the tag.
  assert.equal(registry.stats.requests["PUT manifest-put"], undefined, "no manifest was written");
});
