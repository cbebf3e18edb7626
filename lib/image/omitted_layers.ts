/**
 * The record a delta bundle keeps of the layers it leaves out: `omitted-layers.json` at the top of
 * the archive, one entry per layer its manifests name but its `blobs/` lack, each with the image
 * that held the layer on the far side (the name it had in the earlier bundle, or the image whose
 * mirror repository had it). The manifests keep naming the layers, so digests stay as pulled;
 * push checks that the registry holds every left-out layer before it writes any manifest. Only
 * this tool reads a delta: docker, podman and skopeo see an incomplete archive.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import {
  arrayField,
  asObject,
  optionalString,
  parseJsonObject,
  requiredString,
} from "./json_document.ts";
import type { EntryView } from "./types.ts";

/** The top-level file of a delta bundle that lists the layers it leaves out. */
export const OMITTED_LAYERS_FILE = "omitted-layers.json";

/** A layer a delta bundle names but does not hold. */
export interface OmittedLayer {
  /** Media type from the manifest that names it. */
  mediaType: string;
  /** `sha256:<hex>` of the layer as the registry stores it. */
  digest: string;
  /** Size in bytes. */
  size: number;
  /**
   * The image (a full reference, `registry/repository:tag`) whose repository held the layer when
   * the delta was made; on the far side its repository under the push prefix is where the layer
   * can be mounted from.
   */
  heldBy?: string;
}

/** Left-out layers by digest. */
export type OmittedLayers = ReadonlyMap<string, OmittedLayer>;

const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
const encoder = new TextEncoder();

/** The bytes of `omitted-layers.json` for `layers` (in the order given). */
export function encodeOmittedLayers(layers: readonly OmittedLayer[]): Uint8Array {
  return encoder.encode(`${JSON.stringify({ schemaVersion: 1, layers }, null, 1)}\n`);
}

/** Parses `omitted-layers.json`. */
export function parseOmittedLayers(bytes: Uint8Array): Map<string, OmittedLayer> {
  const json = parseJsonObject(bytes, OMITTED_LAYERS_FILE);
  if (json.schemaVersion !== 1) {
    throw new PusherError(
      "input",
      `${OMITTED_LAYERS_FILE} has schemaVersion ${
        JSON.stringify(json.schemaVersion)
      }; this version reads 1`,
      { hint: "push the delta with the version of docker-image-pusher that wrote it, or newer" },
    );
  }
  const layers = new Map<string, OmittedLayer>();
  for (const [i, value] of arrayField(json, "layers", OMITTED_LAYERS_FILE).entries()) {
    const where = `${OMITTED_LAYERS_FILE} entry ${i + 1}`;
    const object = asObject(value, where);
    const digest = requiredString(object, "digest", where);
    const size = object.size;
    if (!SHA256_DIGEST.test(digest)) {
      throw new PusherError("input", `${where} has no sha256 digest`);
    }
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      throw new PusherError("input", `${where} has no valid "size"`);
    }
    const layer: OmittedLayer = {
      mediaType: optionalString(object, "mediaType", where) ?? "",
      digest,
      size,
    };
    const heldBy = optionalString(object, "heldBy", where);
    if (heldBy !== undefined) layer.heldBy = heldBy;
    layers.set(digest, layer);
  }
  return layers;
}

/** The layers the archive leaves out: empty for an archive that is not a delta. */
export async function readOmittedLayers(view: EntryView): Promise<Map<string, OmittedLayer>> {
  if (!view.has(OMITTED_LAYERS_FILE)) return new Map();
  return parseOmittedLayers(await view.read(OMITTED_LAYERS_FILE));
}
