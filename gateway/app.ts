// Composition root: builds the runtime from a validated config, opens the listeners, swaps the runtime
// on reload, and drains on shutdown. No request logic lives here.
import fs from 'node:fs';
import type { Config } from './config/schema.js';
import { DEFAULTS } from './config/defaults.js';
import { LOG_EVENTS, type Logger } from './core/log.js';
import { createMetrics, type Metrics } from './core/metrics.js';
import { egressRateLimits } from './egress/runtime.js';
import { createEgressServer, type EgressBuildInputs } from './egress/server.js';
import { createConnectionTracker } from './ingress/connections.js';
import { createEdgeListener, type EdgeListener } from './ingress/listener.js';
import { createPipeline } from './ingress/pipeline.js';
import { buildRuntime, newTicketKeys, type IngressRuntime } from './ingress/runtime.js';
import { createJwksSourcePool } from './jwt/source-pool.js';
import { createRateLimiter, type RateLimiter } from './limits/rate-limiter.js';

export interface GatewayDeps {
  logger: Logger;
  fetch?: typeof globalThis.fetch;
  /** One registry per gateway; created here when not given. */
  metrics?: Metrics;
  /**
   * TLS session-ticket keys; new random ones when not given. Worker processes of one machine share the primary's,
   * so a client resumes whichever worker accepts its next connection.
   */
  ticketKeys?: Buffer;
}

export interface Gateway {
  /** Bound port of each listener, by name (useful with port 0). */
  readonly ports: ReadonlyMap<string, number>;
  runtime(): IngressRuntime;
  readonly metrics: Metrics;
  /** Ready for traffic: listeners bound, config loaded, own certificates valid, not draining. */
  ready(): boolean;
  /** Swaps in a new config; throws (and keeps the current one) if it cannot be built. */
  reload(config: Config): void;
  /** Stops accepting, lets in-flight requests finish (up to `drainMs`), then cuts what is left and closes everything. */
  close(drainMs?: number): Promise<void>;
}

export async function startGateway(config: Config, deps: GatewayDeps): Promise<Gateway> {
  const ticketKeys = deps.ticketKeys ?? newTicketKeys();
  const connections = createConnectionTracker({ logger: deps.logger });
  let listening = false;
  const metrics = deps.metrics ?? createMetrics();
  const limiters = createLimiterCache(deps.logger, metrics);
  const jwksSources = createJwksSourcePool();

  const handlerFor = createPipeline({
    logger: deps.logger,
    connections,
    metrics,
    runtime: () => current,
  });
  const build = (cfg: Config): IngressRuntime => {
    const rt = buildRuntime(cfg, {
      logger: deps.logger,
      handlerFor,
      ticketKeys,
      metrics,
      rateLimiter: limiters.for(cfg),
      jwksSources,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
    for (const { name, notAfter } of rt.certificates) metrics.certificateExpiry(name, notAfter);
    for (const server of rt.terminatingServers) connections.trackServer(server);
    return rt;
  };
  let current = build(config);
  await current.jwt.ready();
  const jwksStates = setInterval(() => {
    for (const [provider, { state }] of Object.entries(current.jwt.status())) metrics.jwksState(provider, state);
  }, 5_000).unref();

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
        metrics,
        resolveTarget: (listener, sni) => (sni ? current.listeners.get(listener)?.hosts.lookup(sni)?.target : undefined),
      },
    ),
  );
  /** What each egress build takes from the rest of the gateway: the SVID read again, the shared JWT service and limiter. */
  const egressInputs = (cfg: Config, rt: IngressRuntime): EgressBuildInputs => ({ mesh: readMesh(cfg), jwt: rt.jwt, limiter: limiters.for(cfg) });
  const egress = config.egress
    ? createEgressServer(config.egress, { logger: deps.logger, metrics, ...egressInputs(config, current) })
    : undefined;
  const ports = new Map<string, number>();
  for (const listener of listeners) connections.trackListener(listener.server);
  for (const [i, listener] of listeners.entries()) metrics.trackConnections(config.listeners[i]!.name, listener.server);
  try {
    for (const [i, listener] of listeners.entries()) {
      const address = await listener.listen();
      ports.set(config.listeners[i]!.name, address.port);
      deps.logger.info({ event: LOG_EVENTS.LISTENING, listener: config.listeners[i]!.name, address: address.address, port: address.port });
    }
    if (egress) ports.set('egress', (await egress.listen()).port);
    listening = true;
  } catch (err) {
    clearInterval(jwksStates);
    await Promise.all([...listeners.map((l) => l.close()), egress?.close()]);
    await current.close();
    await limiters.close();
    throw err;
  }

  return {
    ports,
    metrics,
    runtime: () => current,
    ready: () => listening && !connections.draining && current.certificates.every((c) => c.notAfter.getTime() > Date.now()),
    reload(next) {
      if (Boolean(next.egress) !== Boolean(egress)) throw new Error('egress: adding or removing the section takes effect on restart only');
      const previous = current;
      const candidate = build(next);
      // Both runtimes are built before either is swapped in: a reload that cannot be applied whole changes nothing.
      let nextEgress;
      try {
        nextEgress = egress && next.egress ? egress.build(next.egress, egressInputs(next, candidate)) : undefined;
      } catch (err) {
        void candidate.close();
        throw err;
      }
      current = candidate;
      if (nextEgress) egress?.apply(nextEgress);
      void current.jwt.ready();
      // Requests that started on the previous runtime may still be on their way to its pools.
      setTimeout(() => void previous.close(), DEFAULTS.requestTimeoutMs).unref();
    },
    async close(drainMs = current.config.shutdown?.drainMs ?? DEFAULTS.drainMs) {
      deps.logger.info({ event: LOG_EVENTS.SHUTDOWN, inFlight: connections.inFlight, drainMs });
      const stopped = Promise.all(listeners.map((l) => l.close()));
      await connections.drain(drainMs);
      clearInterval(jwksStates);
      // Past the drain every client connection is gone; nothing left upstream may keep the process alive.
      await Promise.all([stopped, egress?.close(), current.destroy()]);
      await limiters.close();
    },
  };
}

/** The mesh SVID and trust bundle, read at each build so a rotated SVID is used after the next reload. */
function readMesh(config: Config): EgressBuildInputs['mesh'] {
  const mesh = config.mesh;
  if (!mesh) return undefined;
  return {
    certPem: fs.readFileSync(mesh.svid.cert, 'utf8'),
    keyPem: fs.readFileSync(mesh.svid.key, 'utf8'),
    bundlePem: fs.readFileSync(mesh.bundle, 'utf8'),
  };
}

/**
 * Rate-limit counters must survive reloads: the limiter is rebuilt only when the limits or the Redis
 * settings change, and the one it replaces is closed once in-flight requests are done with it.
 */
function createLimiterCache(logger: Logger, metrics: Metrics) {
  let key: string | undefined;
  let limiter: RateLimiter | undefined;
  return {
    for(config: Config): RateLimiter {
      // One limiter, one Redis client, for ingress limits and the egress new-connection rate alike.
      const limits = [...(config.rateLimits ?? []), ...egressRateLimits(config.egress)];
      const next = JSON.stringify([limits, config.redis ?? null]);
      if (limiter && next === key) return limiter;
      const previous = limiter;
      limiter = createRateLimiter(limits, config.redis, { logger, metrics });
      key = next;
      if (previous) setTimeout(() => void previous.close(), DEFAULTS.requestTimeoutMs).unref();
      return limiter;
    },
    close: async () => limiter?.close(),
  };
}
