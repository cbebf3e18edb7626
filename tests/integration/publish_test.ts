/**
 * The publishing rules: a registry with immutable tags (ECR) refuses to write a tag again, which
 * is success when the tag already names this very manifest, and a failure when it names another.
 */

import assert from "node:assert/strict";
import { EXIT_CODES } from "../../lib/errors.ts";
import { runPusher } from "../helpers/cli.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { startMemoryRegistry } from "../helpers/memory_registry.ts";

const IMMUTABLE = {
  type: "status" as const,
  status: 400,
  body: JSON.stringify({ errors: [{ code: "TAG_INVALID", message: "tag is immutable" }] }),
  headers: { "content-type": "application/json" },
};

Deno.test("an immutable tag that already names the manifest counts as pushed", async () => {
  const fixtures = await sharedFixtures();
  await using registry = startMemoryRegistry();
  const target = `http://${registry.host}/immutable/app:1`;
  const first = await runPusher(["-f", fixtures["docker-archive"].path, "-r", target]);
  assert.equal(first.code, 0, first.stderr);
  registry.faults = ({ kind, path }) =>
    kind === "manifest-put" && path.endsWith("/manifests/1") ? IMMUTABLE : undefined;
  const again = await runPusher(["-f", fixtures["docker-archive"].path, "-r", target]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, first.stdout);

  const other = await runPusher(["-f", fixtures["oci-archive"].path, "-r", target]);
  assert.equal(other.code, EXIT_CODES.registry, other.stderr);
  assert.match(other.stderr, /tag is immutable|TAG_INVALID/);
  assert.equal(registry.manifest("immutable/app", "1")?.digest, first.stdout.trim().split("@")[1]);
});
