// A CONNECT tunnel after the decision: bytes piped both ways with counters, an idle timeout, a byte budget, and
// the per-identity concurrency limit. The client → upstream direction stays closed until the caller releases it
// with the bytes it already inspected, so nothing reaches the upstream before the SNI check (CVE-2025-64763 class:
// no early data forwarded before the tunnel is established).
import type { Socket } from 'node:net';

export type TunnelEnd = 'closed' | 'idle_timeout' | 'byte_budget_exceeded' | 'client_error' | 'upstream_error' | 'shutdown' | 'sni_mismatch' | 'not_tls' | 'first_bytes_timeout';

export interface TunnelStats {
  bytesUp: number;
  bytesDown: number;
  end: TunnelEnd;
}

export interface TunnelOptions {
  idleTimeoutMs: number;
  /** Both directions together; undefined is unlimited. */
  maxBytes?: number;
}

export interface Tunnel {
  /** Starts the client → upstream direction, writing `head` (the bytes already read from the client) first. */
  release(head: Buffer): void;
  /** Ends the tunnel now; the first reason given is the one reported. */
  cut(reason: TunnelEnd): void;
  readonly done: Promise<TunnelStats>;
}

/** Pipes upstream → client at once and client → upstream after `release`. Resolves `done` when both sockets closed. */
export function openTunnel(client: Socket, upstream: Socket, options: TunnelOptions): Tunnel {
  let bytesUp = 0;
  let bytesDown = 0;
  let end: TunnelEnd | undefined;
  let resolveDone: (stats: TunnelStats) => void = () => undefined;
  const done = new Promise<TunnelStats>((resolve) => {
    resolveDone = resolve;
  });

  const cut = (reason: TunnelEnd): void => {
    end ??= reason;
    client.destroy();
    upstream.destroy();
  };
  const overBudget = (): boolean => options.maxBytes !== undefined && bytesUp + bytesDown > options.maxBytes;
  const countUp = (bytes: number): void => {
    bytesUp += bytes;
    if (overBudget()) cut('byte_budget_exceeded');
  };
  const countDown = (bytes: number): void => {
    bytesDown += bytes;
    if (overBudget()) cut('byte_budget_exceeded');
  };

  let open = 2;
  const onClose = (): void => {
    if (--open === 0) resolveDone({ bytesUp, bytesDown, end: end ?? 'closed' });
  };
  client.once('close', onClose);
  upstream.once('close', onClose);
  client.on('error', () => cut('client_error'));
  upstream.on('error', () => cut('upstream_error'));
  // Every byte crosses the client socket (read going up, written coming down) and its timer is refreshed by both,
  // so it alone measures the tunnel's idleness; a second timer on the upstream would only double the refreshes.
  client.setTimeout(options.idleTimeoutMs, () => cut('idle_timeout'));

  relay(upstream, client, countDown);

  return {
    release(head) {
      if (end !== undefined) return;
      if (head.length > 0) {
        countUp(head.length);
        if (end === undefined) upstream.write(head);
      }
      relay(client, upstream, countUp);
    },
    cut,
    done,
  };
}

/**
 * `from` copied into `to` with backpressure and the end passed on, as `pipe()` does, but counting in the same
 * 'data' listener: one listener call per chunk instead of two. Errors and closes are the tunnel's to handle.
 */
function relay(from: Socket, to: Socket, count: (bytes: number) => void): void {
  from.on('data', (chunk: Buffer) => {
    count(chunk.length);
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.once('end', () => to.end());
  // A 'data' listener alone does not restart a socket paused on purpose (the SNI check pauses the client).
  from.resume();
}

export interface TunnelLimiter {
  /** A release function, or undefined when the identity already holds its maximum of tunnels. */
  acquire(principal: string): (() => void) | undefined;
}

export function createTunnelLimiter(maxPerIdentity: number): TunnelLimiter {
  if (!Number.isInteger(maxPerIdentity) || maxPerIdentity < 1) throw new Error('maxTunnelsPerIdentity must be a positive integer');
  const open = new Map<string, number>();
  return {
    acquire(principal) {
      const current = open.get(principal) ?? 0;
      if (current >= maxPerIdentity) return undefined;
      open.set(principal, current + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (open.get(principal) ?? 1) - 1;
        if (left === 0) open.delete(principal);
        else open.set(principal, left);
      };
    },
  };
}
