/**
 * The `config.yml` of a local CNCF Distribution (`docker-registry serve`) on loopback, shared by
 * the benchmark and the test helpers, and the free port it listens on.
 *
 * @module
 */

/** What varies between the registries the benchmark and the tests start. */
export interface DistributionConfigOptions {
  /** Storage directory. */
  root: string;
  /** `127.0.0.1:<port>` to listen on. */
  host: string;
  /** The HTTP secret (signs upload state). */
  secret: string;
  /** Allow blob and manifest deletion. */
  deleteEnabled?: boolean;
  /** More lines inside the `http:` section (indented by two), e.g. `tls:`. */
  httpLines?: string[];
  /** More top-level sections, e.g. `auth:`. */
  sections?: string[];
}

/** The YAML text of a Distribution config with quiet logs and filesystem storage. */
export function distributionConfig(options: DistributionConfigOptions): string {
  return [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(options.root)}`,
    ...(options.deleteEnabled === true ? ["  delete:", "    enabled: true"] : []),
    "http:",
    `  addr: ${options.host}`,
    `  secret: ${options.secret}`,
    ...(options.httpLines ?? []),
    ...(options.sections ?? []),
  ].join("\n") + "\n";
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
