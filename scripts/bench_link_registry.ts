/**
 * The far registries of the long-link table (see {@link ./bench_long_link.ts}): a real
 * Distribution registry behind a delay proxy, in one of three auth modes —
 *
 * - `plain`: plain HTTP, no auth;
 * - `token-elsewhere`: bearer tokens from a token server behind its own delay proxy, an auth host
 *   apart from the registry (Docker Hub's auth.docker.io, Aliyun's dockerauth);
 * - `token-same-host`: bearer tokens served on the registry's own host: nginx serves `/v2/` from
 *   the registry and `/token` from the token server behind one delay proxy, the realm naming that
 *   proxy (Harbor's `/service/token`, GHCR, Quay, Gitea, Nexus), so a client can fetch its token
 *   over a connection it already has with the registry.
 *
 * @module
 */

import { type DelayProxy, startDelayProxy } from "../tests/helpers/delay_proxy.ts";
import { type NginxProxy, startNginx } from "../tests/helpers/nginx.ts";
import { startRegistry, type TestRegistry, type Users } from "../tests/helpers/registry.ts";
import { freePort } from "./distribution_config.ts";

/** How a far registry authorises, and where its token server is. */
export type LinkAuth = "plain" | "token-elsewhere" | "token-same-host";
/** Every auth mode, in table order. */
export const LINK_AUTHS: readonly LinkAuth[] = ["plain", "token-elsewhere", "token-same-host"];

/** A registry (and its token server, if any) behind delay proxies. */
export interface FarRegistry extends AsyncDisposable {
  /** The registry itself (its `host` reaches it without the delay). */
  readonly registry: TestRegistry;
  /** The proxy in front of the registry; its host is how the commands reach the registry. */
  readonly proxy: DelayProxy;
  /** The token server's own proxy (`token-elsewhere` only). */
  readonly tokenProxy?: DelayProxy;
  /** The nginx serving both the registry and the token server (`token-same-host` only). */
  readonly nginx?: NginxProxy;
  /** Stops the proxies, nginx and the registry. */
  stop(): Promise<void>;
}

/**
 * Starts a registry in `auth` mode behind a delay proxy of `delayMs` each way; `users` are the
 * token server's accounts (ignored on plain HTTP).
 */
export async function startFarRegistry(
  auth: LinkAuth,
  delayMs: number,
  users: Users,
): Promise<FarRegistry> {
  switch (auth) {
    case "plain": {
      const registry = await startRegistry();
      return farRegistry(registry, startDelayProxy({ upstream: registry.host, delayMs }));
    }
    case "token-elsewhere": {
      let tokenProxy: DelayProxy | undefined;
      const registry = await startRegistry({
        token: {
          users,
          realmHost: (own) => {
            tokenProxy = startDelayProxy({ upstream: own, delayMs });
            return tokenProxy.host;
          },
        },
      }).catch(closing(() => tokenProxy));
      const proxy = startDelayProxy({ upstream: registry.host, delayMs });
      return farRegistry(registry, proxy, { tokenProxy: present(tokenProxy) });
    }
    case "token-same-host":
      return await sameHostTokenRegistry(delayMs, users);
  }
}

/**
 * nginx (on a port chosen first) serving `/v2/` and `/token`, behind one delay proxy that the
 * realm names; the proxy reaches nginx only once a client connects, so it can start before nginx,
 * which needs the registry's and the token server's hosts.
 */
async function sameHostTokenRegistry(delayMs: number, users: Users): Promise<FarRegistry> {
  const port = freePort();
  let tokenServer: string | undefined;
  let proxy: DelayProxy | undefined;
  const registry = await startRegistry({
    token: {
      users,
      realmHost: (own) => {
        tokenServer = own;
        proxy = startDelayProxy({ upstream: `127.0.0.1:${port}`, delayMs });
        return proxy.host;
      },
    },
  }).catch(closing(() => proxy));
  try {
    const nginx = await startNginx({
      upstream: registry.host,
      maxBodySize: "0",
      port,
      tokenUpstream: present(tokenServer),
    });
    return farRegistry(registry, present(proxy), { nginx });
  } catch (error) {
    await proxy?.close();
    await registry.stop();
    throw error;
  }
}

/** A rejection handler that closes the proxy a `realmHost` callback started, then rethrows. */
function closing(started: () => DelayProxy | undefined): (error: unknown) => Promise<never> {
  return async (error) => {
    await started()?.close();
    throw error;
  };
}

/** The value a `realmHost` callback set; it always runs while the token registry starts. */
function present<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("the registry started without calling realmHost");
  return value;
}

/** Wraps the parts of a far registry with a `stop` that ends them all, outermost first. */
function farRegistry(
  registry: TestRegistry,
  proxy: DelayProxy,
  extra: { tokenProxy?: DelayProxy; nginx?: NginxProxy } = {},
): FarRegistry {
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await proxy.close();
      await extra.tokenProxy?.close();
      await extra.nginx?.stop();
      await registry.stop();
    })();
    return stopping;
  };
  return { registry, proxy, ...extra, stop, [Symbol.asyncDispose]: stop };
}
