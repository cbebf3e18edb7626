/**
 * `docker-image-pusher sync` as a user runs it, against real Distribution registries. A LIST
 * mixing registry sources (put there by skopeo, one filtered by `--platform`) and archives lands
 * under the prefix: skopeo pulls every target back and checks it; stdout holds the outcome table
 * and stderr only lines prefixed with their LIST line (or the run's opening and closing lines). A
 * second run reports every line unchanged and sends no blob byte (counted by a proxy). A line whose
 * source is missing fails with the exit code of its kind, is named on stderr, and the other lines
 * land; its dry run writes nothing. `--json` is one event stream whose image events carry `line`.
 * A bad LIST is one usage line naming the line, exit 2.
 */

import assert from "node:assert/strict";
import { runPusher } from "../helpers/cli.ts";
import { type FaultProxy, startFaultProxy } from "../helpers/fault_proxy.ts";
import { sharedFixtures } from "../helpers/fixtures.ts";
import { pullAndVerify, skopeoInspect } from "../helpers/pull_verify.ts";
import { startRegistry, type TestRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";

/** Puts an OCI archive fixture's image into a registry with skopeo, digests preserved. */
async function seed(archive: string, target: string): Promise<void> {
  const output = await new Deno.Command("skopeo", {
    args: [
      ...["--insecure-policy", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false"],
      `oci-archive:${archive}:v1`,
      `docker://${target}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(output.success, `skopeo copy failed: ${new TextDecoder().decode(output.stderr)}`);
}

async function withRegistries(
  body: (source: TestRegistry, target: TestRegistry) => Promise<void>,
): Promise<void> {
  const source = await startRegistry();
  try {
    const target = await startRegistry();
    try {
      await body(source, target);
    } finally {
      await target.stop();
    }
  } finally {
    await source.stop();
  }
}

/** The rows of the outcome table on stdout, each split into its columns. */
function tableRows(stdout: string): string[][] {
  const [heading, ...rows] = stdout.trimEnd().split("\n");
  assert.match(heading ?? "", /^LINE\s+SOURCE\s+TARGET\s+STATUS\s+DIGEST OR ERROR$/, stdout);
  return rows.map((row) => row.split(/ {3,}/));
}

/** `line status` for each row of the table. */
function tableStatuses(stdout: string): string[] {
  return tableRows(stdout).map((row) => `${row[0]} ${row[3]}`);
}

/** Bytes of blob uploads the proxy forwarded from `since` on. */
function uploadedBytes(proxy: FaultProxy, since: number): number {
  return proxy.log.slice(since)
    .filter((entry) => entry.kind === "upload-patch" || entry.kind === "upload-put")
    .reduce((sum, entry) => sum + entry.bodyBytes, 0);
}

/** Requests from `since` on that write to the registry. */
function writes(proxy: FaultProxy, since = 0): string[] {
  return proxy.log.slice(since).filter((entry) => /^(upload-|manifest-put)/.test(entry.kind))
    .map((entry) => `${entry.kind} ${entry.path}`);
}

/** Every stderr line names its LIST line, except the run's opening and closing lines. */
function assertLinePrefixed(stderr: string, lines: readonly number[]): void {
  const [first, ...rest] = stderr.trimEnd().split("\n");
  assert.match(first ?? "", /^(syncing|checking) \d+ images from /, stderr);
  const last = rest.pop() ?? "";
  assert.match(last, /^(synced \d+ lines in |dry run of \d+ lines)/, stderr);
  for (const line of rest) {
    const number = Number(/^line (\d+): /.exec(line)?.[1]);
    assert.ok(lines.includes(number), `a line of its own LIST line: ${line}\n${stderr}`);
  }
}

Deno.test("sync through the CLI: a mixed LIST lands and the table names every line; a second run is all unchanged and sends no blob byte", async () => {
  const fixtures = await sharedFixtures();
  await using work = await tempDir();
  await using cache = await tempDir();
  await withRegistries(async (source, target) => {
    await using dst = startFaultProxy({ upstream: target.url, seed: 11 });
    await seed(fixtures["oci-archive"].path, `${source.host}/src/app:v1`);
    await seed(fixtures["oci-multi-platform"].path, `${source.host}/src/multi:v1`);
    await Deno.copyFile(fixtures["docker-archive"].path, `${work.path}/app.tar`);
    await Deno.copyFile(fixtures["docker-v25"].path, `${work.path}/v25.tar`);
    const prefix = `${dst.host}/mirror`;
    const list = `${work.path}/images.txt`;
    await Deno.writeTextFile(
      list,
      [
        "# nightly mirror",
        `${source.host}/src/app:v1`,
        `--platform=linux/amd64,linux/arm64 ${source.host}/src/multi:v1   # and their attestations`,
        "./app.tar",
        `./v25.tar => ${dst.host}/archives/v25:v1`,
      ].join("\n"),
    );
    const args = ["sync", "--from", list, "--to", prefix, "--parallel-images", "2"];

    const first = await runPusher(args, { cacheDir: cache.path });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(tableStatuses(first.stdout), ["2 done", "3 done", "4 done", "5 done"]);
    const rows = tableRows(first.stdout);
    assert.deepEqual(rows.map((row) => row[2]), [
      `${prefix}/src/app:v1`,
      `${prefix}/src/multi:v1`,
      `${prefix}/library/app:v1`,
      `${dst.host}/archives/v25:v1`,
    ]);
    assert.equal(rows[2]?.[1], `${work.path}/app.tar`, "an archive's source is its path");
    for (const row of rows) assert.match(row[4] ?? "", /^sha256:[0-9a-f]{64}$/);
    assertLinePrefixed(first.stderr, [2, 3, 4, 5]);
    assert.match(
      first.stderr,
      /^synced 4 lines in .*: 4 transferred \(.* sent\), 0 unchanged, 0 failed$/m,
    );

    const appDigest = (await skopeoInspect(`${source.host}/src/app:v1`)).digest;
    assert.equal(rows[0]?.[4], appDigest, "a copy keeps the digest");
    await pullAndVerify(`${target.host}/mirror/src/app:v1`, { expectedManifestDigest: appDigest });
    const multi = await pullAndVerify(`${target.host}/mirror/src/multi:v1`, {
      all: true,
      expectedManifestDigest: rows[1]?.[4] ?? "",
    });
    assert.deepEqual(multi.images.map((image) => image.platform).sort(), [
      "linux/amd64",
      "linux/arm64/v8",
      "unknown/unknown",
    ]);
    for (
      const [reference, fixture, digest] of [
        [`${target.host}/mirror/library/app:v1`, fixtures["docker-archive"], rows[2]?.[4]],
        [`${target.host}/archives/v25:v1`, fixtures["docker-v25"], rows[3]?.[4]],
      ] as const
    ) {
      await pullAndVerify(reference, {
        expectedManifestDigest: digest ?? "",
        expectedConfigDigest: fixture.configDigest,
        expectedDiffIds: fixture.diffIds,
      });
    }

    const before = dst.log.length;
    const second = await runPusher(args, { cacheDir: cache.path });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(tableStatuses(second.stdout), [
      "2 unchanged",
      "3 unchanged",
      "4 unchanged",
      "5 unchanged",
    ]);
    assert.deepEqual(
      tableRows(second.stdout).map((row) => row[4]),
      rows.map((row) => row[4]),
      "the same digests",
    );
    assert.match(second.stderr, /^synced 4 lines in .*: 0 transferred \(0 B sent\), 4 unchanged/m);
    assert.equal(uploadedBytes(dst, before), 0, "no blob byte sent");
    assert.deepEqual(writes(dst, before), [], "nothing written");
  });
});

Deno.test("sync through the CLI: a failing line exits with its kind's code and is named on stderr while the others land; its dry run writes nothing", async () => {
  const fixtures = await sharedFixtures();
  await using work = await tempDir();
  await withRegistries(async (source, target) => {
    await using dst = startFaultProxy({ upstream: target.url, seed: 12 });
    await seed(fixtures["oci-archive"].path, `${source.host}/src/app:v1`);
    await Deno.copyFile(fixtures["docker-archive"].path, `${work.path}/app.tar`);
    const list = `${work.path}/images.txt`;
    await Deno.writeTextFile(
      list,
      [`${source.host}/src/app:v1`, `${source.host}/src/missing:v1`, "./app.tar"].join("\n"),
    );
    const args = ["sync", "--from", list, "--to", `${dst.host}/mirror`];
    await using cache = await tempDir();

    const dry = await runPusher([...args, "--dry-run"], { cacheDir: cache.path });
    assert.equal(dry.code, 6, dry.stderr);
    assert.deepEqual(tableStatuses(dry.stdout), [
      "1 would transfer",
      "2 would fail",
      "3 would transfer",
    ]);
    const dryRows = tableRows(dry.stdout);
    assert.match(
      dryRows[0]?.[4] ?? "",
      /^sha256:\S+ \(would copy: the target tag does not exist\)$/,
    );
    assert.match(dryRows[1]?.[4] ?? "", /src\/missing:v1 does not exist/);
    assert.match(dryRows[2]?.[4] ?? "", /\(would write a new tag\)$/);
    assert.match(
      dry.stderr,
      new RegExp(
        `^error: ${list}:2: ${source.host}/src/missing:v1: would fail: .*does not exist`,
        "m",
      ),
    );
    assertLinePrefixed(dry.stderr.replace(/^error: .*\n/gm, ""), [1, 2, 3]);
    assert.deepEqual(writes(dst), [], "the dry run writes nothing");

    const real = await runPusher(args, { cacheDir: cache.path });
    assert.equal(real.code, 6, `the registry kind's exit code:\n${real.stderr}`);
    assert.deepEqual(tableStatuses(real.stdout), ["1 done", "2 failed", "3 done"]);
    const errors = real.stderr.split("\n").filter((line) => line.startsWith("error: "));
    assert.equal(errors.length, 1, real.stderr);
    assert.match(
      errors[0] ?? "",
      new RegExp(`^error: ${list}:2: ${source.host}/src/missing:v1: .*does not exist`),
    );
    assert.match(real.stderr, /^line 2: failed .*src\/missing:v1 → .*: .*does not exist$/m);
    await pullAndVerify(`${target.host}/mirror/src/app:v1`, {
      expectedManifestDigest: (await skopeoInspect(`${source.host}/src/app:v1`)).digest,
    });
    await pullAndVerify(`${target.host}/mirror/library/app:v1`, {
      expectedConfigDigest: fixtures["docker-archive"].configDigest,
      expectedDiffIds: fixtures["docker-archive"].diffIds,
    });
  });
});

Deno.test("sync --json: one event stream on stdout, every image event with its line, one sync event per line", async () => {
  const fixtures = await sharedFixtures();
  await using work = await tempDir();
  const registry = await startRegistry();
  try {
    await seed(fixtures["oci-archive"].path, `${registry.host}/src/app:v1`);
    await Deno.copyFile(fixtures["docker-archive"].path, `${work.path}/app.tar`);
    const list = `${work.path}/images.txt`;
    await Deno.writeTextFile(
      list,
      `# two lines\n${registry.host}/src/app:v1\n${registry.host}/src/gone:v1\n./app.tar\n`,
    );
    const run = await runPusher(["sync", "--from", list, "--to", `${registry.host}/m`, "--json"]);
    assert.equal(run.code, 6, run.stderr);
    const events = run.stdout.trimEnd().split("\n").map((line) =>
      JSON.parse(line) as Record<string, unknown>
    );
    assert.equal(events[0]?.["type"], "syncing");
    assert.deepEqual(
      (events[0]?.["lines"] as Array<{ line: number }>).map((plan) => plan.line),
      [2, 3, 4],
    );
    assert.equal(events.at(-1)?.["type"], "synced");
    assert.deepEqual(events.at(-1)?.["lines"], {
      transferred: 2,
      unchanged: 0,
      failed: 1,
      planned: 0,
    });
    const imageEvents = events.slice(1, -1);
    assert.ok(imageEvents.length > 6, "the copies' and the push's own events are there");
    for (const event of imageEvents) {
      assert.ok([2, 3, 4].includes(event["line"] as number), JSON.stringify(event));
      assert.equal(typeof event["time"], "string");
    }
    const done = imageEvents.filter((event) => event["type"] === "sync");
    assert.deepEqual(
      done.map((event) => `${event["line"]} ${event["status"]}`).sort(),
      ["2 transferred", "3 failed", "4 transferred"],
    );
    assert.ok(
      imageEvents.some((event) => event["type"] === "blob" && event["line"] === 4),
      "the archive line's blob events carry its line",
    );
    assert.match(run.stderr, new RegExp(`^error: ${list}:3: .*src/gone:v1: `, "m"));
  } finally {
    await registry.stop();
  }
});

Deno.test("a bad LIST is one usage line naming its line, exit 2", async () => {
  await using work = await tempDir();
  const list = `${work.path}/images.txt`;
  await Deno.writeTextFile(list, "# mirror\nnginx:1.27\n--platfrom=linux/amd64 redis:7\n");
  const run = await runPusher(["sync", "--from", list, "--to", "127.0.0.1:9/mirror"]);
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stdout, "");
  assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`^error: ${list}:3: unknown option "--platfrom=linux/amd64"`),
  );

  const missing = await runPusher(["sync", "--from", list]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: missing --to: /);
});
