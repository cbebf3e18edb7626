/**
 * The check before a delta bundle is pushed: every layer the archive leaves out must already be
 * in the registry, in the image's target repository or in the repository under the prefix of the
 * image that held it when the delta was made (`heldBy` in `omitted-layers.json`). The check only
 * looks (`HEAD`); when a layer is missing anywhere, nothing is pushed and the error lists each
 * missing layer with the images that need it. When all are there, those found in another
 * repository are mounted into the target repository, so the pushes find them.
 *
 * The error is of kind `input` (exit code 3): the archive cannot be applied to this registry as
 * it stands — the bundle the delta was made against has to go in first.
 *
 * @module
 */

import type { Credentials } from "../credentials/credentials.ts";
import { PusherError } from "../errors.ts";
import type { Redactor } from "../logging/redact.ts";
import type { RegistryClient, RepositoryAccess } from "../registry/client.ts";
import { connectClient, openTransport, type TlsSettings } from "../registry/connect.ts";
import type { Transport } from "../registry/http.ts";
import { parseReference, type Reference } from "../registry/reference.ts";
import { mirrorTarget, type TargetNaming } from "../sync/target_name.ts";
import { type RequestContext, retrying } from "../transfer/retrying_request.ts";
import { schedule } from "../transfer/scheduler.ts";
import type { BundleImage } from "./bundle_images.ts";

/** What the check needs of the push. */
export interface DeltaCheckSettings extends TlsSettings {
  /** Retries, stall guard, abort and events. */
  requests: RequestContext;
  /** How names map under the prefix (the push's). */
  naming: TargetNaming;
  /** Credentials for the prefix's registry, if given. */
  credentials: Credentials | undefined;
  /** The push's redaction. */
  redactor: Redactor;
  /** Lookups at once. */
  concurrency: number;
  /** Look only: mount nothing. */
  dryRun: boolean;
}

/** One left-out layer one image needs in its target repository. */
interface Need {
  digest: string;
  image: BundleImage;
  /** The target repository. */
  target: Reference;
  /** The repository of the image that held it, when another. */
  holder: Reference | undefined;
}

/** Where a needed layer was found. */
type Found = "target" | "holder" | "missing";

/** The left-out layers each placeable image needs, one entry per image and layer. */
function needs(images: readonly BundleImage[], naming: TargetNaming): Need[] {
  const list: Need[] = [];
  for (const image of images) {
    const first = image.targets[0];
    if (image.selection === undefined || first === undefined) continue;
    const target = parseReference(first);
    const seen = new Set<string>();
    for (const layer of image.selection.images.flatMap((child) => child.layers)) {
      const omitted = layer.omitted;
      if (omitted === undefined || seen.has(omitted.digest)) continue;
      seen.add(omitted.digest);
      const holder = holderOf(omitted.heldBy, naming);
      const sameRepository = holder !== undefined && holder.repository === target.repository &&
        holder.apiBase.href === target.apiBase.href;
      list.push({
        digest: omitted.digest,
        image,
        target,
        holder: sameRepository ? undefined : holder,
      });
    }
  }
  return list;
}

/** The repository under the prefix of the image that held a layer, when it can be named. */
function holderOf(heldBy: string | undefined, naming: TargetNaming): Reference | undefined {
  if (heldBy === undefined) return undefined;
  try {
    return parseReference(mirrorTarget(parseReference(heldBy), naming));
  } catch {
    return undefined;
  }
}

/** Clients per repository over one transport, made on first use. */
class Clients {
  readonly #clients = new Map<string, Promise<RegistryClient>>();

  constructor(
    readonly transport: Transport,
    readonly settings: DeltaCheckSettings,
  ) {}

  /** The client of `reference`'s repository with `access`. */
  client(reference: Reference, access: RepositoryAccess): Promise<RegistryClient> {
    const key = `${access} ${reference.apiBase.href} ${reference.repository}`;
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = connectClient(
        reference,
        this.settings.credentials,
        this.transport,
        access,
        this.settings.redactor,
      );
      this.#clients.set(key, client);
    }
    return client;
  }
}

/** Whether a repository has a blob; a look the registry refuses counts as no. */
async function holds(
  clients: Clients,
  reference: Reference,
  digest: string,
  signal: AbortSignal,
): Promise<boolean> {
  const client = await clients.client(reference, "pull");
  try {
    const status = await retrying(
      { ...clients.settings.requests, signal },
      `HEAD ${digest} in ${reference.repository}`,
      (attempt) => client.blobExists(digest, attempt),
    );
    return status.exists;
  } catch (error) {
    if (error instanceof PusherError && error.kind === "auth") return false;
    throw error;
  }
}

/** The one-line refusal listing each missing layer and the targets that need it. */
function missingError(missing: readonly Need[], registry: string): PusherError {
  const byDigest = new Map<string, string[]>();
  for (const need of missing) {
    const targets = byDigest.get(need.digest) ?? [];
    targets.push(need.image.targets[0] ?? need.image.label);
    byDigest.set(need.digest, targets);
  }
  const list = [...byDigest].map(([digest, targets]) => `${digest} (for ${targets.join(", ")})`);
  return new PusherError(
    "input",
    `${registry} lacks ${byDigest.size} layer(s) the delta archive leaves out, so nothing was ` +
      `pushed: ${list.join("; ")}`,
    {
      hint: "push the bundle this delta was made against first (or a full bundle: pull without " +
        "--exclude-from)",
    },
  );
}

/**
 * Checks that the registry holds every layer the bundle's images need and the archive leaves
 * out, then (unless a dry run) mounts the ones held by another repository into the target
 * repositories. Does nothing for a bundle that is not a delta.
 *
 * @throws {PusherError} kind `input` listing the missing layers, before anything is written; the
 * registry's kinds when a lookup fails.
 */
export async function checkOmittedLayers(
  images: readonly BundleImage[],
  settings: DeltaCheckSettings,
): Promise<void> {
  const needed = needs(images, settings.naming);
  if (needed.length === 0) return;
  const references = needed.flatMap((need) => [
    need.target,
    ...(need.holder !== undefined ? [need.holder] : []),
  ]);
  const transport = await openTransport(references, settings, settings.redactor);
  const clients = new Clients(transport, settings);
  try {
    const found = await schedule(
      needed.map((need) => ({
        weight: 0,
        run: async (signal: AbortSignal): Promise<Found> => {
          if (await holds(clients, need.target, need.digest, signal)) return "target";
          if (need.holder === undefined) return "missing";
          return await holds(clients, need.holder, need.digest, signal) ? "holder" : "missing";
        },
      })),
      settings.concurrency,
      settings.requests.signal,
    );
    const missing = needed.filter((_, index) => found[index] === "missing");
    if (missing.length > 0) throw missingError(missing, needed[0]?.target.registry ?? "");
    if (settings.dryRun) return;
    const mounts = needed.filter((_, index) => found[index] === "holder");
    await schedule(
      mounts.map((need) => ({
        weight: 0,
        run: (signal: AbortSignal) => mount(clients, need, signal),
      })),
      settings.concurrency,
      settings.requests.signal,
    );
  } finally {
    transport.close();
  }
}

/** Mounts a needed layer from the repository that holds it into the target repository. */
async function mount(clients: Clients, need: Need, signal: AbortSignal): Promise<void> {
  const holder = need.holder;
  if (holder === undefined) throw new PusherError("internal", `${need.digest} has no holder`);
  const client = await clients.client(need.target, "push");
  const mounted = await retrying(
    { ...clients.settings.requests, signal },
    `mount ${need.digest}`,
    (attempt) => client.mountBlob(need.digest, holder.repository, attempt),
  );
  if (!mounted) {
    throw new PusherError(
      "registry",
      `${need.target.registry} would not mount ${need.digest} from ${holder.repository} into ` +
        `${need.target.repository}, so nothing was pushed`,
      { hint: "the account needs pull access to both repositories" },
    );
  }
}
