import assert from "node:assert/strict";
import { EXIT_CODES, PusherError } from "../../lib/errors.ts";
import {
  deniedLookupError,
  errorForStatus,
  hasErrorCode,
  needsChunkedUpload,
  parseErrorBody,
  parseRetryAfter,
  RegistryError,
} from "../../lib/registry/errors.ts";
import { isOutage, isRetryable, retryAfterOf } from "../../lib/transfer/retry.ts";
import { networkError } from "../../lib/registry/network_error.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");

Deno.test("Retry-After in seconds and as an HTTP date", () => {
  assert.equal(parseRetryAfter("120", NOW), 120_000);
  assert.equal(parseRetryAfter(" 0 ", NOW), 0);
  assert.equal(parseRetryAfter("Sun, 01 Mar 2026 12:00:30 GMT", NOW), 30_000);
  assert.equal(parseRetryAfter("Sunday, 01-Mar-26 12:01:00 GMT", NOW), 60_000);
  assert.equal(parseRetryAfter("Sun Mar  1 12:00:05 2026", NOW), 5_000, "asctime");
  assert.equal(parseRetryAfter("Sun, 99 Foo 2026 GMT", NOW), undefined);
  assert.equal(parseRetryAfter("Sun, 01 Mar 2026 11:00:00 GMT", NOW), 0, "past dates mean now");
  assert.equal(parseRetryAfter("-5", NOW), undefined);
  assert.equal(parseRetryAfter("1.5", NOW), undefined);
  assert.equal(parseRetryAfter("soon", NOW), undefined);
  assert.equal(parseRetryAfter("", NOW), undefined);
  assert.equal(parseRetryAfter(null, NOW), undefined);
});

Deno.test("registry JSON error bodies give codes and one line", () => {
  const summary = parseErrorBody(
    JSON.stringify({
      errors: [
        { code: "MANIFEST_BLOB_UNKNOWN", message: "blob unknown to registry", detail: "sha256:ab" },
        { code: "NAME_UNKNOWN", message: "repository name not known\nto registry" },
      ],
    }),
    "application/json; charset=utf-8",
  );
  assert.deepEqual(summary.codes, ["MANIFEST_BLOB_UNKNOWN", "NAME_UNKNOWN"]);
  assert.equal(
    summary.message,
    "MANIFEST_BLOB_UNKNOWN blob unknown to registry (sha256:ab); " +
      "NAME_UNKNOWN repository name not known to registry",
  );
  const structured = parseErrorBody(
    '{"errors":[{"code":"DENIED","message":"denied","detail":[{"Type":"repository"}]}]}',
    null,
  );
  assert.equal(structured.message, 'DENIED denied ([{"Type":"repository"}])');
});

Deno.test("HTML from proxies, plain text, odd JSON and empty bodies", () => {
  const html = parseErrorBody(
    "<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413" +
      "</h1></center><hr><center>nginx</center></body></html>",
    "text/html",
  );
  assert.deepEqual(html, { codes: [], message: "413 Request Entity Too Large" });
  const noTitle = parseErrorBody(
    "<!DOCTYPE html><body><script>x()</script><p>Bad &amp; gateway</p></body>",
    null,
  );
  assert.equal(noTitle.message, "Bad & gateway");
  assert.equal(
    parseErrorBody("Client sent an HTTP request to an HTTPS server.\n", "text/plain").message,
    "Client sent an HTTP request to an HTTPS server.",
  );
  assert.equal(parseErrorBody('{"message":"rate limited"}', null).message, "rate limited");
  assert.equal(parseErrorBody("{not json", null).message, "{not json");
  assert.deepEqual(parseErrorBody("  ", null), { codes: [], message: "" });
  assert.ok(parseErrorBody("x".repeat(1000), null).message.length <= 300);
});

function statusError(status: number, body = "", retryAfter: string | null = null): RegistryError {
  return errorForStatus(status, parseErrorBody(body, null), retryAfter, "pushing x", NOW);
}

Deno.test("status mapping: kinds, retryability, chunking, Retry-After", () => {
  const unavailable = statusError(503, "", "7");
  assert.equal(unavailable.kind, "network");
  assert.equal(unavailable.retryable, true);
  assert.equal(unavailable.retryAfterMs, 7000);
  assert.equal(isRetryable(unavailable), true);
  assert.equal(retryAfterOf(unavailable), 7000);
  assert.equal(unavailable.exitCode, EXIT_CODES.network);
  for (const status of [408, 429, 500, 502, 504]) {
    assert.equal(statusError(status).retryable, true, String(status));
  }
  assert.equal(statusError(501).retryable, false);
  const limited = statusError(400, '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow"}]}');
  assert.equal(limited.retryable, true);
  // Down, restarting or overloaded: waited for by time; the rest are failures of the request.
  for (const status of [429, 502, 503, 504]) {
    assert.equal(statusError(status).outage, true, String(status));
    assert.equal(isOutage(statusError(status)), true, String(status));
  }
  assert.equal(limited.outage, true);
  for (const status of [408, 500, 501, 404]) {
    assert.equal(statusError(status).outage, false, String(status));
  }

  const unknown = statusError(404, '{"errors":[{"code":"NAME_UNKNOWN","message":"nope"}]}');
  assert.equal(unknown.kind, "registry");
  assert.equal(unknown.retryable, false);
  assert.equal(hasErrorCode(unknown, "NAME_UNKNOWN"), true);
  assert.match(unknown.message, /^pushing x failed with HTTP 404: NAME_UNKNOWN nope$/);
  assert.match(unknown.hint ?? "", /create the repository/);

  const digest = statusError(400, '{"errors":[{"code":"DIGEST_INVALID","message":"bad"}]}');
  assert.equal(digest.kind, "verify");
  assert.equal(digest.retryable, false);
  const manifest = statusError(400, '{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}');
  assert.equal(manifest.kind, "registry");

  for (const status of [411, 413]) {
    const large = statusError(status, "<html><title>too big</title></html>");
    assert.equal(large.needsChunking, true);
    assert.equal(needsChunkedUpload(large), true);
    assert.equal(large.status, status);
    assert.equal(large.retryable, false);
  }
  assert.equal(needsChunkedUpload(statusError(400)), false);

  assert.equal(statusError(403).kind, "auth");
  assert.match(statusError(405).hint ?? "", /refuses pushes/);
  assert.match(
    statusError(400, "Client sent an HTTP request to an HTTPS server.").hint ?? "",
    /https:\/\//,
  );
  assert.ok(statusError(418) instanceof PusherError);
  assert.equal(isRetryable(new Error("x")), false);
  assert.equal(retryAfterOf("x"), undefined);
});

Deno.test("connection failures become one-line network errors", () => {
  const url = new URL("https://r.example:5443/v2/a/blobs/uploads/x?_state=SECRET");
  const wrap = (message: string): Error =>
    new TypeError("fetch failed", {
      cause: new Error(
        `error sending request for url (${url.href}): client error (Connect): ${message}`,
      ),
    });
  const tls = networkError(wrap("invalid peer certificate: UnknownIssuer"), "PATCH", url);
  assert.ok(tls instanceof RegistryError);
  assert.equal(tls.kind, "network");
  assert.equal(tls.retryable, false);
  assert.match(tls.message, /TLS certificate of r\.example:5443 was rejected.*UnknownIssuer/);
  assert.match(tls.hint ?? "", /--ca-cert/);
  assert.match(tls.hint ?? "", /--skip-tls/);
  assert.doesNotMatch(tls.message, /SECRET/);

  const nodeTls = networkError(
    Object.assign(new Error("unable to verify the first certificate"), {
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    }),
    "GET",
    url,
  );
  assert.match(nodeTls.message, /certificate/);

  const plain = networkError(
    wrap("received corrupt message of type InvalidContentType"),
    "GET",
    url,
  );
  assert.match((plain as RegistryError).hint ?? "", /http:\/\//);

  const refused = networkError(
    wrap("tcp connect error: Connection refused (os error 111)"),
    "GET",
    url,
  );
  assert.match(refused.message, /connection to r\.example:5443 was refused/);
  assert.equal((refused as RegistryError).retryable, true);
  assert.equal((refused as RegistryError).outage, true, "nothing listens: the registry is out");

  const dns = networkError(wrap("dns error: failed to lookup address information"), "GET", url);
  assert.match(dns.message, /cannot resolve registry host r\.example/);
  assert.equal((dns as RegistryError).retryable, false);

  const reset = networkError(wrap("connection reset by peer"), "PATCH", url);
  assert.equal((reset as RegistryError).retryable, true);
  assert.equal((reset as RegistryError).outage, false, "a cut request counts as a failure");
  assert.doesNotMatch(reset.message, /SECRET/);
  assert.match(reset.message, /_state=…/);

  const abort = new DOMException("aborted", "AbortError");
  assert.equal(networkError(abort, "GET", url), abort);
});

Deno.test("a denied blob lookup names the namespace to create and the permission to grant", () => {
  const cases: ReadonlyArray<[string, string | undefined, RegExp, RegExp]> = [
    [
      "team/app",
      "bob",
      /the namespace "team" does not exist there, or the account "bob" may not push to it$/,
      /^create the namespace "team" in acr\.example, or grant the account "bob" push permission on team\/app$/,
    ],
    [
      "org/sub/app",
      undefined,
      /the namespace "org\/sub" does not exist there, or anonymous users may not push to it$/,
      /^create the namespace "org\/sub" in acr\.example, or log in with -u\/-p as an account that may push to org\/sub\/app$/,
    ],
    [
      "app",
      "bob",
      /: the account "bob" may not push to app$/,
      /^grant the account "bob" push permission on app$/,
    ],
  ];
  for (const [repository, account, message, hint] of cases) {
    const error = deniedLookupError({ registry: "acr.example", repository, account });
    assert.equal(error.kind, "auth");
    assert.equal(error.exitCode, EXIT_CODES.auth);
    assert.equal(error.status, 403);
    assert.match(
      error.message,
      /^acr\.example denied access to .+ when looking up a blob \(HTTP 403\)/,
    );
    assert.match(error.message, message, repository);
    assert.match(error.hint ?? "", hint, repository);
  }
});
