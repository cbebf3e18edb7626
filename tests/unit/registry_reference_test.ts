import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import {
  formatReference,
  isValidRepository,
  isValidTag,
  parseReference,
  type Reference,
} from "../../lib/registry/reference.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;

interface Expected {
  registry: string;
  api: string;
  repository: string;
  tag?: string;
  digest?: string;
  insecure?: boolean;
}

function check(input: string, expected: Expected): void {
  const reference: Reference = parseReference(input);
  assert.equal(reference.registry, expected.registry, `registry of ${input}`);
  assert.equal(reference.apiBase.href, expected.api, `apiBase of ${input}`);
  assert.equal(reference.repository, expected.repository, `repository of ${input}`);
  assert.equal(reference.tag, expected.tag, `tag of ${input}`);
  assert.equal(reference.digest, expected.digest, `digest of ${input}`);
  assert.equal(reference.insecureHttp, expected.insecure ?? false, `insecureHttp of ${input}`);
}

function rejects(input: string, fragment: RegExp): void {
  assert.throws(() => parseReference(input), (error: unknown) => {
    assert.ok(error instanceof PusherError, `${input} should throw a PusherError`);
    assert.equal(error.kind, "usage");
    assert.match(error.message, fragment);
    return true;
  }, `${input} should be rejected`);
}

Deno.test("docker hub names get docker.io, library/ and latest", () => {
  const hub = { registry: "docker.io", api: "https://registry-1.docker.io/" };
  check("ubuntu", { ...hub, repository: "library/ubuntu", tag: "latest" });
  check("ubuntu:22.04", { ...hub, repository: "library/ubuntu", tag: "22.04" });
  check("team/app:v1", { ...hub, repository: "team/app", tag: "v1" });
  check("docker.io/ubuntu", { ...hub, repository: "library/ubuntu", tag: "latest" });
  check("index.docker.io/team/app", { ...hub, repository: "team/app", tag: "latest" });
  check("registry-1.docker.io/alpine:3", { ...hub, repository: "library/alpine", tag: "3" });
  check("docker.io/library/alpine", { ...hub, repository: "library/alpine", tag: "latest" });
  check("a/b/c/d", { ...hub, repository: "a/b/c/d", tag: "latest" });
});

Deno.test("the first component is a registry with a dot, a port, localhost or capitals", () => {
  check("ghcr.io/owner/app:1.2.3", {
    registry: "ghcr.io",
    api: "https://ghcr.io/",
    repository: "owner/app",
    tag: "1.2.3",
  });
  check("registry.example.com:5443/team/app", {
    registry: "registry.example.com:5443",
    api: "https://registry.example.com:5443/",
    repository: "team/app",
    tag: "latest",
  });
  check("myhost:5000/app", {
    registry: "myhost:5000",
    api: "https://myhost:5000/",
    repository: "app",
    tag: "latest",
  });
  check("Registry/app", {
    registry: "registry",
    api: "https://registry/",
    repository: "app",
    tag: "latest",
  });
  check("foo/bar", {
    registry: "docker.io",
    api: "https://registry-1.docker.io/",
    repository: "foo/bar",
    tag: "latest",
  });
});

Deno.test("loopback hosts in bare references are spoken to over plain HTTP", () => {
  check("localhost/app", {
    registry: "localhost",
    api: "http://localhost/",
    repository: "app",
    tag: "latest",
    insecure: true,
  });
  check("localhost:5000/team/app:dev", {
    registry: "localhost:5000",
    api: "http://localhost:5000/",
    repository: "team/app",
    tag: "dev",
    insecure: true,
  });
  check("127.0.0.1:5000/app", {
    registry: "127.0.0.1:5000",
    api: "http://127.0.0.1:5000/",
    repository: "app",
    tag: "latest",
    insecure: true,
  });
  check("[::1]:5000/app", {
    registry: "[::1]:5000",
    api: "http://[::1]:5000/",
    repository: "app",
    tag: "latest",
    insecure: true,
  });
});

Deno.test("digests, with and without a tag", () => {
  check(`alpine@${DIGEST}`, {
    registry: "docker.io",
    api: "https://registry-1.docker.io/",
    repository: "library/alpine",
    digest: DIGEST,
  });
  check(`ghcr.io/o/app:v1@${DIGEST}`, {
    registry: "ghcr.io",
    api: "https://ghcr.io/",
    repository: "o/app",
    tag: "v1",
    digest: DIGEST,
  });
});

Deno.test("URL references choose the scheme and keep the port", () => {
  check("https://registry.example.com/team/app:v2", {
    registry: "registry.example.com",
    api: "https://registry.example.com/",
    repository: "team/app",
    tag: "v2",
  });
  check("http://127.0.0.1:5000/app", {
    registry: "127.0.0.1:5000",
    api: "http://127.0.0.1:5000/",
    repository: "app",
    tag: "latest",
    insecure: true,
  });
  check("https://localhost:5443/app:1", {
    registry: "localhost:5443",
    api: "https://localhost:5443/",
    repository: "app",
    tag: "1",
  });
  check("HTTPS://Registry.Example.com:443/a/b", {
    registry: "registry.example.com",
    api: "https://registry.example.com/",
    repository: "a/b",
    tag: "latest",
  });
  check("https://docker.io/alpine", {
    registry: "docker.io",
    api: "https://registry-1.docker.io/",
    repository: "library/alpine",
    tag: "latest",
  });
  check(`https://r.example.com/app@${DIGEST}`, {
    registry: "r.example.com",
    api: "https://r.example.com/",
    repository: "app",
    digest: DIGEST,
  });
});

Deno.test("separators in repository names follow the distribution grammar", () => {
  for (const name of ["a.b", "a_b", "a__b", "a-b", "a--b", "a0/b1.c2", "x-y_z.w/q"]) {
    assert.equal(isValidRepository(name), true, name);
  }
  for (const name of ["a___b", "-a", "a-", "a.", ".a", "a..b", "a/", "/a", "a//b", "A"]) {
    assert.equal(isValidRepository(name), false, name);
  }
  assert.equal(isValidRepository("a".repeat(255)), true);
  assert.equal(isValidRepository("a".repeat(256)), false);
});

Deno.test("tag grammar", () => {
  for (const tag of ["latest", "v1.2.3", "1", "_x", "A-b_c.D", "a".repeat(128)]) {
    assert.equal(isValidTag(tag), true, tag);
  }
  for (const tag of ["", ".x", "-x", "a/b", "a+b", "a".repeat(129)]) {
    assert.equal(isValidTag(tag), false, tag);
  }
});

Deno.test("bad references are usage errors naming the value", () => {
  rejects("", /empty/);
  rejects("Ubuntu", /"Ubuntu".*lower-case/);
  rejects("ghcr.io/Owner/app", /"ghcr.io\/Owner\/app".*lower-case/);
  rejects("app:.bad", /"\.bad" is not a valid tag/);
  rejects("app:a/b", /not a valid/);
  rejects(`app:${"x".repeat(129)}`, /not a valid tag/);
  rejects("app@sha256:abc", /"sha256:abc" is not a valid digest/);
  rejects(`app@sha256:${"AB".repeat(32)}`, /not a sha256 digest/);
  rejects("ghcr.io/", /empty/);
  rejects("ghcr.io//app", /empty path component/);
  rejects("ghcr.io/a__-b", /"a__-b"/);
  rejects("-host.io/app", /not a valid registry host/);
  rejects("host.io:99999/app", /port 99999 is out of range/);
  rejects("ftp://host/app", /unsupported scheme "ftp:\/\/"/);
  rejects("https://host/app?x=1", /query or fragment/);
  rejects("https://host/", /empty/);
  rejects(`x/${"a".repeat(256)}`, /longer than 255/);
});

Deno.test("credentials in a URL are refused without echoing the password", () => {
  assert.throws(() => parseReference("https://user:hunter2@registry.example.com/app"), (error) => {
    assert.ok(error instanceof PusherError);
    assert.equal(error.kind, "usage");
    assert.doesNotMatch(error.message, /hunter2/);
    assert.match(error.message, /registry\.example\.com\/app/);
    return true;
  });
});

Deno.test("formatReference writes registry/repository[:tag][@digest]", () => {
  assert.equal(formatReference(parseReference("alpine")), "docker.io/library/alpine:latest");
  assert.equal(
    formatReference(parseReference(`localhost:5000/a/b:v1@${DIGEST}`)),
    `localhost:5000/a/b:v1@${DIGEST}`,
  );
  assert.equal(formatReference(parseReference(`ghcr.io/o/x@${DIGEST}`)), `ghcr.io/o/x@${DIGEST}`);
});
