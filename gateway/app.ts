// Composition root: builds the runtime from a validated config, opens the listeners, swaps the runtime
// on reload, and drains on shutdown. No request logic lives here.
import fs from 'node:fs';
import type http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Config } from './config/schema.js';
import { DEFAULTS } from './config/defaults.js';
import { LOG_EVENTS, type Logger } from './core/log.js';
import { createEgressServer, type EgressServer } from './egress/server.js';
import { createEdgeListener, type EdgeListener } from './ingress/listener.js';
import { createPipeline } from './ingress/pipeline.js';
import { buildRuntime, newTicketKeys, type IngressRuntime } from './ingress/runtime.js';

export interface GatewayDeps {
  logger: Logger;
  fetch?: typeof globalThis.fetch;
}

export interface Gateway {
  /** Bound port of each listener, by name (useful with port 0). */
  readonly ports: ReadonlyMap<string, number>;
  runtime(): IngressRuntime;
  /** Swaps in a new config; throws (and keeps the current one) if it cannot be built. */
  reload(config: Config): void;
  /** Stops accepting, lets in-flight requests finish (up to `drainMs`), then closes everything. */
  close(drainMs?: number): Promise<void>;
}

export async function startGateway(config: Config, deps: GatewayDeps): Promise<Gateway> {
  const ticketKeys = newTicketKeys();
  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | undefined;

  const handlerFor = createPipeline({
    logger: deps.logger,
    runtime: () => current,
    track: {
      start: () => inFlight++,
      end: () => {
        if (--inFlight === 0) idle?.();
      },
    },
  });
  const build = (cfg: Config): IngressRuntime => {
    const rt = buildRuntime(cfg, { logger: deps.logger, handlerFor, ticketKeys, ...(deps.fetch ? { fetch: deps.fetch } : {}) });
    for (const server of rt.terminatingServers) {
      server.on('session', (session: http2.ServerHttp2Session) => {
        if (draining) session.close();
        sessions.add(session);
        session.once('close', () => sessions.delete(session));
      });
    }
    return rt;
  };
  let current = build(config);
  await current.jwt.ready();

  const listeners: EdgeListener[] = config.listeners.map((l) =>
    createEdgeListener(
      {
        name: l.name,
        address: l.address ?? DEFAULTS.listenerAddress,
        port: l.port,
        helloTimeoutMs: l.timeouts?.handshakeMs ?? DEFAULTS.handshakeTimeoutMs,
        ...(l.limits?.maxConnections ? { maxConnections: l.limits.maxConnections } : {}),
      },
      {
        logger: deps.logger,
        resolveTarget: (listener, sni) => (sni ? current.listeners.get(listener)?.hosts.lookup(sni)?.target : undefined),
      },
    ),
  );
  const egress = config.egress ? startEgress(config, deps) : undefined;
  const ports = new Map<string, number>();
  for (const listener of listeners) {
    listener.server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
  }
  try {
    for (const [i, listener] of listeners.entries()) {
      const address = await listener.listen();
      ports.set(config.listeners[i]!.name, address.port);
      deps.logger.info({ event: LOG_EVENTS.LISTENING, listener: config.listeners[i]!.name, address: address.address, port: address.port });
    }
    if (egress) ports.set('egress', (await egress.listen()).port);
  } catch (err) {
    await Promise.all([...listeners.map((l) => l.close()), egress?.close()]);
    await current.close();
    throw err;
  }

  return {
    ports,
    runtime: () => current,
    reload(next) {
      const previous = current;
      current = build(next);
      void current.jwt.ready();
      // Requests that started on the previous runtime may still be on their way to its pools.
      setTimeout(() => void previous.close(), DEFAULTS.requestTimeoutMs).unref();
    },
    async close(drainMs = 10_000) {
      draining = true;
      deps.logger.info({ event: LOG_EVENTS.SHUTDOWN, inFlight });
      const stopped = Promise.all(listeners.map((l) => l.close()));
      // HTTP/2 clients get GOAWAY and finish their open streams; HTTP/1.1 keep-alive sockets are cut
      // once no request is in flight.
      for (const session of sessions) session.close();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          setTimeout(resolve, drainMs).unref();
        });
      }
      for (const socket of sockets) socket.destroy();
      await Promise.all([stopped, egress?.close()]);
      await current.close();
    },
  };
}

/** The egress proxy runs in the same process when the config has an `egress` section. */
function startEgress(config: Config, deps: GatewayDeps): EgressServer {
  const mesh = config.mesh;
  return createEgressServer(config.egress!, {
    logger: deps.logger,
    ...(mesh
      ? {
          mesh: {
            certPem: fs.readFileSync(mesh.svid.cert, 'utf8'),
            keyPem: fs.readFileSync(mesh.svid.key, 'utf8'),
            bundlePem: fs.readFileSync(mesh.bundle, 'utf8'),
          },
        }
      : {}),
  });
}
