// Retries of a route's request, as Envoy's retry policy: on a connect failure (identity failures included: the
// next try may reach a genuine endpoint), on a reset before the answer started, and on chosen 5xx answers, which
// are then discarded, never relayed. Never once the client has seen a byte of an answer, never a body that was
// streamed (it cannot be sent twice), never a non-idempotent method unless the route says so. Each try has its own
// timeout; between tries an exponential backoff with full jitter. A budget bounds retries to a share of the
// upstream's requests in flight (and `maxRetries` to a number), so retries cannot multiply an outage.
// gRPC: a trailers-only answer (grpc-status in the one HEADERS frame, no message sent) with a chosen status is
// retried like a chosen 5xx. A gRPC request body streams to h2 upstreams; the forward keeps a copy of it, and an
// answer is retried only when that copy is the whole body (the client's side ended within the copy's cap).
import { GatewayError } from '../../core/errors.js';
import { pause, withDeadline } from '../request-life.js';
import type { ResponseHeaders, ResponseSink, UpstreamRequest } from './clients.js';

export type RetryOn = 'connect-failure' | 'reset';

/** `retries.on` names of gRPC statuses, and the `grpc-status` values they stand for. */
export const GRPC_RETRY_ON: Readonly<Record<string, string>> = Object.freeze({
  cancelled: '1',
  'deadline-exceeded': '4',
  'resource-exhausted': '8',
  internal: '13',
  unavailable: '14',
});

export interface RetryPolicy {
  /** Tries after the first. */
  readonly attempts: number;
  readonly on: ReadonlySet<RetryOn>;
  readonly statusCodes: ReadonlySet<number>;
  /** `grpc-status` values of trailers-only answers to retry. */
  readonly grpcStatuses: ReadonlySet<string>;
  readonly perTryTimeoutMs: number | undefined;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly budgetPercent: number;
  readonly nonIdempotent: boolean;
}

/** RFC 9110 §9.2.2. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Envoy's min_retry_concurrency: a quiet upstream may still retry this many at once. */
const MIN_RETRY_CONCURRENCY = 3;

/** The upstream's count of retries in flight, shared by every route to it. */
export interface RetryState {
  active: number;
  /** Absolute cap (upstream `maxRetries`), else only the budget. */
  readonly max: number | undefined;
  /** Counts retries made and refused (`retried`, `budget_exhausted`, `max_retries`). */
  readonly onRetry?: (outcome: string) => void;
}

type Try = (req: UpstreamRequest, sink: ResponseSink) => Promise<void>;

/** Whether the request can be retried at all: its policy, its method, and a body that can be sent again (or its copy). */
export function retriable(req: UpstreamRequest): req is UpstreamRequest & { retry: RetryPolicy } {
  const policy = req.retry;
  return (
    policy !== undefined &&
    (policy.nonIdempotent || IDEMPOTENT.has(req.method)) &&
    (req.body === null || Buffer.isBuffer(req.body) || req.replayBody !== undefined)
  );
}

export async function withRetries(
  req: UpstreamRequest & { retry: RetryPolicy },
  sink: ResponseSink,
  state: RetryState,
  activeRequests: () => number,
  tryOnce: Try,
): Promise<void> {
  const policy = req.retry;
  // A retry holds its place in the budget from the decision to the end of its try.
  let held = 0;
  const reserve = (): boolean => {
    const refused = retryRefusal(state, policy, activeRequests());
    state.onRetry?.(refused ?? 'retried');
    if (refused !== undefined) return false;
    state.active++;
    held++;
    return true;
  };
  try {
    for (let attempt = 0; ; attempt++) {
      const covering = held;
      const outcome = await tryWith(req, sink, policy, attempt === policy.attempts, reserve, tryOnce);
      state.active -= covering;
      held -= covering;
      if (outcome === 'done') return;
      if (outcome !== 'retry' && !reserve()) throw outcome.error;
      const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** attempt);
      await pause(Math.random() * ceiling, req.signal);
    }
  } finally {
    state.active -= held;
  }
}

function retryRefusal(state: RetryState, policy: RetryPolicy, active: number): string | undefined {
  if (state.max !== undefined && state.active >= state.max) return 'max_retries';
  if (state.active >= Math.max(MIN_RETRY_CONCURRENCY, (active * policy.budgetPercent) / 100)) return 'budget_exhausted';
  return undefined;
}

/**
 * One try: `done` when its answer went to the client (or its failure must), `retry` when its answer was swallowed
 * for a retry already reserved, else the failure a retry may follow.
 */
async function tryWith(
  req: UpstreamRequest,
  sink: ResponseSink,
  policy: RetryPolicy,
  last: boolean,
  reserve: () => boolean,
  tryOnce: Try,
): Promise<'done' | 'retry' | { error: unknown }> {
  let started = false;
  let discarded = false;
  // A streamed body is consumed by its try: only an answer can be retried then, with the body's copy.
  const streamed = req.body !== null && !Buffer.isBuffer(req.body);
  const guarded: ResponseSink = {
    start(statusCode, headers, flow) {
      // Swallowed only when a retry is sure to follow; otherwise the client gets the upstream's own answer.
      const again = !last && retriableAnswer(policy, statusCode, headers) ? nextBody(req, streamed) : undefined;
      if (again !== undefined && reserve()) {
        discarded = true;
        req.body = again;
      } else {
        started = true;
        sink.start(statusCode, headers, flow);
      }
    },
    data(chunk) {
      if (!discarded) sink.data(chunk);
    },
    end(trailers) {
      if (!discarded) sink.end(trailers);
    },
  };
  const perTry = policy.perTryTimeoutMs === undefined ? undefined : withDeadline(req.signal, policy.perTryTimeoutMs);
  try {
    await tryOnce(perTry ? { ...req, signal: perTry.life } : req, guarded);
    return discarded ? 'retry' : 'done';
  } catch (err) {
    if (discarded && !req.signal.aborted) return 'retry';
    if (req.signal.aborted || started || last || streamed || !retriableFailure(err, policy, perTry?.timedOut() ?? false)) throw err;
    return { error: err };
  } finally {
    perTry?.release();
  }
}

/** A chosen 5xx, or a gRPC trailers-only answer (grpc-status in its headers, so no message was sent) with a chosen status. */
function retriableAnswer(policy: RetryPolicy, statusCode: number, headers: ResponseHeaders): boolean {
  if (policy.statusCodes.has(statusCode)) return true;
  const grpcStatus = headers['grpc-status'];
  return typeof grpcStatus === 'string' && policy.grpcStatuses.has(grpcStatus);
}

/** The body the next try sends: the same, or for a streamed one its whole copy; undefined when there is none. */
function nextBody(req: UpstreamRequest, streamed: boolean): UpstreamRequest['body'] | undefined {
  return streamed ? req.replayBody?.() : req.body;
}

/** Connect failures; resets (a connection closed under the request) and this try's own timeout. Never a refusal of ours. */
function retriableFailure(err: unknown, policy: RetryPolicy, perTryTimedOut: boolean): boolean {
  if (perTryTimedOut) return policy.on.has('reset');
  if (err instanceof GatewayError) return false;
  const e = err as { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (/^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|UND_ERR_CONNECT_TIMEOUT|GW_UPSTREAM_IDENTITY)$|CERT|ERR_TLS/.test(code)) {
    return policy.on.has('connect-failure');
  }
  // The route's own timeout ends the request: a retry would double it.
  if (/TIMEOUT/i.test(code)) return false;
  return policy.on.has('reset');
}
