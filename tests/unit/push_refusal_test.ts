import assert from "node:assert/strict";
import { PusherError } from "../../lib/errors.ts";
import type { ManifestFormat } from "../../lib/options.ts";
import { errorForStatus, parseErrorBody } from "../../lib/registry/errors.ts";
import type { ManifestShape } from "../../lib/push/manifest_shape.ts";
import { decideOnRefusal, ManifestRefused, refusalOf } from "../../lib/push/refusal.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const SWR_TEXT = "Invalid image, fail to parse 'manifest.json'";
const ACR_TEXT = "unknown manifest class for application/vnd.oci.empty.v1+json";

/** The error the registry client makes of an answer to a manifest PUT. */
function answer(status: number, body: string, contentType = "application/json") {
  return errorForStatus(status, parseErrorBody(body, contentType), null, "pushing manifest x:1");
}

function json(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message }] });
}

Deno.test("refusal: SWR's answer to OCI types, as JSON or plain text, and 415 refuse OCI", () => {
  const swrJson = answer(400, json("MANIFEST_INVALID", SWR_TEXT));
  const swrPlain = answer(400, SWR_TEXT, "text/plain");
  for (const error of [swrJson, swrPlain, answer(415, "")]) {
    assert.equal(refusalOf(error, OCI_MANIFEST), "oci-media-types");
    assert.equal(refusalOf(error, OCI_INDEX), "oci-media-types");
    assert.equal(
      refusalOf(error, DOCKER_MANIFEST),
      undefined,
      "a Docker manifest has no OCI to drop",
    );
  }
});

Deno.test("refusal: ACR's unknown manifest class refuses an attestation manifest", () => {
  assert.equal(
    refusalOf(answer(400, json("MANIFEST_INVALID", ACR_TEXT)), OCI_MANIFEST),
    "attestation-manifest",
  );
  assert.equal(
    refusalOf(answer(400, ACR_TEXT, "text/plain"), DOCKER_MANIFEST),
    "attestation-manifest",
  );
});

Deno.test("refusal: other failures are not refusals of the shape", () => {
  const others = [
    answer(400, json("MANIFEST_INVALID", "manifest invalid")),
    answer(400, json("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry")),
    answer(404, json("NAME_UNKNOWN", SWR_TEXT)),
    answer(401, ""),
    answer(503, SWR_TEXT, "text/plain"),
  ];
  for (const error of others) {
    assert.equal(refusalOf(error, OCI_MANIFEST), undefined, error.message);
  }
  assert.equal(refusalOf(new PusherError("registry", SWR_TEXT), OCI_MANIFEST), undefined);
  assert.equal(refusalOf(new Error(SWR_TEXT), OCI_MANIFEST), undefined);
});

Deno.test("refusal: decideOnRefusal, the table", () => {
  const swr = new ManifestRefused(
    "oci-media-types",
    "sha256:aa",
    answer(400, json("MANIFEST_INVALID", SWR_TEXT)),
  );
  const acr = new ManifestRefused(
    "attestation-manifest",
    "sha256:bb",
    answer(400, json("MANIFEST_INVALID", ACR_TEXT)),
  );
  const asIs: ManifestShape = { family: "as-is", dropAttestations: false };
  const oci: ManifestShape = { family: "oci", dropAttestations: false };
  const docker: ManifestShape = { family: "docker", dropAttestations: true };
  const dropped: ManifestShape = { family: "as-is", dropAttestations: true };
  const rows: Array<[ManifestRefused, ManifestShape, ManifestFormat, number, string]> = [
    [swr, asIs, "auto", 2, "retry docker drop"],
    [swr, asIs, "auto", 0, "retry docker drop"],
    [swr, dropped, "auto", 0, "retry docker drop"],
    [swr, oci, "oci", 2, "fail --format docker"],
    [swr, docker, "docker", 0, "fail answer"],
    [acr, asIs, "auto", 2, "retry as-is drop"],
    [acr, oci, "oci", 1, "retry oci drop"],
    [acr, dropped, "auto", 0, "fail answer"],
    [acr, asIs, "auto", 0, "fail answer"],
    [acr, docker, "docker", 0, "fail answer"],
  ];
  for (const [refused, shape, format, attestations, expected] of rows) {
    const decision = decideOnRefusal(refused, shape, format, attestations);
    const found = decision.action === "retry"
      ? `retry ${decision.shape.family} ${decision.shape.dropAttestations ? "drop" : "keep"}`
      : decision.error === refused.answer
      ? "fail answer"
      : `fail ${decision.error.hint}`;
    const label = `${refused.refusal} ${JSON.stringify(shape)} ${format} ${attestations}`;
    assert.equal(found.replace("push with ", ""), expected, label);
  }
  const failed = decideOnRefusal(swr, oci, "oci", 0);
  assert.equal(failed.action, "fail");
  if (failed.action === "fail") {
    assert.equal(failed.error.kind, "registry");
    assert.match(failed.error.message, /fail to parse 'manifest\.json'.*refuses OCI media types/);
    assert.doesNotMatch(failed.error.message, /\n/);
  }
});
