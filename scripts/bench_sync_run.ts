/**
 * One sync for `deno task bench`, run as its own process so it is timed as a user would run it:
 * `sync()` of the library over a LIST into a prefix, with the default settings, printing the
 * result as JSON on stdout (each line's status and bytes sent). Credentials for the prefix's
 * registry come from `DOCKER_PUSHER_USERNAME`/`DOCKER_PUSHER_PASSWORD`; sources use the docker
 * config (`DOCKER_CONFIG`), as the library does for them.
 *
 * ```sh
 * deno run -A scripts/bench_sync_run.ts --from images.txt --to 127.0.0.1:5001/mirror
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { PusherError } from "../lib/errors.ts";
import { DEFAULT_SYNC_SETTINGS, type SyncOptions } from "../lib/sync/options.ts";
import { sync, syncExitCode } from "../lib/sync/sync.ts";

/** The sync options of a benchmark run: `--from LIST --to PREFIX`, the rest defaults. */
export function benchSyncOptions(
  args: readonly string[],
  env: (name: string) => string | undefined,
): SyncOptions {
  const { values } = parseArgs({
    args: [...args],
    options: { from: { type: "string" }, to: { type: "string" } },
    strict: true,
  });
  if (values.from === undefined || values.to === undefined) {
    throw new PusherError("usage", "bench_sync_run needs --from LIST and --to PREFIX");
  }
  const username = env("DOCKER_PUSHER_USERNAME");
  const password = env("DOCKER_PUSHER_PASSWORD");
  return {
    ...DEFAULT_SYNC_SETTINGS,
    from: values.from,
    to: values.to,
    ...(username !== undefined && password !== undefined
      ? { credentials: { username, password } }
      : {}),
    skipTls: false,
    caCertFiles: [],
    dryRun: false,
    noCache: false,
  };
}

if (import.meta.main) {
  const result = await sync(benchSyncOptions(Deno.args, (name) => Deno.env.get(name)));
  console.log(JSON.stringify(result));
  Deno.exit(syncExitCode(result));
}
