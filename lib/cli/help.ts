/**
 * Help text pieces: examples and the exit-code table shown by `--help`.
 *
 * @module
 */

import { type ErrorKind, EXIT_CODES } from "../errors.ts";

const EXIT_CODE_MEANINGS: Readonly<Record<ErrorKind, string>> = {
  internal: "unexpected internal error (a bug: please report it)",
  usage: "bad command line or environment variable",
  input: "the archive is missing, unreadable or malformed",
  auth: "the registry refused the credentials or the permission",
  network: "the registry could not be reached, or kept failing after retries",
  registry: "the registry rejected a request",
  verify: "a digest or size did not match: nothing was tagged",
  interrupted: "interrupted (Ctrl-C) or timed out; state is saved for a re-run",
};

/** The exit-code table, one line per code, in code order. */
export function exitCodeTable(): string {
  const kinds = Object.keys(EXIT_CODES) as ErrorKind[];
  kinds.sort((a, b) => EXIT_CODES[a] - EXIT_CODES[b]);
  return kinds.map((kind) =>
    `  ${String(EXIT_CODES[kind]).padStart(3)}  ${EXIT_CODE_MEANINGS[kind]}`
  )
    .join("\n");
}

/** Text printed after the option list by `--help`. */
export function helpFooter(): string {
  return `
Examples:
  # push a docker save archive to a private registry
  docker-image-pusher -r https://registry.example.com/project/app:v1.0 -f app.tar -u USER -p PASS

  # plain HTTP registry, bare reference, several tags at once
  docker-image-pusher -r http://localhost:5000/app:1.0 -r localhost:5000/app:latest -f app.tar

  # password from stdin, machine-readable events
  docker-image-pusher -f app.tar.zst -r registry.example.com/app:1 -u ci --password-stdin \\
      --json < token.txt

  # archive from a pipe (the password then comes from DOCKER_PUSHER_PASSWORD)
  docker save app:1 | docker-image-pusher -f - -r registry.example.com/app:1 -u ci

  # check everything without writing to the registry
  docker-image-pusher -r registry.example.com/app:1 -f app.tar --dry-run

Every flag has an environment variable default: --max-concurrent reads
DOCKER_PUSHER_MAX_CONCURRENT, --skip-tls reads DOCKER_PUSHER_SKIP_TLS (true/false/1/0/yes/no).
The flag wins over the variable.

Exit codes:
  0    pushed (or, with --dry-run, checked)
${exitCodeTable()}
`;
}
