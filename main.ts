/**
 * docker-image-pusher: push a docker/OCI image archive to a container registry.
 *
 * @module
 */

import { runCli } from "./lib/cli/run.ts";

if (import.meta.main) Deno.exit(await runCli(Deno.args));
