// The edge listeners of the running config, reconciled on reload. A socket is identified by the address and port it
// is bound to, not by the listener's name: a listener whose address and port stay keeps its socket (and may be
// renamed or get new limits), a new address or port is bound while the old socket still serves, and a socket the new
// config no longer has stops accepting and drains its connections (ConnectionTracker.retire). New sockets are bound
// in `prepare`, so a port that cannot be bound refuses the reload before anything changed.
import type { AddressInfo } from 'node:net';
import type { Config, ListenerConfig } from '../config/schema.js';
import { DEFAULTS } from '../config/defaults.js';
import { ReloadRefused, type PreparedChange, type Reloadable } from '../core/reloadable.js';
import { LOG_EVENTS, type Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { ConnectionTracker } from './connections.js';
import { createEdgeListener, type EdgeListener, type ListenerDeps, type ListenerOptions } from './listener.js';

export interface ListenerSetDeps {
  logger: Logger;
  connections: ConnectionTracker;
  resolveTarget: ListenerDeps['resolveTarget'];
  metrics?: Pick<Metrics, 'tlsHandshakeFailure' | 'trackConnections'>;
  budget?: ListenerDeps['budget'];
  /** How long connections of a retired socket may take to finish before they are cut. */
  drainMs: number;
}

export interface ListenerSet extends Reloadable {
  /** Bound port of each listener of the running config, by name (the gateway adds the egress proxy's). */
  readonly ports: Map<string, number>;
  /** Stops accepting on every socket (connections are the tracker's to drain). */
  close(): Promise<void>;
}

interface Bound {
  readonly listener: EdgeListener;
  readonly name: string;
  readonly address: AddressInfo;
}

/** Port 0 asks for any free port: such a listener keeps the port it got as long as its name stays. */
function socketKey(l: ListenerConfig): string {
  return l.port === 0 ? `name:${l.name}` : `${l.address ?? DEFAULTS.listenerAddress}:${l.port}`;
}

function listenerOptions(l: ListenerConfig): ListenerOptions {
  return {
    name: l.name,
    address: l.address ?? DEFAULTS.listenerAddress,
    port: l.port,
    helloTimeoutMs: l.timeouts?.handshakeMs ?? DEFAULTS.handshakeTimeoutMs,
    idleTimeoutMs: l.timeouts?.idleMs ?? DEFAULTS.idleTimeoutMs,
    ...(l.limits?.maxConnections ? { maxConnections: l.limits.maxConnections } : {}),
    ...(l.limits?.maxConnectionsPerSource ? { maxConnectionsPerSource: l.limits.maxConnectionsPerSource } : {}),
  };
}

export function createListenerSet(deps: ListenerSetDeps): ListenerSet {
  let active = new Map<string, Bound>();
  const ports = new Map<string, number>();

  async function bind(l: ListenerConfig, index: number): Promise<Bound> {
    const options = listenerOptions(l);
    const listener = createEdgeListener(options, deps);
    deps.connections.trackListener(listener.server);
    try {
      return { listener, name: l.name, address: await listener.listen() };
    } catch (err) {
      throw new ReloadRefused(`/listeners/${index}/port`, `listener ${l.name}: cannot listen on ${options.address}:${options.port}: ${(err as Error).message}`);
    }
  }

  return {
    ports,
    async prepare(config: Config): Promise<PreparedChange> {
      const next = new Map<string, Bound>();
      const opened: Bound[] = [];
      try {
        for (const [index, l] of config.listeners.entries()) {
          const key = socketKey(l);
          const kept = active.get(key);
          const bound = kept ? { ...kept, name: l.name } : await bind(l, index);
          if (!kept) opened.push(bound);
          next.set(key, bound);
        }
      } catch (err) {
        await Promise.all(opened.map((b) => b.listener.close()));
        throw err;
      }
      return {
        commit() {
          for (const [key, old] of active) if (!next.has(key)) retire(old);
          config.listeners.forEach((l) => next.get(socketKey(l))!.listener.configure(listenerOptions(l)));
          for (const b of opened) {
            deps.logger.info({ event: LOG_EVENTS.LISTENING, listener: b.name, address: b.address.address, port: b.address.port });
          }
          for (const b of active.values()) ports.delete(b.name);
          for (const b of next.values()) {
            ports.set(b.name, b.address.port);
            deps.metrics?.trackConnections(b.name, b.listener.server);
          }
          active = next;
        },
        abort: async () => void (await Promise.all(opened.map((b) => b.listener.close()))),
      };
    },
    async close() {
      await Promise.all([...active.values()].map((b) => b.listener.close()));
    },
  };

  function retire(old: Bound): void {
    deps.logger.info({ event: LOG_EVENTS.LISTENER_RETIRED, listener: old.name, address: old.address.address, port: old.address.port, drainMs: deps.drainMs });
    void old.listener.close();
    void deps.connections.retire(old.listener.server, deps.drainMs);
  }
}
