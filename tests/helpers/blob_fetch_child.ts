/**
 * A child process for kill-and-resume tests of the blob fetcher: downloads one blob from a
 * registry into a staging directory and kills itself with SIGKILL (no cleanup, no flush beyond
 * what was written) once the file holds at least `killAfter` bytes.
 *
 * Usage: `deno run -A blob_fetch_child.ts <registry-url> <repository> <digest> <size>
 * <staging-dir> <kill-after-bytes>`
 *
 * @module
 */

import { fetchBlob } from "../../lib/pull/blob_fetch.ts";
import { RegistryClient } from "../../lib/registry/client.ts";

const [url = "", repository = "", digest = "", size = "", stagingDir = "", killAfter = ""] =
  Deno.args;
const base = new URL(url);
const client = new RegistryClient({
  reference: { registry: base.host, apiBase: base, repository },
  access: "pull",
});
await fetchBlob({
  source: client,
  digest,
  size: Number(size),
  stagingDir,
  retry: { attempts: 0, baseDelayMs: 1, maxDelayMs: 1 },
  stallTimeoutMs: 30_000,
  onProgress: (bytes) => {
    if (bytes >= Number(killAfter)) Deno.kill(Deno.pid, "SIGKILL");
  },
});
console.error("the blob finished before the kill point");
Deno.exit(1);
