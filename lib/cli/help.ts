/**
 * Help text pieces: examples and the exit-code table shown by `--help`, per command.
 *
 * @module
 */

import { type ErrorKind, EXIT_CODES } from "../errors.ts";
import type { CommandName } from "./flags.ts";

const EXIT_CODE_MEANINGS: Readonly<Record<ErrorKind, string>> = {
  internal: "unexpected internal error (a bug: please report it)",
  usage: "bad command line or environment variable",
  input:
    "the archive is missing, unreadable or malformed, or a delta the registry lacks layers for",
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

const PUSH_EXAMPLES = `
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

  # every image of a bundle (pull --from LIST wrote it) under one prefix, one line per image
  docker-image-pusher push --all -f bundle.tar -r registry.internal/mirror

  # an image straight from containerd's store, no export (k3s: add --namespace k8s.io)
  docker-image-pusher push --containerd-root /var/lib/containerd --image app:1 \\
      -r registry.example.com/app:1
`;

const PULL_EXAMPLES = `
  # two images into one archive (each blob stored once); docker load / podman load read it
  docker-image-pusher pull registry.example.com/app:1 registry.example.com/db:2 -o images.tar

  # only one platform of a multi-platform image (a new index: its digest changes)
  docker-image-pusher pull nginx:1.27 --platform linux/arm64 -o nginx-arm64.tar

  # a bundle for an air gap: every image of a LIST (a line's --platform= applies to it)
  docker-image-pusher pull --from images.txt -o bundle.tar

  # the next one holds only the layers bundle.tar does not (push --all checks the far side)
  docker-image-pusher pull --from images.txt -o delta.tar --exclude-from bundle.tar

  # straight into a push (stdout cannot resume; a file can: run the same command again)
  docker-image-pusher pull localhost:5000/app:1 -o - | docker-image-pusher -f - -r other:5000/app:1
`;

const COPY_EXAMPLES = `
  # copy between registries with separate credentials
  docker-image-pusher copy --src-username reader --src-password "$SRC_TOKEN" \\
      src.example.com/app:1 dst.example.com/app:1 -u writer --password-stdin < token.txt
`;

const SYNC_EXAMPLES = `
  # a LIST (images.txt): one image per line, "#" starts a comment
  #   docker.io/library/nginx:1.27
  #   --platform=linux/amd64,linux/arm64 docker.io/library/redis:7.4
  #   ghcr.io/acme/api:2.3 => registry.example.com/acme/api:2.3
  #   ./app.tar
  # a line without "=> TARGET" lands at PREFIX/<repository path>:<tag> (an archive's name comes
  # from the archive; relative paths start at the LIST's directory)

  # what would move, written nowhere
  docker-image-pusher sync --from images.txt --to registry.example.com/mirror --dry-run

  # the nightly mirror: images already there are left alone; the other lines go on when one
  # fails, which is named on stderr, and the exit code is that of the first failed line
  docker-image-pusher sync --from images.txt --to registry.example.com/mirror \\
      -u ci --password-stdin < token.txt

  # a registry that allows two levels (Aliyun ACR personal): PREFIX/nginx:1.27
  docker-image-pusher sync --from images.txt --to registry.cn-hangzhou.aliyuncs.com/mirror --flatten
`;

const LS_EXAMPLES = `
  # the images an archive holds, then push one of them
  docker-image-pusher ls images.tar
  docker-image-pusher -f images.tar --image app:1 -r registry.example.com/app:1

  # the images k3s keeps, as one JSON document
  docker-image-pusher ls --containerd-root /var/lib/rancher/k3s/agent/containerd \\
      --namespace k8s.io --json
`;

const EXAMPLES: Readonly<Record<CommandName | "main", string>> = {
  main: PUSH_EXAMPLES + PULL_EXAMPLES + COPY_EXAMPLES + SYNC_EXAMPLES + LS_EXAMPLES,
  push: PUSH_EXAMPLES,
  pull: PULL_EXAMPLES,
  copy: COPY_EXAMPLES,
  sync: SYNC_EXAMPLES,
  ls: LS_EXAMPLES,
};

const SUCCESS: Readonly<Record<CommandName | "main", string>> = {
  main: "done (or, with --dry-run, checked)",
  push: "pushed (or, with --dry-run, checked)",
  pull: "pulled: the archive is complete (or, with --dry-run, checked)",
  copy: "copied (or, with --dry-run, checked)",
  sync: "every line transferred or unchanged (or, with --dry-run, planned)",
  ls: "listed (images push would refuse are listed with the reason)",
};

/** Text printed after the option list by `--help` for a command (`main`: the program's). */
export function helpFooter(command: CommandName | "main"): string {
  return `
Examples:${EXAMPLES[command]}
Every flag has an environment variable default: --max-concurrent reads
DOCKER_PUSHER_MAX_CONCURRENT, --skip-tls reads DOCKER_PUSHER_SKIP_TLS (true/false/1/0/yes/no).
The flag wins over the variable.

Exit codes:
  0    ${SUCCESS[command]}
${exitCodeTable()}
`;
}
