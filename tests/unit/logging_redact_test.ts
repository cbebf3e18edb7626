import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { formatRecord } from "../../lib/logging/logger.ts";
import { Redactor } from "../../lib/logging/redact.ts";

Deno.test("each redactor masks only the secrets registered with it", () => {
  const first = new Redactor();
  const second = new Redactor();
  first.addSecret("first-run-password");
  second.addSecret("second-run-password");
  const text = "first-run-password second-run-password";
  assert.equal(first.redact(text), "*** second-run-password");
  assert.equal(second.redact(text), "first-run-password ***");
});

Deno.test("credentials register their password or identity token, plain and URL-encoded", () => {
  const redactor = new Redactor();
  redactor.addCredentials({ username: "alice", password: "pa ss/word+1" });
  redactor.addCredentials({ identityToken: "refresh-abc-123" });
  redactor.addCredentials({ anonymous: true });
  assert.equal(
    redactor.redact("alice pa ss/word+1 pa%20ss%2Fword%2B1 refresh-abc-123"),
    "alice *** *** ***",
  );
  redactor.addSecret("abc");
  assert.equal(redactor.redact("abc"), "abc", "values shorter than 4 characters are not secrets");
});

Deno.test("URLs in text show query values only for allow-listed parameters, and no user info", () => {
  const redactor = new Redactor();
  assert.equal(
    redactor.redact(
      "PUT https://r.example/v2/a/blobs/uploads/1?_state=s3cr3t&digest=sha256:ab failed",
    ),
    "PUT https://r.example/v2/a/blobs/uploads/1?_state=…&digest=sha256:ab failed",
  );
  assert.equal(
    redactor.redact("GET https://bob:hunter22@auth.example/token?service=s&account=bob → 200"),
    "GET https://auth.example/token?service=s&account=… → 200",
  );
  assert.equal(
    redactor.redact("redirected to https://bucket.example/blob?X-Amz-Signature=f00d&X-Amz-Date=1"),
    "redirected to https://bucket.example/blob?X-Amz-Signature=…&X-Amz-Date=…",
  );
  assert.equal(
    redactor.redact("registry http://127.0.0.1:5000 answered"),
    "registry http://127.0.0.1:5000 answered",
    "a URL with nothing to hide is shown as written",
  );
});

Deno.test("secret-shaped values are masked without being registered", () => {
  const redactor = new Redactor();
  const cases: ReadonlyArray<readonly [string, string]> = [
    ["Authorization: Basic YWxpY2U6cGFzc3dvcmQ=", "Authorization: Basic ***"],
    ["authorization=Bearer abc.def", "authorization=Bearer ***"],
    ["sent Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", "sent Bearer ***"],
    ["proxy socks5://user:pw@proxy.example:1080", "proxy socks5://user:***@proxy.example:1080"],
    [
      '{"token":"t0k3n","access_token":"a","Secret":"s"}',
      '{"token":"***","access_token":"***","Secret":"***"}',
    ],
    [
      "grant_type=password&password=p4ss&refresh_token=r3fr",
      "grant_type=password&password=***&refresh_token=***",
    ],
  ];
  for (const [text, shown] of cases) assert.equal(redactor.redact(text), shown, text);
});

Deno.test("the logger formats every line with the run's redactor", () => {
  const redactor = new Redactor();
  redactor.addSecret("logged-secret");
  const record: LogRecord = {
    category: ["docker-image-pusher", "test"],
    level: "warning",
    message: ["the password is ", "logged-secret", " at https://r.example/v2/?token=abc"],
    rawMessage: "",
    timestamp: 0,
    properties: {},
  };
  assert.equal(
    formatRecord(record, redactor),
    "warning: the password is *** at https://r.example/v2/?token=…",
  );
});
