/**
 * `ls` and the containerd flags on the command line: what `ls FILE` and `ls --containerd-root`
 * parse to (flags and `DOCKER_PUSHER_*` variables), what they refuse, what a push from a
 * containerd store parses to, and the table `ls` prints.
 */

import assert from "node:assert/strict";
import { type CommandLine, parseCommandLine } from "../../lib/cli/args.ts";
import { formatImageTable } from "../../lib/cli/image_table.ts";
import type { ListOptions } from "../../lib/cli/list_command.ts";
import { PusherError } from "../../lib/errors.ts";
import type { ImageSummary } from "../../lib/image/archive_listing.ts";
import type { PushOptions } from "../../lib/options.ts";
import { VERSION } from "../../lib/version.ts";

const DIGEST_A = `sha256:${"a".repeat(64)}`;
const DIGEST_B = `sha256:${"b".repeat(64)}`;

function parse(argv: string[], env: Record<string, string> = {}): CommandLine {
  return parseCommandLine(argv, env, VERSION);
}

function parseLs(argv: string[], env: Record<string, string> = {}): ListOptions {
  const command = parse(["ls", ...argv], env);
  assert.equal(command.action, "ls");
  if (command.action !== "ls") throw new Error("not ls");
  return command.options;
}

function parsePush(argv: string[], env: Record<string, string> = {}): PushOptions {
  const command = parse(argv, env);
  assert.equal(command.action, "push");
  if (command.action !== "push") throw new Error("not push");
  return command.options;
}

function usageError(argv: string[], pattern: RegExp, env: Record<string, string> = {}): void {
  assert.throws(() => parse(argv, env), (error) => {
    assert.ok(error instanceof PusherError, String(error));
    assert.equal(error.kind, "usage");
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("ls FILE lists an archive; --json asks for one JSON document", () => {
  assert.deepEqual(parseLs(["images.tar"]), {
    source: { kind: "archive", file: "images.tar" },
    json: false,
  });
  assert.deepEqual(parseLs(["-", "--json"]), {
    source: { kind: "archive", file: "-" },
    json: true,
  });
  assert.equal(parseLs(["images.tar"], { DOCKER_PUSHER_JSON: "1" }).json, true);
});

Deno.test("ls --containerd-root lists a namespace: `default` unless --namespace or its variable says", () => {
  assert.deepEqual(parseLs(["--containerd-root", "/var/lib/containerd"]), {
    source: { kind: "containerd", root: "/var/lib/containerd", namespace: "default" },
    json: false,
  });
  const k3s = "/var/lib/rancher/k3s/agent/containerd";
  assert.deepEqual(
    parseLs([], { DOCKER_PUSHER_CONTAINERD_ROOT: k3s, DOCKER_PUSHER_NAMESPACE: "k8s.io" }).source,
    { kind: "containerd", root: k3s, namespace: "k8s.io" },
  );
  assert.deepEqual(
    parseLs(["--namespace", "other"], {
      DOCKER_PUSHER_CONTAINERD_ROOT: k3s,
      DOCKER_PUSHER_NAMESPACE: "k8s.io",
    }).source,
    { kind: "containerd", root: k3s, namespace: "other" },
  );
});

Deno.test("ls refuses nothing to list, both sources, a stray --namespace, and push flags", () => {
  usageError(["ls"], /^missing FILE/);
  usageError(
    ["ls", "a.tar", "--containerd-root", "/c"],
    /an archive or --containerd-root, not both/,
  );
  usageError(
    ["ls", "a.tar"],
    /an archive or DOCKER_PUSHER_CONTAINERD_ROOT, not both/,
    { DOCKER_PUSHER_CONTAINERD_ROOT: "/c" },
  );
  usageError(["ls", "a.tar", "--namespace", "k8s.io"], /^--namespace needs --containerd-root$/);
  usageError(["ls", "a.tar", "-r", "host/app:1"], /unknown option/);
  usageError(["ls", "a.tar", "b.tar"], /too many arguments/);
  // A namespace from the environment alone is ignored: a k3s shell can still list archives.
  assert.deepEqual(parseLs(["a.tar"], { DOCKER_PUSHER_NAMESPACE: "k8s.io" }).source, {
    kind: "archive",
    file: "a.tar",
  });
});

Deno.test("push --containerd-root: the store, its namespace, the image, and a containerd: label", () => {
  const options = parsePush([
    "push",
    "--containerd-root",
    "/var/lib/containerd",
    "--namespace",
    "k8s.io",
    "--image",
    "app:v1",
    "-r",
    "localhost:5000/app:v1",
  ]);
  assert.equal(options.file, "containerd:/var/lib/containerd");
  assert.equal(options.containerdRoot, "/var/lib/containerd");
  assert.equal(options.namespace, "k8s.io");
  assert.equal(options.image, "app:v1");
  assert.deepEqual(options.targets, ["localhost:5000/app:v1"]);
  const fromEnv = parsePush(["-r", "localhost:5000/app:v1"], {
    DOCKER_PUSHER_CONTAINERD_ROOT: "/c",
  });
  assert.equal(fromEnv.containerdRoot, "/c");
  assert.equal(fromEnv.namespace, "default");
  const archive = parsePush(["-f", "a.tar", "-r", "h:5000/a:1"]);
  assert.equal(archive.containerdRoot, undefined);
  assert.equal(archive.namespace, undefined);
});

Deno.test("push refuses -f with --containerd-root (flag or variable), and --namespace alone", () => {
  const target = ["-r", "h:5000/a:1"];
  usageError(
    ["-f", "a.tar", "--containerd-root", "/c", ...target],
    /^--file and --containerd-root cannot be used together$/,
  );
  usageError(
    ["push", "-f", "a.tar", ...target],
    /^--file and DOCKER_PUSHER_CONTAINERD_ROOT cannot be used together$/,
    { DOCKER_PUSHER_CONTAINERD_ROOT: "/c" },
  );
  usageError(["push", "--namespace", "k8s.io", ...target], /^--namespace needs/);
  assert.throws(() => parse(target), (error) => {
    assert.ok(error instanceof PusherError);
    assert.match(error.message, /^missing --file/);
    assert.match(error.hint ?? "", /--containerd-root DIR --image NAME/);
    return true;
  });
});

Deno.test("help: ls shows its own flags; push names the containerd flags and k8s.io", () => {
  const ls = parse(["ls", "--help"]);
  assert.equal(ls.action, "help");
  if (ls.action !== "help") return;
  const options = ls.text.slice(ls.text.indexOf("Options:"), ls.text.indexOf("Examples:"));
  const offered = [...options.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((match) => match[1]);
  assert.deepEqual(offered.sort(), ["--containerd-root", "--help", "--json", "--namespace"]);
  assert.match(ls.text, /DOCKER_PUSHER_CONTAINERD_ROOT/);
  assert.match(ls.text, /docker-image-pusher ls images\.tar/);
  const main = parse(["--help"]);
  assert.equal(main.action, "help");
  if (main.action !== "help") return;
  assert.match(main.text, /ls \[options\] \[file\]/);
  assert.match(main.text, /--containerd-root <dir>/);
  assert.match(main.text, /DOCKER_PUSHER_NAMESPACE/);
  assert.match(main.text, /k3s and\s+Kubernetes keep their images in k8s\.io/);
});

Deno.test("the ls table: aligned columns, further names below, absent platforms, digest notes, problems", () => {
  const images: ImageSummary[] = [
    {
      names: ["docker.io/library/app:v1", "registry.example.com/team/app:latest"],
      platforms: ["linux/amd64", "linux/arm64/v8"],
      skippedPlatforms: ["linux/s390x"],
      digest: DIGEST_A,
      mediaType: "application/vnd.oci.image.index.v1+json",
      size: 3 * 1024 * 1024 / 2,
      uncompressedLayers: 0,
    },
    {
      names: [],
      platforms: ["linux/amd64"],
      skippedPlatforms: [],
      configDigest: DIGEST_B,
      size: 900,
      uncompressedLayers: 1,
    },
    {
      names: ["app:v25"],
      platforms: ["linux/arm64"],
      skippedPlatforms: [],
      digest: DIGEST_A,
      size: 2048,
      uncompressedLayers: 2,
    },
    {
      names: ["broken:1"],
      platforms: [],
      skippedPlatforms: [],
      digest: DIGEST_B,
      size: 0,
      uncompressedLayers: 0,
      problem: 'manifest names "blobs/sha256/x", which is not in the archive',
    },
  ];
  const digestWidth = DIGEST_A.length;
  assert.equal(
    formatImageTable(images),
    [
      `NAME       PLATFORMS                    ${"DIGEST".padEnd(digestWidth)}   SIZE`,
      `app:v1     linux/amd64,linux/arm64/v8   ${DIGEST_A}   1.5 MiB`,
      "registry.example.com/team/app:latest",
      "  absent, left out by push: linux/s390x",
      `<none>     linux/amd64                  ${"-".padEnd(digestWidth)}   900 B`,
      `app:v25    linux/arm64                  ${DIGEST_A}   2.0 KiB`,
      "  2 layer(s) stored uncompressed: push compresses them, which changes the digest " +
      "(--compression none keeps it)",
      `broken:1   -                            ${DIGEST_B}   -`,
      '  cannot be pushed: manifest names "blobs/sha256/x", which is not in the archive',
      "",
    ].join("\n"),
  );
  assert.equal(formatImageTable([]), "NAME   PLATFORMS   DIGEST   SIZE\n");
});
