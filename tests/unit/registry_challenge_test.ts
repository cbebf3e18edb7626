import assert from "node:assert/strict";
import { parseChallenges, resolveRealm } from "../../lib/registry/challenge.ts";

Deno.test("a Docker bearer challenge", () => {
  const challenges = parseChallenges(
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",' +
      'scope="repository:library/alpine:pull,push"',
  );
  assert.deepEqual(challenges, [{
    scheme: "bearer",
    params: {
      realm: "https://auth.docker.io/token",
      service: "registry.docker.io",
      scope: "repository:library/alpine:pull,push",
    },
  }]);
});

Deno.test("several challenges joined with commas, schemes and names case-insensitive", () => {
  const challenges = parseChallenges(
    'Basic realm="Registry Realm", BEARER Realm="https://r.example/token", Service=r.example',
  );
  assert.equal(challenges.length, 2);
  assert.deepEqual(challenges[0], { scheme: "basic", params: { realm: "Registry Realm" } });
  assert.deepEqual(challenges[1], {
    scheme: "bearer",
    params: { realm: "https://r.example/token", service: "r.example" },
  });
});

Deno.test("quoted values keep commas, spaces, equals signs and escaped characters", () => {
  const [challenge] = parseChallenges(
    'Bearer realm="https://a.example/t?x=1,y=2", error="insufficient_scope", ' +
      'scope="repository:a/b:pull repository:c/d:pull,push", note="say \\"hi\\" \\\\ bye"',
  );
  assert.ok(challenge !== undefined);
  assert.equal(challenge.params.realm, "https://a.example/t?x=1,y=2");
  assert.equal(challenge.params.error, "insufficient_scope");
  assert.equal(challenge.params.note, 'say "hi" \\ bye');
  assert.equal(challenge.params.scope, "repository:a/b:pull repository:c/d:pull,push");
});

Deno.test("spaces around '=' and empty list elements are tolerated", () => {
  const challenges = parseChallenges(' , Bearer realm = "https://x/t" ,, service = svc , ');
  assert.deepEqual(challenges, [{
    scheme: "bearer",
    params: { realm: "https://x/t", service: "svc" },
  }]);
});

Deno.test("token68 challenges and schemes without parameters", () => {
  const challenges = parseChallenges('Negotiate abc+/def==, Basic, Bearer realm="r"');
  assert.equal(challenges.length, 3);
  assert.deepEqual(challenges[0], { scheme: "negotiate", params: {}, token68: "abc+/def==" });
  assert.deepEqual(challenges[1], { scheme: "basic", params: {} });
  assert.deepEqual(challenges[2], { scheme: "bearer", params: { realm: "r" } });
});

Deno.test("garbage gives no challenges, an unterminated quote ends the value", () => {
  assert.deepEqual(parseChallenges(""), []);
  assert.deepEqual(parseChallenges("=, =;"), []);
  assert.deepEqual(parseChallenges('Bearer realm="https://x/t'), [{
    scheme: "bearer",
    params: { realm: "https://x/t" },
  }]);
});

Deno.test("relative realms resolve against the challenged request; realm queries stay", () => {
  const request = new URL("https://registry.example.com:5443/v2/team/app/blobs/uploads/");
  assert.equal(resolveRealm("/token", request).href, "https://registry.example.com:5443/token");
  assert.equal(
    resolveRealm("auth/token?tenant=7", new URL("https://r.example/v2/")).href,
    "https://r.example/v2/auth/token?tenant=7",
  );
  assert.equal(
    resolveRealm("https://auth.example/token?a=b", request).href,
    "https://auth.example/token?a=b",
  );
});
