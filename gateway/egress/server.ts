// The egress gateway's listener: a forward proxy for CONNECT tunnels (connect.ts) and absolute-form HTTP
// (forward-http.ts), both deciding through decide.ts. This file only accepts, tracks attempts in flight, swaps the
// compiled runtime on reload (runtime.ts) and closes. Each attempt keeps the runtime it started on; a reload applies
// to the next attempt, and optionally cuts open tunnels the new config no longer allows.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type { EgressConfig } from '../config/egress-schema.js';
import { GatewayError, type ErrorCode } from '../core/errors.js';
import { LOG_EVENTS } from '../core/log.js';
import type { ConnectionBudget } from '../core/net/connection-budget.js';
import { handleConnect, refuseOnSocket } from './connect.js';
import { endEarly, newAttempt, stillAllowed, type InFlight } from './decide.js';
import { handleRequest, refuseResponse } from './forward-http.js';
import { buildEgressRuntime, type EgressRuntime, type EgressRuntimeDeps } from './runtime.js';
import { createTunnelLimiter } from './tunnel.js';

export type EgressServerDeps = Omit<EgressRuntimeDeps, 'tunnels' | 'previous'> & {
  /** The process's connection budget, shared with the edge listeners. */
  budget?: ConnectionBudget;
};

/** What a reload may give each build anew: the SVID read again, the gateway's current JWT service and limiter. */
export type EgressBuildInputs = Pick<EgressRuntimeDeps, 'mesh' | 'jwt' | 'limiter'>;

export interface EgressServer {
  listen(): Promise<{ port: number }>;
  /**
   * Compiles a new egress config for this server without applying it (no side effect: a runtime that is never
   * applied is simply dropped); throws when it cannot be built or would need the listener re-bound.
   */
  build(config: EgressConfig, inputs: EgressBuildInputs): EgressRuntime;
  /** New attempts use `rt` from now on; with `reload.cutRevokedTunnels`, open ones it would refuse are cut. */
  apply(rt: EgressRuntime): void;
  runtime(): EgressRuntime;
  /** Stops accepting, lets open tunnels finish up to `shutdownGraceMs`, cuts the rest, flushes the audit file. */
  close(): Promise<void>;
}

/** How often Node looks for connections past the headers deadline. */
const HEADERS_CHECK_MS = 1_000;

/** Node's parser error → the refusal the client gets; reasons are the parser's code in snake case (`invalid_url`). */
function parserRefusal(err: NodeJS.ErrnoException): GatewayError {
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'GW_HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'GW_REQUEST_TIMEOUT' : 'GW_REQUEST_MALFORMED';
  const reason = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'headers_timeout' : (err.code?.replace(/^HPE_/, '').toLowerCase() ?? 'parse_error');
  return new GatewayError(code, reason);
}

export function createEgressServer(config: EgressConfig, deps: EgressServerDeps): EgressServer {
  const tunnels = createTunnelLimiter();
  let current = buildEgressRuntime(config, { ...deps, tunnels });
  const { listener } = current;
  const options = {
    maxHeaderSize: listener.maxHeaderBytes,
    headersTimeout: listener.headersTimeoutMs,
    // Node checks the headers deadline on this interval (30 s by default): without it a slow head lives up to 30 s
    // past the configured timeout.
    connectionsCheckingInterval: Math.min(HEADERS_CHECK_MS, listener.headersTimeoutMs),
  };
  const tlsServer = current.tls ? createHttpsServer({ ...options, ...current.tls }) : undefined;
  const server: Server = tlsServer ?? createHttpServer(options);

  let closing = false;
  /** Attempts in flight, so shutdown can wait for them and a reload can find the ones it revoked. */
  const active = new Map<Promise<void>, InFlight>();
  /** Audit sinks of replaced runtimes, closing once their last attempt has ended. */
  const retiring = new Set<Promise<void>>();

  const track = (flight: InFlight, run: (flight: InFlight) => Promise<void>): void => {
    const done: Promise<void> = run(flight)
      .catch((err: unknown) => deps.logger.error({ event: LOG_EVENTS.EGRESS_HANDLER_FAILED, requestId: flight.attempt.requestId, err }, 'egress handler failed'))
      .finally(() => active.delete(done));
    active.set(done, flight);
  };
  const shuttingDown = (): GatewayError => new GatewayError('GW_UNAVAILABLE', 'shutting_down');
  /** `audit.onWriteFailure: refuse` while the audit trail cannot be written. */
  const auditUnavailable = (): GatewayError => new GatewayError('GW_UNAVAILABLE', 'audit_unavailable');

  const budget = deps.budget;
  if (budget) server.on('connection', (socket: Socket) => budget.admit(socket, 'egress'));
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const flight: InFlight = { rt: current, attempt: newAttempt(current, 'connect', socket), req, cut: () => socket.destroy() };
    if (closing) return refuseOnSocket(flight, socket, shuttingDown());
    if (deps.trail?.refusing()) return refuseOnSocket(flight, socket, auditUnavailable());
    track(flight, (f) => handleConnect(f, req, socket, head));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const flight: InFlight = { rt: current, attempt: newAttempt(current, 'http', req.socket), req, cut: () => res.destroy() };
    if (closing) return refuseResponse(flight, res, shuttingDown());
    if (deps.trail?.refusing()) return refuseResponse(flight, res, auditUnavailable());
    track(flight, (f) => handleRequest(f, req, res));
  });
  // Requests the parser refuses (raw UTF-8 or NUL in the target, oversized or slow heads) never become an attempt;
  // they are answered and audited here, so no refusal is missing from the trail.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const flight: InFlight = { rt: current, attempt: newAttempt(current, 'unparsed', socket), cut: () => socket.destroy() };
    refuseOnSocket(flight, socket, parserRefusal(err));
  });

  /** Closes `old`'s audit sink once nothing that started on it can still write (unless the new runtime kept it). */
  function retire(old: EgressRuntime): void {
    if (old.audit === current.audit) return;
    // Every attempt writing to that sink, including those of older runtimes that shared it.
    const pending = [...active].filter(([, f]) => f.rt.audit === old.audit).map(([done]) => done);
    const closed: Promise<void> = Promise.allSettled(pending)
      .then(() => old.audit.close())
      .finally(() => retiring.delete(closed));
    retiring.add(closed);
  }

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(listener.port, listener.address, () => {
          server.off('error', reject);
          const addr = server.address();
          const port = typeof addr === 'object' && addr ? addr.port : listener.port;
          deps.logger.info({ event: LOG_EVENTS.LISTENING, listener: 'egress', port }, 'egress gateway listening');
          resolve({ port });
        });
      });
    },
    build(next, inputs) {
      const rt = buildEgressRuntime(next, { ...deps, ...inputs, tunnels, previous: current });
      if (!isDeepStrictEqual(rt.listener, listener)) {
        throw new Error('egress.listener: address, port, TLS on/off, clientAuth, maxHeaderBytes and headersTimeoutMs change only on restart');
      }
      return rt;
    },
    apply(rt) {
      const old = current;
      current = rt;
      // New handshakes get the new certificate and client CA; open connections keep theirs.
      if (rt.tls) tlsServer?.setSecureContext(rt.tls);
      if (rt.cutRevokedTunnels) {
        for (const flight of active.values()) if (!stillAllowed(rt, flight.attempt)) endEarly(flight, 'revoked');
      }
      retire(old);
    },
    runtime: () => current,
    async close() {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Not unref'd: the stop is awaited, and an unref'd bound could let the process end here with the audit file
      // unflushed; cleared once the attempts have settled.
      let bound: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (bound = setTimeout(resolve, current.limits.shutdownGraceMs)));
      await Promise.race([Promise.allSettled([...active.keys()]), grace]);
      clearTimeout(bound);
      for (const flight of active.values()) endEarly(flight, 'shutdown');
      await Promise.allSettled([...active.keys()]);
      server.closeAllConnections();
      await stopped;
      await Promise.allSettled([...retiring]);
      await current.audit.close();
      deps.logger.info({ event: LOG_EVENTS.SHUTDOWN, listener: 'egress' }, 'egress gateway stopped');
    },
  };
}
