/**
 * docker-image-pusher: push a docker/OCI image archive to a container registry, pull images
 * into an archive, copy images between registries.
 *
 * @module
 */

import { runCli } from "./lib/cli/run.ts";

if (import.meta.main) Deno.exit(await runCli(Deno.args));
