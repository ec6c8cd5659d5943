// Fault injection, for resilience testing (Istio's HTTPFaultInjection, Envoy's fault filter): a share of a route's
// requests waits a fixed delay, a share is answered with an error status instead of being forwarded. It runs after
// every check (authentication, authorization, rate limit), so only requests that would have reached the upstream
// are touched, and a request a fault aborts never reaches it. Off unless the route sets `fault`.
import { GRPC_STATUS_NAMES, type RouteConfig } from '../../config/schema.js';
import { GatewayError, InjectedFault } from '../../core/errors.js';
import type { Exchange } from '../exchange.js';
import { pause, type Cancellation } from '../request-life.js';

export interface CompiledFault {
  readonly delayPercent: number;
  readonly delayMs: number;
  readonly abortPercent: number;
  readonly httpStatus: number;
  readonly grpcStatus: number;
}

/** gRPC's mapping of the HTTP statuses a proxy may answer (grpc/grpc doc/http-grpc-status-mapping.md); else UNKNOWN. */
const GRPC_OF_HTTP: Readonly<Record<number, number>> = { 400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14 };
const GRPC_UNKNOWN = 2;

export function compileFault(fault: NonNullable<RouteConfig['fault']>): CompiledFault {
  const { delay, abort } = fault;
  const httpStatus = abort?.httpStatus ?? 503;
  return Object.freeze({
    delayPercent: delay?.percent ?? 0,
    delayMs: delay?.fixedDelayMs ?? 0,
    abortPercent: abort?.percent ?? 0,
    httpStatus,
    grpcStatus: abort?.grpcStatus ? GRPC_STATUS_NAMES.indexOf(abort.grpcStatus) + 1 : (GRPC_OF_HTTP[httpStatus] ?? GRPC_UNKNOWN),
  });
}

/**
 * Delays the request when its draw says so, then aborts it when its other draw says so (Envoy's order). The delay
 * ends early when the client leaves; a delay as long as the route's timeout is that timeout (504), as an upstream
 * that slow would be.
 */
export async function injectFault(fault: CompiledFault, timeoutMs: number, life: Cancellation, ex: Exchange): Promise<void> {
  if (drawn(fault.delayPercent)) {
    ex.fault = 'delay';
    await pause(Math.min(fault.delayMs, timeoutMs), life);
    if (fault.delayMs >= timeoutMs) throw new GatewayError('GW_UPSTREAM_TIMEOUT', 'fault_delay');
  }
  if (drawn(fault.abortPercent)) {
    ex.fault = ex.fault ? 'delay+abort' : 'abort';
    throw new InjectedFault(fault.httpStatus, fault.grpcStatus);
  }
}

/** True for `percent` % of the calls; 0 never draws. */
function drawn(percent: number): boolean {
  return percent > 0 && Math.random() * 100 < percent;
}
