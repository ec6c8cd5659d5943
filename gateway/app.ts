// Composition root: builds the runtime from a validated config, opens the listeners, applies reloads whole
// (core/reloadable.ts: every part prepared, then all committed), and drains on shutdown. No request logic lives here.
import fs from 'node:fs';
import { compileRevocationList } from '../certs/verify.js';
import type { Config } from './config/schema.js';
import { DEFAULTS } from './config/defaults.js';
import { LOG_EVENTS, type Logger } from './core/log.js';
import { createMetrics, type Metrics } from './core/metrics.js';
import { processConnectionBudget } from './core/net/connection-budget.js';
import { auditSettings, createAuditTrail, type AuditTrail } from './audit/trail.js';
import { createTracing, type Tracing } from './core/tracing.js';
import { egressRateLimits } from './egress/runtime.js';
import { createEgressServer, type EgressBuildInputs, type EgressServer } from './egress/server.js';
import { prepareAll, ReloadRefused, type Reloadable } from './core/reloadable.js';
import { createConnectionTracker } from './ingress/connections.js';
import { createListenerSet } from './ingress/listener-set.js';
import { createPipeline } from './ingress/pipeline.js';
import { buildRuntime, newTicketKeys, upstreamEndpointStates, type IngressRuntime } from './ingress/runtime.js';
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
  /**
   * The audit trail, when another process writes it (a worker relays its records to the primary); otherwise the
   * gateway writes `config.audit` itself.
   */
  audit?: AuditTrail;
}

export interface Gateway extends Reloadable {
  /** Bound port of each listener, by name (useful with port 0); follows reloads. */
  readonly ports: ReadonlyMap<string, number>;
  runtime(): IngressRuntime;
  readonly metrics: Metrics;
  /** Ready for traffic: listeners bound, every JWKS loaded once, own certificates valid, not draining. */
  ready(): boolean;
  /**
   * Applies a new config whole (ingress runtime, listeners) or throws and keeps the running one entirely.
   * `prepare` is the first half of it, for a caller that commits other parts (the admin plane) in the same step.
   */
  reload(config: Config): Promise<void>;
  /** Stops accepting, lets in-flight requests finish (up to `drainMs`), then cuts what is left and closes everything. */
  close(drainMs?: number): Promise<void>;
}

export async function startGateway(config: Config, deps: GatewayDeps): Promise<Gateway> {
  const ticketKeys = deps.ticketKeys ?? newTicketKeys();
  const connections = createConnectionTracker({ logger: deps.logger });
  let listening = false;
  const metrics = deps.metrics ?? createMetrics();
  const limiters = createLimiterCache(deps.logger, metrics);
  const budget = processConnectionBudget({ logger: deps.logger, metrics });
  const audit = deps.audit ?? (config.audit ? createAuditTrail(config.audit, { logger: deps.logger, metrics }) : undefined);

  const handlerFor = createPipeline({
    logger: deps.logger,
    connections,
    metrics,
    ...(audit ? { audit } : {}),
    runtime: () => current,
  });
  const build = async (cfg: Config, previous?: IngressRuntime): Promise<IngressRuntime> => {
    const rt = buildRuntime(cfg, {
      logger: deps.logger,
      handlerFor,
      ticketKeys,
      metrics,
      rateLimiter: limiters.for(cfg),
      tracing: await tracingFor(cfg, previous, deps.logger),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
      ...(previous ? { previous } : {}),
    });
    for (const server of rt.terminatingServers) connections.trackServer(server);
    return rt;
  };
  let current = await build(config);
  const recordCertificates = () => {
    for (const { name, notAfter } of current.certificates) metrics.certificateExpiry(name, notAfter);
  };
  recordCertificates();
  metrics.trackUpstreams(() => upstreamEndpointStates(current));
  await current.jwt.ready();
  const jwksStates = setInterval(() => {
    for (const [provider, { state }] of Object.entries(current.jwt.status())) metrics.jwksState(provider, state);
  }, 5_000).unref();

  /** The ingress runtime being prepared by a reload, for the parts prepared after it (egress shares its JWT service). */
  let preparing: IngressRuntime | undefined;
  /** The ingress runtime: a new one is built beside the running one, and the swap is one reference. */
  const ingress: Reloadable = {
    async prepare(next) {
      const built = await build(next, current);
      preparing = built;
      return {
        commit() {
          const previous = current;
          current = built;
          preparing = undefined;
          recordCertificates();
          // Requests that started on the previous runtime may still be on their way to its pools.
          setTimeout(() => void previous.close(built), DEFAULTS.requestTimeoutMs).unref();
        },
        abort: () => {
          preparing = undefined;
          return built.close(current);
        },
      };
    },
  };
  const listeners = createListenerSet({
    logger: deps.logger,
    connections,
    drainMs: DEFAULTS.requestTimeoutMs,
    metrics,
    budget,
    resolveTarget: (listener, sni) => current.listeners.get(listener)?.hostForSni(sni)?.target,
  });
  /** What each egress build takes from the rest of the gateway: the SVID read again, the shared JWT service and limiter. */
  const egressInputs = (cfg: Config, rt: IngressRuntime): EgressBuildInputs => ({ mesh: readMesh(cfg), jwt: rt.jwt, limiter: limiters.for(cfg) });
  const egress = config.egress
    ? createEgressServer(config.egress, { logger: deps.logger, metrics, budget, tracing: () => current.tracing, ...(audit ? { trail: audit } : {}), ...egressInputs(config, current) })
    : undefined;
  // Built first, bound second: a config whose runtime cannot be built never costs a socket. Parts added here are
  // prepared in this order and committed together.
  const parts: readonly Reloadable[] = [auditSettings(config.audit), ingress, egressPart(egress, (next) => egressInputs(next, preparing ?? current)), listeners];

  const ports = listeners.ports;
  try {
    (await listeners.prepare(config)).commit();
    if (egress) ports.set('egress', (await egress.listen()).port);
    listening = true;
  } catch (err) {
    clearInterval(jwksStates);
    await Promise.all([listeners.close(), egress?.close()]);
    await current.close();
    await limiters.close();
    audit?.close();
    throw err;
  }

  const prepare = (next: Config) => prepareAll(parts, next);
  return {
    ports,
    metrics,
    runtime: () => current,
    ready: () =>
      listening &&
      !connections.draining &&
      current.certificates.every((c) => c.notAfter.getTime() > Date.now()) &&
      Object.values(current.jwt.status()).every((s) => s.state !== 'empty'),
    prepare,
    async reload(next) {
      (await prepare(next)).commit();
    },
    async close(drainMs = current.config.shutdown?.drainMs ?? DEFAULTS.drainMs) {
      deps.logger.info({ event: LOG_EVENTS.SHUTDOWN, inFlight: connections.inFlight, drainMs });
      const stopped = listeners.close();
      await connections.drain(drainMs);
      clearInterval(jwksStates);
      // Past the drain every client connection is gone; nothing left upstream may keep the process alive.
      await Promise.all([stopped, egress?.close(), current.destroy()]);
      // After the egress audit's last records, so their spans are in the final export.
      await Promise.all([limiters.close(), current.tracing.shutdown()]);
      // Last: every request and tunnel has ended, so every record is in.
      audit?.close();
    },
  };
}

/**
 * The egress proxy as a reload part: its runtime is built (the new rules, certificates and SVID read) while the
 * others prepare, and swapped in with them. Adding or removing the section needs a restart.
 */
function egressPart(egress: EgressServer | undefined, inputs: (config: Config) => EgressBuildInputs): Reloadable {
  return {
    async prepare(next) {
      if (Boolean(next.egress) !== Boolean(egress)) throw new ReloadRefused('/egress', 'adding or removing the egress section takes effect on restart only');
      const built = egress && next.egress ? egress.build(next.egress, inputs(next)) : undefined;
      return { commit: () => built && egress?.apply(built), abort: async () => undefined };
    },
  };
}

/** The mesh SVID, trust bundle and revocations, read at each build so a rotated SVID or new revocation applies after the next reload. */
function readMesh(config: Config): EgressBuildInputs['mesh'] {
  const mesh = config.mesh;
  if (!mesh) return undefined;
  return {
    certPem: fs.readFileSync(mesh.svid.cert, 'utf8'),
    keyPem: fs.readFileSync(mesh.svid.key, 'utf8'),
    bundlePem: fs.readFileSync(mesh.bundle, 'utf8'),
    revoked: compileRevocationList(mesh.revoked),
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

/**
 * A reload keeps the running tracer (its queue, its exporter's connections) unless `tracing` changed; the runtime
 * that stops using a tracer shuts it down when it closes (runtime.ts), after its requests have ended their spans.
 */
async function tracingFor(config: Config, previous: IngressRuntime | undefined, logger: Logger): Promise<Tracing> {
  const unchanged = previous !== undefined && JSON.stringify(previous.config.tracing ?? null) === JSON.stringify(config.tracing ?? null);
  return unchanged ? previous.tracing : await createTracing(config.tracing, logger);
}
