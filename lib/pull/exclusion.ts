/**
 * What a delta bundle leaves out (`pull --exclude-from`): the layers the far side already holds,
 * each with the image whose repository held it there. Two ways to know:
 * - an earlier bundle (`--exclude-from previous.tar`): every layer it stores, and every layer it
 *   left out itself (a delta of a delta: the far side got those before that delta went in);
 * - a mirror the far side keeps and this side can reach (`--exclude-from registry/prefix`): each
 *   layer is looked up (`HEAD`) in the mirror repositories of the images that name it, named
 *   under the prefix as `push --all -r PREFIX` names them.
 *
 * @module
 */

import { PusherError } from "../errors.ts";
import { readArchiveEntries } from "../image/archive_listing.ts";
import type { BlobDescriptor } from "../image/archive_plan.ts";
import { listLayout } from "../image/layout.ts";
import type { OmittedLayer } from "../image/omitted_layers.ts";
import { Redactor } from "../logging/redact.ts";
import { ClientPool } from "../registry/client_pool.ts";
import type { TlsSettings } from "../registry/connect.ts";
import { parseReference } from "../registry/reference.ts";
import { checkPrefix, mirrorTarget, type TargetNaming } from "../sync/target_name.ts";
import { type RequestContext, retrying } from "../transfer/retrying_request.ts";
import { schedule } from "../transfer/scheduler.ts";

/** Layers the far side holds, by digest. */
export type HeldLayers = Map<string, OmittedLayer>;

/** One image of the bundle being written, with the layers its manifests name. */
export interface BundleImage {
  /** Its name in the bundle (`registry/repository:tag`, or `…@sha256:…`). */
  name: string;
  /** Its layers (every platform kept), each once. */
  layers: readonly BlobDescriptor[];
}

/** How to look at a mirror: TLS settings, the run's requests, and how names map under it. */
export interface MirrorLookup extends TlsSettings {
  /** Retries, stall guard, abort and events of the pull. */
  requests: RequestContext;
  /** Keep only the last path segment of a repository under the prefix (`--flatten`). */
  flatten: boolean;
  /** Lookups at once. */
  concurrency: number;
  /** The pull's redaction. */
  redactor?: Redactor;
}

/** Whether `path` names an existing file (an earlier bundle) rather than a registry prefix. */
async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * The layers an earlier bundle stores or leaves out, each with the first image (in the bundle's
 * order) that names it. Layers without a registry digest (docker save's uncompressed tars) can't
 * match a registry's layers and are passed over.
 *
 * @throws {PusherError} kind `input` when the file is no image archive.
 */
export async function layersOfBundle(path: string): Promise<HeldLayers> {
  const held: HeldLayers = new Map();
  for (const listed of await listLayout(await readArchiveEntries(path))) {
    if (listed.resolved instanceof PusherError) continue;
    for (const image of listed.resolved.images) {
      const name = image.names.find((candidate) => /[/:]/.test(candidate));
      for (const layer of image.layers) {
        const digest = layer.storedDigest;
        if (digest === undefined || held.has(digest)) continue;
        const heldBy = layer.omitted?.heldBy ?? name;
        held.set(digest, {
          mediaType: layer.mediaType ?? "",
          digest,
          size: layer.size,
          ...(heldBy !== undefined ? { heldBy } : {}),
        });
      }
    }
  }
  return held;
}

/**
 * The layers of `images` that a mirror under `prefix` already holds: each distinct layer is looked
 * up in the mirror repository of every image naming it, until one has it. A repository the
 * registry refuses to show counts as not holding it.
 *
 * @throws {PusherError} kind `usage` for a bad prefix; the registry's kinds when a lookup fails.
 */
export async function layersInMirror(
  prefix: string,
  images: readonly BundleImage[],
  lookup: MirrorLookup,
): Promise<HeldLayers> {
  const naming: TargetNaming = { prefix: checkPrefix(prefix), flatten: lookup.flatten };
  const namedBy = new Map<string, { layer: BlobDescriptor; names: string[] }>();
  for (const image of images) {
    for (const layer of image.layers) {
      const entry = namedBy.get(layer.digest) ?? { layer, names: [] };
      entry.names.push(image.name);
      namedBy.set(layer.digest, entry);
    }
  }
  const redactor = lookup.redactor ?? new Redactor();
  const mirrors = images.map((image) =>
    parseReference(mirrorTarget(parseReference(image.name), naming))
  );
  const clients = await ClientPool.open(mirrors, lookup, redactor);
  try {
    const found = await schedule(
      [...namedBy.values()].map(({ layer, names }) => ({
        weight: 0,
        run: async (signal: AbortSignal): Promise<OmittedLayer | undefined> => {
          for (const name of names) {
            const mirror = parseReference(mirrorTarget(parseReference(name), naming));
            if (await mirrorHolds(lookup.requests, clients, mirror, layer.digest, signal)) {
              return { ...layer, heldBy: name };
            }
          }
          return undefined;
        },
      })),
      lookup.concurrency,
      lookup.requests.signal,
    );
    return new Map(
      found.flatMap((layer) => layer === undefined ? [] : [[layer.digest, layer] as const]),
    );
  } finally {
    await clients.close();
  }
}

/** Whether the mirror repository has the blob; a refused look counts as no. */
async function mirrorHolds(
  requests: RequestContext,
  clients: ClientPool,
  mirror: ReturnType<typeof parseReference>,
  digest: string,
  signal: AbortSignal,
): Promise<boolean> {
  const client = await clients.client(mirror, "pull", undefined);
  try {
    const status = await retrying(
      { ...requests, signal },
      `HEAD ${digest} in ${mirror.registry}/${mirror.repository}`,
      (attempt) => client.blobExists(digest, attempt),
    );
    return status.exists;
  } catch (error) {
    if (error instanceof PusherError && error.kind === "auth") return false;
    throw error;
  }
}

/**
 * The layers a delta leaves out, from `excludeFrom`: an earlier bundle when it names a file,
 * otherwise a registry prefix the far side mirrors.
 */
export async function heldLayers(
  excludeFrom: string,
  images: readonly BundleImage[],
  lookup: MirrorLookup,
): Promise<HeldLayers> {
  if (await isFile(excludeFrom)) return await layersOfBundle(excludeFrom);
  try {
    checkPrefix(excludeFrom);
  } catch (error) {
    throw new PusherError(
      "usage",
      `--exclude-from ${excludeFrom} is neither a file nor a registry prefix`,
      {
        hint: "name an earlier bundle (previous.tar) or the far side's mirror (registry/prefix)",
        cause: error,
      },
    );
  }
  return await layersInMirror(excludeFrom, images, lookup);
}
