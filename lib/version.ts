/**
 * The tool's version, read from the one place it is kept: deno.json.
 *
 * @module
 */

import denoConfig from "../deno.json" with { type: "json" };

/** The version of docker-image-pusher. */
export const VERSION: string = denoConfig.version;
