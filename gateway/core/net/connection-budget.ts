// The process-wide bound on client connections, derived from its open-files limit as HAProxy derives its default
// `maxconn`. Past that limit `accept` fails for every server at once (libuv then closes each new connection
// unanswered), so a flood of idle connections on the edge would also take the admin plane's health probes, upstream
// dials, JWKS fetches and a reload's file reads with it: a liveness probe failing under a flood turns it into restarts.
// The budget keeps descriptors back for all of those by closing client connections past it as they arrive.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { atMostEvery, LOG_EVENTS, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

/** Descriptors kept for everything but client connections (listeners, logs, Redis, the admin plane, reloads). */
const RESERVED_DESCRIPTORS = 256;

/** Refusals are logged at most this often (each one is still counted in the metrics). */
const REFUSAL_LOG_INTERVAL_MS = 1_000;

/**
 * The soft `RLIMIT_NOFILE` of this process, read from Linux's /proc/self/limits: Node exposes no getrlimit and no
 * maintained package does. Undefined where there is no such file (macOS) or the limit is `unlimited`.
 */
export function openFilesLimit(limits = readLimits()): number | undefined {
  const soft = /^Max open files\s+(\d+)\s/m.exec(limits ?? '')?.[1];
  return soft === undefined ? undefined : Number(soft);
}

function readLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Client connections the limit can carry: each may need an upstream connection of its own, so two descriptors,
 * after a reserve of 256 (a quarter of a limit under 1,024). Infinity when the limit is unknown.
 */
export function connectionBudget(limit: number | undefined): number {
  if (limit === undefined) return Infinity;
  const reserved = Math.min(RESERVED_DESCRIPTORS, Math.floor(limit / 4));
  return Math.floor((limit - reserved) / 2);
}

export interface ConnectionBudget {
  /** Counts `socket` until it closes; false (and the socket destroyed) when the budget is spent. */
  admit(socket: Socket, listener: string): boolean;
}

export interface ConnectionBudgetDeps {
  logger: Logger;
  metrics?: Pick<Metrics, 'connectionRefused'>;
}

/** One per process, shared by the edge listeners and the egress proxy; the admin plane has its own small bound. */
export function createConnectionBudget(max: number, deps: ConnectionBudgetDeps): ConnectionBudget {
  let open = 0;
  const logNow = atMostEvery(REFUSAL_LOG_INTERVAL_MS);
  const release = () => {
    open--;
  };
  return {
    admit(socket, listener) {
      if (open >= max) {
        deps.metrics?.connectionRefused(listener, 'connection_budget');
        if (logNow()) deps.logger.warn({ event: LOG_EVENTS.CONNECTION_BUDGET, listener, maxConnections: max, peer: socket.remoteAddress }, 'connection budget spent; new connections are closed');
        socket.destroy();
        return false;
      }
      open++;
      socket.once('close', release);
      return true;
    },
  };
}

/** Below this many connections the start line is a warning: the open-files limit is likely a distribution's 1,024. */
const LOW_BUDGET = 1_000;

/** The budget this process's open-files limit allows, logged at start so an operator sees the bound in force. */
export function processConnectionBudget(deps: ConnectionBudgetDeps): ConnectionBudget {
  const limit = openFilesLimit();
  const max = connectionBudget(limit);
  const line = { event: LOG_EVENTS.CONNECTION_BUDGET, openFilesLimit: limit ?? null, maxConnections: Number.isFinite(max) ? max : null };
  if (max < LOW_BUDGET) deps.logger.warn(line, 'few connections fit the open-files limit; raise it (ulimit -n, LimitNOFILE)');
  else deps.logger.info(line, 'connection budget');
  return createConnectionBudget(max, deps);
}
