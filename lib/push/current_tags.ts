/**
 * What the push's tags point at before it writes anything: one manifest `HEAD` per tag, all sent
 * at the start beside the registry check. A tag that already names the manifest the push would
 * write is not written again, and when every tag does (an unchanged re-push) the push is done.
 *
 * @module
 */

import type { RepositoryClient } from "./clients.ts";
import type { RunContext } from "./context.ts";
import { retrying } from "../transfer/retrying_request.ts";

/** The digest each target's tags point at now; `undefined` for none or when the lookup failed. */
export class CurrentTags {
  readonly #lookups: Map<string, Promise<string | undefined>>;

  private constructor(lookups: Map<string, Promise<string | undefined>>) {
    this.#lookups = lookups;
  }

  /** Sends the lookups (not awaited); a failed one counts as "unknown", never as an error. */
  static start(ctx: RunContext, targets: readonly RepositoryClient[]): CurrentTags {
    const lookups = new Map<string, Promise<string | undefined>>();
    for (const target of targets) {
      for (const tag of target.tags) {
        const lookup = retrying(
          ctx,
          `manifest lookup ${target.name}:${tag}`,
          (signal) => target.client.getManifestDigest(tag, signal),
        ).catch(() => undefined);
        lookups.set(CurrentTags.#key(target, tag), lookup);
      }
    }
    return new CurrentTags(lookups);
  }

  static #key(target: RepositoryClient, tag: string): string {
    return `${target.name}:${tag}`;
  }

  /** The digest `tag` of `target` pointed at when the push started, if known. */
  async digestOf(target: RepositoryClient, tag: string): Promise<string | undefined> {
    return await this.#lookups.get(CurrentTags.#key(target, tag));
  }

  /**
   * Whether every target is tagged, and every tag already names `digest` (so the registry holds
   * that manifest and all it refers to, and nothing is left to write).
   */
  async allPointAt(targets: readonly RepositoryClient[], digest: string): Promise<boolean> {
    for (const target of targets) {
      if (target.tags.length === 0) return false;
      if (target.pinnedDigest !== undefined && target.pinnedDigest !== digest) return false;
      for (const tag of target.tags) {
        if (await this.digestOf(target, tag) !== digest) return false;
      }
    }
    return true;
  }
}
