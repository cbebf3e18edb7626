/**
 * The registry check of a pull or a copy (`GET /v2/` without authorisation, see
 * `RegistryClient.probe`), sent beside the run's first real requests instead of before them: once
 * per registry of the run's client pool, with the run's retries. It confirms that each host is a
 * registry and, on a registry asking for a token, learns the challenge while the first requests
 * are on their way. A failed check stops the run, and its error is the one to report (a host that
 * is not a registry makes the other requests fail in less telling ways).
 *
 * @module
 */

import type { ClientPool } from "../registry/client_pool.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { Reference } from "../registry/reference.ts";
import { type RequestContext, retrying } from "./retrying_request.ts";

/** A repository of the run and its client. */
export interface RunEndpoint {
  /** The repository's reference. */
  reference: Reference;
  /** Its client. */
  client: RegistryClient;
}

/**
 * Starts checking every registry of `endpoints` that `pool` has not checked yet. The promise
 * settles once all are checked; on the first failure, `abort` is called with its error.
 */
export function startRegistryChecks(
  ctx: RequestContext,
  pool: ClientPool,
  endpoints: readonly RunEndpoint[],
  abort: (reason: unknown) => void,
): Promise<void> {
  const checks = endpoints.map(({ reference, client }) =>
    pool.checkRegistry(
      reference,
      () =>
        retrying(ctx, `registry check of ${reference.registry}`, (signal) => client.probe(signal)),
    )
  );
  const all = Promise.all(checks).then(() => {});
  all.catch(abort);
  return all;
}

/**
 * The error a run that failed with `error` reports: the registry check's, when that failed too
 * (waiting for it to settle).
 */
export async function reportedError(checks: Promise<void>, error: unknown): Promise<unknown> {
  return await checks.then(() => error, (failed: unknown) => failed);
}
