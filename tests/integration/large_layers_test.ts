/**
 * Layers above `--large-layer-threshold` against a real Distribution registry, seen through a
 * recording proxy: from a plain tar they go up as several streamed PATCHes cut from one read of
 * the layer; from a gzip-compressed archive or stdin (one pass that can't be read again) as several
 * PATCHes held in memory, each with a `Content-Range`. Layers below the threshold go up in one
 * PATCH. Each image is pulled back with skopeo and checked.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runPusher } from "../helpers/cli.ts";
import { type ProxyRecord, startFaultProxy } from "../helpers/fault_proxy.ts";
import { pullAndVerify } from "../helpers/pull_verify.ts";
import { startRegistry } from "../helpers/registry.ts";
import { tempDir } from "../helpers/temp_dir.ts";
import { writeSampleDockerArchive } from "../helpers/sample_archive.ts";

const MiB = 1024 * 1024;
const THRESHOLD = 5 * MiB;

/** The requests of one upload session. */
interface UploadSession {
  /** Its PATCH requests, in order. */
  patches: ProxyRecord[];
  /** The digest its closing PUT named. */
  digest: string | undefined;
}

/** The upload sessions of `repository` in the proxy's log, by the session id in their paths. */
function uploadSessions(log: readonly ProxyRecord[], repository: string): UploadSession[] {
  const sessions = new Map<string, UploadSession>();
  const prefix = `/v2/${repository}/blobs/uploads/`;
  for (const record of log) {
    if (!record.path.startsWith(prefix)) continue;
    const url = new URL(record.path, "http://proxy");
    const id = url.pathname.slice(prefix.length);
    if (id === "") continue;
    const session = sessions.get(id) ?? { patches: [], digest: undefined };
    sessions.set(id, session);
    if (record.method === "PATCH") session.patches.push(record);
    if (record.method === "PUT") session.digest = url.searchParams.get("digest") ?? undefined;
  }
  return [...sessions.values()];
}

/** Sum of the PATCH bodies of a session. */
function patchedBytes(session: UploadSession): number {
  return session.patches.reduce((sum, patch) => sum + patch.bodyBytes, 0);
}

Deno.test("layers above the threshold go up in chunks from a file, a gzip archive and stdin", async () => {
  await using dir = await tempDir();
  const registry = await startRegistry();
  await using proxy = startFaultProxy({ upstream: registry.url, seed: 1 });
  try {
    // The last layer holds 13 MiB of random bytes: three chunks at a 5 MiB threshold.
    const sample = await writeSampleDockerArchive(join(dir.path, "big.tar"), {
      layers: 2,
      randomBytes: 13 * MiB,
      seed: 7,
    });
    const gzipped = await new Deno.Command("gzip", { args: ["-k", "-1", sample.path] }).output();
    assert.ok(gzipped.success, new TextDecoder().decode(gzipped.stderr));
    const compressed = `${sample.path}.gz`;
    const sources: Array<[string, string, Uint8Array | undefined]> = [
      ["file", sample.path, undefined],
      ["gzip-archive", compressed, undefined],
      ["stdin", "-", await Deno.readFile(compressed)],
    ];
    for (const [name, file, stdin] of sources) {
      const repository = `large/${name}`;
      const reference = `${proxy.host}/${repository}:1`;
      const run = await runPusher(
        ["-f", file, "-r", reference, "--large-layer-threshold", String(THRESHOLD), "--quiet"],
        stdin === undefined ? {} : { stdin },
      );
      assert.equal(run.code, 0, `${name}: ${run.stderr}`);
      const pulled = await pullAndVerify(reference, {
        expectedConfigDigest: sample.configDigest,
        expectedDiffIds: sample.diffIds,
      });
      const layers = pulled.images[0]?.layers ?? [];
      const large = layers.filter((layer) => layer.size > THRESHOLD);
      assert.equal(large.length, 1, `${name}: one layer above the threshold`);
      const layer = large[0] as (typeof layers)[number];

      const sessions = uploadSessions(proxy.log, repository);
      const chunked = sessions.filter((session) => session.digest === layer.digest);
      assert.equal(chunked.length, 1, `${name}: the large layer went up in one session`);
      const { patches } = chunked[0] as UploadSession;
      const what = `${name}: ${JSON.stringify(patches)}`;
      assert.ok(patches.length >= 3, `several PATCHes for ${layer.size} bytes: ${what}`);
      assert.equal(patchedBytes(chunked[0] as UploadSession), layer.size, what);
      for (const patch of patches) {
        assert.ok(patch.bodyBytes > 0 && patch.bodyBytes <= THRESHOLD, `chunk size: ${what}`);
        assert.equal(patch.outcome, 202, what);
      }
      if (name !== "file") {
        // Chunks held in memory: each PATCH says where its bytes go, one after the other.
        let offset = 0;
        for (const patch of patches) {
          assert.equal(patch.contentRange, `${offset}-${offset + patch.bodyBytes - 1}`, what);
          offset += patch.bodyBytes;
        }
      }
      for (const session of sessions) {
        if (session.digest === layer.digest) continue;
        assert.ok(patchedBytes(session) <= THRESHOLD, `${name}: only one large session`);
        assert.ok(session.patches.length <= 1, `${name}: a small blob goes up in one PATCH`);
      }
    }
  } finally {
    await registry.stop();
  }
});
