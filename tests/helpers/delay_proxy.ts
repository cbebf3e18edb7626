/**
 * A TCP proxy on 127.0.0.1 that makes a loopback server look far away: every chunk is held for
 * `delayMs` in each direction, and a new connection costs one round trip before its first bytes
 * move on (as a TCP handshake would). Bytes are not throttled: the link is long, not thin. The
 * bench's long-link table and the round-trip tests both use it.
 *
 * ```ts
 * await using proxy = await startDelayProxy({ upstream: "127.0.0.1:5000", delayMs: 50 });
 * // push to `${proxy.host}/demo:1`: 100 ms per round trip
 * ```
 *
 * @module
 */

/** Options of {@link startDelayProxy}. */
export interface DelayProxyOptions {
  /** `host:port` of the server behind the proxy; must be on the loopback interface. */
  upstream: string;
  /** Milliseconds every chunk is held, each way (a round trip costs twice this). */
  delayMs: number;
  /** Bytes held per direction of one connection before reading pauses (default 8 MiB). */
  maxBufferedBytes?: number;
  /** Connections open at once; more are refused (default 64). */
  maxConnections?: number;
}

/** A running delay proxy. */
export interface DelayProxy extends AsyncDisposable {
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const READ_SIZE = 64 * 1024;

function splitHost(authority: string): { hostname: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(authority);
  if (match === null) throw new Error(`upstream must be host:port, got ${authority}`);
  return { hostname: (match[1] as string).replace(/^\[|\]$/g, ""), port: Number(match[2]) };
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

function sleepUntil(time: number): Promise<void> {
  const wait = time - performance.now();
  return wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait)) : Promise.resolve();
}

/**
 * Copies `from` to `to`, each chunk released `delayMs` after it was read and never before
 * `notBefore`; reading pauses while `maxBuffered` bytes wait. Ends `to`'s writing side at the end.
 */
async function delayedCopy(
  from: Deno.Conn,
  to: Deno.Conn,
  delayMs: number,
  notBefore: number,
  maxBuffered: number,
): Promise<void> {
  const queue: { bytes: Uint8Array; due: number }[] = [];
  let buffered = 0;
  let ended = false;
  let wake: (() => void) | undefined;
  let space: (() => void) | undefined;
  const writer = (async () => {
    for (;;) {
      const next = queue.shift();
      if (next === undefined) {
        if (ended) return;
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      await sleepUntil(Math.max(next.due, notBefore));
      let written = 0;
      while (written < next.bytes.byteLength) {
        written += await to.write(next.bytes.subarray(written));
      }
      buffered -= next.bytes.byteLength;
      space?.();
    }
  })();
  try {
    for (;;) {
      while (buffered >= maxBuffered) await new Promise<void>((resolve) => (space = resolve));
      const buffer = new Uint8Array(READ_SIZE);
      const read = await from.read(buffer);
      if (read === null) break;
      queue.push({ bytes: buffer.subarray(0, read), due: performance.now() + delayMs });
      buffered += read;
      wake?.();
    }
  } finally {
    ended = true;
    wake?.();
  }
  await writer;
  await to.closeWrite().catch(() => {});
}

/** Starts a delay proxy in front of `options.upstream`. */
export function startDelayProxy(options: DelayProxyOptions): DelayProxy {
  const upstream = splitHost(options.upstream);
  if (!LOOPBACK.has(upstream.hostname)) {
    throw new Error(`the delay proxy only forwards to loopback, not ${upstream.hostname}`);
  }
  const delayMs = Math.max(0, options.delayMs);
  const maxBuffered = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  const maxConnections = options.maxConnections ?? 64;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  let accepted = 0;

  const relay = async (client: Deno.Conn): Promise<void> => {
    // The client's handshake with a far server: its first bytes arrive after one round trip
    // (SYN, SYN-ACK) plus the one-way delay of the bytes themselves.
    const handshakeDone = performance.now() + 2 * delayMs;
    let server: Deno.Conn | undefined;
    try {
      server = await Deno.connect(upstream);
      open.add(server);
      await Promise.allSettled([
        delayedCopy(client, server, delayMs, handshakeDone + delayMs, maxBuffered),
        delayedCopy(server, client, delayMs, 0, maxBuffered),
      ]);
    } finally {
      if (server !== undefined) {
        closeQuietly(server);
        open.delete(server);
      }
      closeQuietly(client);
      open.delete(client);
    }
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        if (open.size >= 2 * maxConnections) {
          closeQuietly(conn);
          continue;
        }
        accepted++;
        open.add(conn);
        const task = relay(conn).catch(() => {}).finally(() => tasks.delete(task));
        tasks.add(task);
      }
    } catch {
      // the listener was closed
    }
  })();

  const close = async (): Promise<void> => {
    try {
      listener.close();
    } catch {
      // already closed
    }
    for (const conn of open) closeQuietly(conn);
    await accepting;
    await Promise.allSettled([...tasks]);
  };
  return {
    host: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    get connections(): number {
      return accepted;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
