// What `explain` and `test` share: one request described as data (flags, a YAML file, a test case), and the
// compiled runtime of a config to run it through, built exactly as `run` builds it but never listening.
import type { Config } from '../config/schema.js';
import { canonicalHostPattern } from '../core/net/host.js';
import { createLogger } from '../core/log.js';
import { TRACING_OFF } from '../core/tracing.js';
import { parseAuthority } from '../egress/destination.js';
import { createAllowlist, type AllowlistDecision } from '../egress/stages/allowlist.js';
import { ANONYMOUS, type Identity } from '../egress/stages/identify.js';
import { explainIngress, ExplainInputError, type ExplainInput, type IngressExplanation } from '../ingress/explain.js';
import { buildRuntime, newTicketKeys, type IngressRuntime } from '../ingress/runtime.js';
import { createRateLimiter } from '../limits/rate-limiter.js';

export interface EgressInput {
  identity: string;
  host: string;
  port: number;
}

export type RequestSpec = { kind: 'ingress'; input: ExplainInput } | { kind: 'egress'; input: EgressInput };

export interface EgressExplanation {
  kind: 'egress';
  identity: Identity;
  destination: string;
  decision: AllowlistDecision;
  /** For a refusal: the smallest change that would allow it. */
  hint?: string;
}

export type Explanation = IngressExplanation | EgressExplanation;

/** The request-path pieces of a config: the runtime `run` would build, with nothing listening or connecting. */
export interface DecisionRuntime {
  readonly config: Config;
  explain(spec: RequestSpec): Promise<Explanation>;
  close(): Promise<void>;
}

export function createDecisionRuntime(config: Config): DecisionRuntime {
  const logger = createLogger('silent');
  // No rate limits and no Redis: an explanation never consumes a client's budget.
  const rateLimiter = createRateLimiter([], undefined, { logger });
  // No spans either: an explanation is not a request.
  const rt: IngressRuntime = buildRuntime(config, { logger, handlerFor: () => () => {}, ticketKeys: newTicketKeys(), rateLimiter, tracing: TRACING_OFF });
  const allowlist = config.egress ? createAllowlist({ allow: config.egress.allow, ...(config.egress.deny ? { deny: config.egress.deny } : {}) }) : undefined;
  return {
    config,
    explain: (spec) => (spec.kind === 'ingress' ? explainIngress(rt, spec.input) : Promise.resolve(explainEgress(allowlist, spec.input))),
    async close() {
      await rt.destroy();
      await rateLimiter.close();
    },
  };
}

function explainEgress(allowlist: ReturnType<typeof createAllowlist> | undefined, input: EgressInput): EgressExplanation {
  if (!allowlist) throw new ExplainInputError('the config has no egress section');
  const identity = identityOf(input.identity);
  const dest = parseAuthority(`${input.host}:${input.port}`);
  const decision = allowlist(identity, dest);
  const destination = `${dest.host}:${dest.port}`;
  const hint =
    decision.allowed ? undefined
    : decision.reason === 'denied_by_rule' ? `global deny rule '${decision.rule}' lists ${destination}; no allow rule can override it`
    : `add ${JSON.stringify(dest.host)} with port ${dest.port} to an allow rule whose identities include ${JSON.stringify(identity.principal)}`;
  return { kind: 'egress', identity, destination, decision, ...(hint ? { hint } : {}) };
}

/** How the egress proxy names callers: a SPIFFE ID, `anonymous`, or a source identity / token principal. */
function identityOf(text: string): Identity {
  if (text === 'anonymous') return ANONYMOUS;
  if (text.startsWith('spiffe://')) return { kind: 'spiffe', principal: text };
  return { kind: 'source', principal: text };
}

/**
 * A request as data (a YAML file or a test case's `request`):
 * `{ method, url, headers, token | claims, peer, sourceIp, listener, sni }` or `{ egress: { identity, host, port } }`.
 * Throws ExplainInputError naming the field that is wrong.
 */
export function parseRequestSpec(value: unknown, where: string): RequestSpec {
  const obj = record(value, where);
  if (obj.egress !== undefined) {
    const e = record(obj.egress, `${where}.egress`);
    const port = Number(e.port ?? 443);
    if (typeof e.identity !== 'string' || typeof e.host !== 'string' || !Number.isInteger(port)) {
      throw new ExplainInputError(`${where}.egress: needs identity (string), host (string) and port (number)`);
    }
    if (canonicalHostPattern(e.host) === undefined) throw new ExplainInputError(`${where}.egress.host: not a host name or address`);
    return { kind: 'egress', input: { identity: e.identity, host: e.host, port } };
  }
  const str = (key: string): string | undefined => {
    const v = obj[key];
    if (v !== undefined && typeof v !== 'string') throw new ExplainInputError(`${where}.${key}: must be a string`);
    return v;
  };
  const url = str('url');
  if (url === undefined) throw new ExplainInputError(`${where}.url: required`);
  if (obj.token !== undefined && obj.claims !== undefined) throw new ExplainInputError(`${where}: give token or claims, not both`);
  const input: ExplainInput = { method: str('method') ?? 'GET', url, headers: headerList(obj.headers, `${where}.headers`) };
  const optional = { token: str('token'), peer: str('peer'), sourceIp: str('sourceIp'), listener: str('listener'), sni: str('sni') };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) Object.assign(input, { [k]: v });
  if (obj.claims !== undefined) input.claims = record(obj.claims, `${where}.claims`);
  if (input.token !== undefined) input.headers = [...(input.headers ?? []), ['authorization', `Bearer ${input.token}`]];
  if (!/^[A-Z]{1,20}$/.test(input.method)) throw new ExplainInputError(`${where}.method: an upper-case method such as GET`);
  return { kind: 'ingress', input };
}

/** `{ name: value }` or `[ "name: value" ]` (the second allows a repeated header). */
function headerList(value: unknown, where: string): [string, string][] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value.map((line, i) => parseHeaderLine(line, `${where}[${i}]`));
  return Object.entries(record(value, where)).map(([name, v]) => [name, String(v)]);
}

export function parseHeaderLine(line: unknown, where: string): [string, string] {
  const colon = typeof line === 'string' ? line.indexOf(':') : -1;
  if (typeof line !== 'string' || colon < 1) throw new ExplainInputError(`${where}: a header is 'name: value'`);
  return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ExplainInputError(`${where}: must be a mapping`);
  return value as Record<string, unknown>;
}
