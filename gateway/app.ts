// Composition root: builds the runtime from a validated config, opens the listeners, swaps the runtime
// on reload, and drains on shutdown. No request logic lives here.
import fs from 'node:fs';
import type { Config } from './config/schema.js';
import { DEFAULTS } from './config/defaults.js';
import { LOG_EVENTS, type Logger } from './core/log.js';
import { createMetrics, type Metrics } from './core/metrics.js';
import { createAuditTrail, sameAuditConfig, type AuditTrail } from './audit/trail.js';
import { createEgressServer, type EgressServer } from './egress/server.js';
import { createConnectionTracker } from './ingress/connections.js';
import { createEdgeListener, type EdgeListener } from './ingress/listener.js';
import { createPipeline } from './ingress/pipeline.js';
import { buildRuntime, newTicketKeys, type IngressRuntime } from './ingress/runtime.js';
import { createRateLimiter, type RateLimiter } from './ingress/stages/rate-limit.js';

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
  const audit = config.audit ? createAuditTrail(config.audit, { logger: deps.logger, metrics }) : undefined;

  const handlerFor = createPipeline({
    logger: deps.logger,
    connections,
    metrics,
    ...(audit ? { audit } : {}),
    runtime: () => current,
  });
  const build = (cfg: Config): IngressRuntime => {
    const rt = buildRuntime(cfg, {
      logger: deps.logger,
      handlerFor,
      ticketKeys,
      metrics,
      rateLimiter: limiters.for(cfg),
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
  const egress = config.egress ? startEgress(config, deps, metrics, audit) : undefined;
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
    audit?.close();
    throw err;
  }

  return {
    ports,
    metrics,
    runtime: () => current,
    ready: () => listening && !connections.draining && current.certificates.every((c) => c.notAfter.getTime() > Date.now()),
    reload(next) {
      if (!sameAuditConfig(config.audit, next.audit)) throw new Error('audit: the audit trail settings change only with a restart');
      const previous = current;
      current = build(next);
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
      // Last: every request and tunnel has ended, so every record is in.
      audit?.close();
    },
  };
}

/** The egress proxy runs in the same process when the config has an `egress` section. */
function startEgress(config: Config, deps: GatewayDeps, metrics: Metrics, trail: AuditTrail | undefined): EgressServer {
  const mesh = config.mesh;
  return createEgressServer(config.egress!, {
    logger: deps.logger,
    metrics,
    ...(trail ? { trail } : {}),
    ...(config.jwtProviders ? { jwtProviders: config.jwtProviders } : {}),
    ...(config.redis ? { redis: config.redis } : {}),
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

/**
 * Rate-limit counters must survive reloads: the limiter is rebuilt only when the limits or the Redis
 * settings change, and the one it replaces is closed once in-flight requests are done with it.
 */
function createLimiterCache(logger: Logger, metrics: Metrics) {
  let key: string | undefined;
  let limiter: RateLimiter | undefined;
  return {
    for(config: Config): RateLimiter {
      const next = JSON.stringify([config.rateLimits ?? [], config.redis ?? null]);
      if (limiter && next === key) return limiter;
      const previous = limiter;
      limiter = createRateLimiter(config.rateLimits ?? [], config.redis, { logger, metrics });
      key = next;
      if (previous) setTimeout(() => void previous.close(), DEFAULTS.requestTimeoutMs).unref();
      return limiter;
    },
    close: async () => limiter?.close(),
  };
}
