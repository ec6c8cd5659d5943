// THE egress decision, shared by CONNECT tunnels (connect.ts) and absolute-form HTTP (forward-http.ts), each stage
// once and in this order (Smokescreen's checkIfRequestShouldBeProxied):
//   identify (SVID, else proxy token, else source address) → destination → allowlist (host, port)
//   → limits (new-connection rate, open connections per identity and per source) → address guard (resolve once).
// The outcome is a value: the checked address to dial and the slot to release, or the refusal. The attempt record
// collects what each stage learned, so a refusal at any point is audited with everything known so far.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { GatewayError } from '../core/errors.js';
import type { Destination } from './destination.js';
import type { EgressRuntime } from './runtime.js';
import type { AllowlistDecision } from './stages/allowlist.js';
import type { EgressRecord, ProxyType } from './stages/audit.js';
import type { IncomingMessage } from 'node:http';
import type { TunnelEnd } from './tunnel.js';
import { ANONYMOUS, PROXY_CHALLENGE, type Identity } from './stages/identify.js';

/** What one attempt has learned so far; written into its audit record. */
export interface Attempt {
  readonly requestId: string;
  readonly started: number;
  readonly remote: string | undefined;
  proxyType: ProxyType;
  identity: Identity;
  dest?: Destination;
  decision?: AllowlistDecision;
  /** The address dialled, or the blocked one. */
  address?: string;
}

export function newAttempt(rt: EgressRuntime, proxyType: ProxyType, socket: Socket): Attempt {
  return { requestId: randomUUID(), started: rt.now(), remote: socket.remoteAddress, proxyType, identity: ANONYMOUS };
}

export interface AttemptInput<T extends { dest: Destination }> {
  socket: Socket;
  headers: IncomingHttpHeaders;
  rawHeaders: readonly string[];
  /** Parses the request's target; `dest` is where it would leave for. Throws GatewayError when malformed. */
  target(): T;
}

export type Decision<T> =
  | { allowed: true; address: string; family: 4 | 6; target: T; release: () => void }
  | { allowed: false; error: GatewayError };

/** Runs a stage that refuses by throwing GatewayError; anything else is a bug and propagates. */
async function refusalOf<T>(stage: () => T | Promise<T>): Promise<{ value: T } | { error: GatewayError }> {
  try {
    return { value: await stage() };
  } catch (err) {
    if (err instanceof GatewayError) return { error: err };
    throw err;
  }
}

/** The refusal a policy decision turns into: 407 when the caller could fix it by authenticating. */
function policyError(identity: Identity, decision: AllowlistDecision): GatewayError {
  if (identity.kind === 'anonymous' && decision.reason === 'no_rule_matched') {
    return new GatewayError('GW_EGRESS_NO_IDENTITY', 'no_identity', PROXY_CHALLENGE);
  }
  return new GatewayError('GW_EGRESS_DENIED', decision.reason);
}

/** Callers named by address, or by nothing, share an identity with others: they are also counted per source. */
const sharesIdentity = (identity: Identity): boolean => identity.kind === 'anonymous' || identity.kind === 'source';

export async function decide<T extends { dest: Destination }>(rt: EgressRuntime, attempt: Attempt, input: AttemptInput<T>): Promise<Decision<T>> {
  const identity = await refusalOf(() => rt.identify(input.socket, input.headers, input.rawHeaders));
  if ('error' in identity) return { allowed: false, error: identity.error };
  attempt.identity = identity.value;

  const target = await refusalOf(input.target);
  if ('error' in target) return { allowed: false, error: target.error };
  const { dest } = target.value;
  attempt.dest = dest;

  const decision = rt.allowlist(attempt.identity, dest);
  attempt.decision = decision;
  if (!decision.allowed) return { allowed: false, error: policyError(attempt.identity, decision) };
  if (decision.wouldDeny) {
    rt.wouldDeny({ kind: 'egress', policy: decision.rule ?? '', reason: 'no_rule_matched', requestId: attempt.requestId, identity: attempt.identity.principal, host: dest.host, port: dest.port });
  }

  const source = attempt.remote ?? '';
  const overRate = await rt.overConnectionRate(attempt.identity, source);
  if (overRate) return { allowed: false, error: overRate };
  const slot = rt.tunnels.acquire(
    { principal: attempt.identity.principal, source: sharesIdentity(attempt.identity) ? source : undefined },
    { perIdentity: rt.limits.maxTunnelsPerIdentity, perSource: rt.limits.maxTunnelsPerSource },
  );
  if (typeof slot === 'string') return { allowed: false, error: new GatewayError('GW_RATE_LIMITED', slot) };

  const resolved = await rt.guard.resolve(dest);
  if (!resolved.allowed) {
    slot();
    attempt.address = resolved.address;
    return { allowed: false, error: resolved.error };
  }
  attempt.address = resolved.address;
  return { allowed: true, address: resolved.address, family: resolved.family, target: target.value, release: slot };
}

/** Would `rt` still allow this open attempt? For cutting tunnels a reload revoked. */
export function stillAllowed(rt: EgressRuntime, attempt: Attempt): boolean {
  if (!attempt.dest || !rt.allowlist(attempt.identity, attempt.dest).allowed) return false;
  return attempt.address === undefined || rt.guard.classify(attempt.address).allowed;
}

/** The one audit record of an attempt; `outcome` adds what its end (or refusal) knows. */
export function attemptRecord(rt: EgressRuntime, attempt: Attempt, outcome: Partial<EgressRecord> & Pick<EgressRecord, 'allow' | 'reason'>): EgressRecord {
  return {
    requestId: attempt.requestId,
    identity: attempt.identity.principal,
    identityKind: attempt.identity.kind,
    proxyType: attempt.proxyType,
    remote: attempt.remote,
    host: attempt.dest?.host,
    port: attempt.dest?.port,
    address: attempt.address,
    rule: attempt.decision?.rule,
    wouldDeny: attempt.decision?.wouldDeny,
    durationMs: Math.round(rt.now() - attempt.started),
    ...outcome,
  };
}

export function refusalRecord(rt: EgressRuntime, attempt: Attempt, err: GatewayError, extra: Partial<EgressRecord> = {}): EgressRecord {
  // GW_UPSTREAM_* only arise after the policy allowed the attempt: it was allowed, and then the upstream failed.
  const allow = err.code.startsWith('GW_UPSTREAM_');
  return attemptRecord(rt, attempt, { allow, reason: err.reason ?? err.code, code: err.code, ...extra });
}

/** An attempt in progress, as the server tracks it: the runtime it started on, and how to end it early. */
export interface InFlight {
  readonly rt: EgressRuntime;
  readonly attempt: Attempt;
  /** The request it came with (its trace context); none for a request the parser refused. */
  readonly req?: IncomingMessage;
  /** Ends the attempt now (shutdown, or a reload that revoked it); replaced once a tunnel is open. */
  cut: (end: TunnelEnd) => void;
  /** Why the server ended it early, for the record of an attempt cut before its tunnel opened. */
  endedBy?: 'shutdown' | 'revoked';
}

/** Writes the attempt's one audit record, and its span when tracing is on. */
export function recordAttempt(flight: InFlight, record: EgressRecord): void {
  const tracing = flight.rt.tracing?.();
  flight.rt.audit.record(tracing && flight.req ? tracing.egress(flight.req, record) : record);
}

/** Ends an attempt in flight for the server's reason, whatever stage it is at. */
export function endEarly(flight: InFlight, why: 'shutdown' | 'revoked'): void {
  flight.endedBy ??= why;
  flight.cut(why);
}

/** The refusal to record for an attempt the server ended before it completed, so it is not filed as a failure. */
export function endedEarlyError(flight: InFlight): GatewayError | undefined {
  if (flight.endedBy === 'revoked') return new GatewayError('GW_EGRESS_DENIED', 'revoked');
  if (flight.endedBy === 'shutdown') return new GatewayError('GW_UNAVAILABLE', 'shutting_down');
  return undefined;
}
