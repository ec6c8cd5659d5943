// A CONNECT tunnel after the decision: bytes piped both ways with counters, an idle timeout, a byte budget, and
// the concurrency limits per identity and per source. The client → upstream direction stays closed until the caller releases it
// with the bytes it already inspected, so nothing reaches the upstream before the SNI check (CVE-2025-64763 class:
// no early data forwarded before the tunnel is established).
import type { Socket } from 'node:net';
import type { HandshakeWatch } from './stages/handshake-watch.js';

export type TunnelEnd =
  | 'closed'
  | 'idle_timeout'
  | 'byte_budget_exceeded'
  | 'client_error'
  | 'upstream_error'
  | 'shutdown'
  | 'revoked'
  | 'sni_mismatch'
  | 'sni_encrypted'
  | 'first_bytes_timeout';

export interface TunnelStats {
  bytesUp: number;
  bytesDown: number;
  end: TunnelEnd;
}

export interface TunnelOptions {
  idleTimeoutMs: number;
  /** Both directions together; undefined is unlimited. */
  maxBytes?: number;
  /** A dry-run byte budget: `report` is called once, when the tunnel first carries more than `maxBytes`. */
  wouldExceed?: { maxBytes: number; report: () => void };
}

export interface Tunnel {
  /**
   * Starts the client → upstream direction, writing `head` (the bytes already read from the client) first. With
   * `watch`, both directions pass through it until it is done, and a ClientHello it refuses ends the tunnel.
   */
  release(head: Buffer, watch?: HandshakeWatch): void;
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
  let dryRunBudget = options.wouldExceed;
  const checkBudgets = (): void => {
    const total = bytesUp + bytesDown;
    if (options.maxBytes !== undefined && total > options.maxBytes) return cut('byte_budget_exceeded');
    if (dryRunBudget !== undefined && total > dryRunBudget.maxBytes) {
      dryRunBudget.report();
      dryRunBudget = undefined;
    }
  };
  const countUp = (bytes: number): void => {
    bytesUp += bytes;
    checkBudgets();
  };
  const countDown = (bytes: number): void => {
    bytesDown += bytes;
    checkBudgets();
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

  let watch: HandshakeWatch | undefined;
  const fromServer = (chunk: Buffer): Buffer => {
    watch?.fromServer(chunk);
    if (watch?.done) watch = undefined;
    return chunk;
  };
  const fromClient = (chunk: Buffer): Buffer | undefined => {
    if (watch === undefined) return chunk;
    const out = watch.fromClient(chunk);
    if (!Buffer.isBuffer(out)) {
      cut(out.end);
      return undefined;
    }
    if (watch.done) watch = undefined;
    return out;
  };
  relay(upstream, client, countDown, fromServer);

  return {
    release(head, handshake) {
      if (end !== undefined) return;
      watch = handshake;
      const first = head.length > 0 ? fromClient(head) : undefined;
      if (first !== undefined && first.length > 0) {
        countUp(first.length);
        if (end === undefined) upstream.write(first);
      }
      if (end === undefined) relay(client, upstream, countUp, fromClient);
    },
    cut,
    done,
  };
}

/**
 * `from` copied into `to` with backpressure and the end passed on, as `pipe()` does, but counting in the same
 * 'data' listener: one listener call per chunk instead of two. `look` sees each chunk first and says what of it to
 * copy (undefined: nothing, the tunnel is cut). Errors and closes are the tunnel's to handle.
 */
function relay(from: Socket, to: Socket, count: (bytes: number) => void, look: (chunk: Buffer) => Buffer | undefined): void {
  from.on('data', (data: Buffer) => {
    const chunk = look(data);
    if (chunk === undefined || chunk.length === 0) return;
    count(chunk.length);
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.once('end', () => to.end());
  // A 'data' listener alone does not restart a socket paused on purpose (the SNI check pauses the client).
  from.resume();
}

/** The two counts one upstream connection is held against; `source` is set only for callers named by address or not at all. */
export interface SlotKeys {
  principal: string;
  source?: string;
}

export type SlotRefusal = 'too_many_tunnels' | 'too_many_tunnels_from_source';

export interface TunnelLimiter {
  /** A release function, or why no slot is free. The maxima are passed per call so a reload applies to the next one. */
  acquire(keys: SlotKeys, max: { perIdentity: number; perSource: number }): (() => void) | SlotRefusal;
}

/**
 * Open upstream connections per identity and per source address. The counts are state, not config: they outlive
 * a reload, so a reload never hands out a second full budget while the first one's tunnels are still open.
 */
export function createTunnelLimiter(): TunnelLimiter {
  const byPrincipal = new Map<string, number>();
  const bySource = new Map<string, number>();
  const take = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  const give = (counts: Map<string, number>, key: string): void => {
    const left = (counts.get(key) ?? 1) - 1;
    if (left === 0) counts.delete(key);
    else counts.set(key, left);
  };
  return {
    acquire({ principal, source }, max) {
      if ((byPrincipal.get(principal) ?? 0) >= max.perIdentity) return 'too_many_tunnels';
      if (source !== undefined && (bySource.get(source) ?? 0) >= max.perSource) return 'too_many_tunnels_from_source';
      take(byPrincipal, principal);
      if (source !== undefined) take(bySource, source);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        give(byPrincipal, principal);
        if (source !== undefined) give(bySource, source);
      };
    },
  };
}
