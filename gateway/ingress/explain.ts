// `portcullis explain` and `portcullis test`: one request through the stages of pipeline.ts, in its order,
// without sockets. Each step calls the compiled runtime piece the live request calls (host index, path
// stage, route table, JWT stage, forwarded stage, the policies through policies/trace.ts, the upstream
// request headers of forward.ts), so what this reports is what the gateway does.
import type { IncomingHttpHeaders } from 'node:http';
import { explainEvaluation, type ExplainedDecision } from '../../policies/trace.js';
import type { RequestAuth } from '../../policies/types.js';
import { GatewayError, toHttpResponse } from '../core/errors.js';
import type { Request } from './exchange.js';
import { compileClaimHeaders, toRequestAuth } from '../jwt/claims.js';
import { requestAttributes } from './pipeline.js';
import type { IngressRuntime, ListenerRuntime } from './runtime.js';
import type { AuthnResult } from '../jwt/verifier.js';
import { describe as describeDecision } from './stages/authz.js';
import { checkHost } from './stages/host-sni.js';
import type { CompiledRoute } from './stages/route.js';
import { backendsOf } from './stages/route-traffic.js';
import { authorityHost } from './tls/host-index.js';
import { upstreamRequest } from './upstream/forward.js';

export interface ExplainInput {
  method: string;
  /** `https://host[:port]/path?query`, or an origin-form target (`/path`) with a `host` header. */
  url: string;
  /** In order, names as sent. */
  headers?: readonly (readonly [string, string])[];
  /** A JWT, verified against the config's providers exactly as the gateway does. */
  token?: string;
  /** Claims taken as if from a verified token (no signature, expiry or audience check). */
  claims?: Record<string, unknown>;
  /** SPIFFE ID of a verified client certificate. */
  peer?: string;
  sourceIp?: string;
  /** Listener name; default: the one whose port the URL names, else the first. */
  listener?: string;
  /** TLS server name; default: the URL's host. */
  sni?: string;
}

export type StepName = 'virtual-host' | 'path' | 'route' | 'authentication' | 'authorization' | 'limits' | 'forward';

export interface ExplainStep {
  step: StepName;
  ok: boolean;
  detail: string;
}

export interface IngressExplanation {
  kind: 'ingress';
  steps: ExplainStep[];
  /** `forward` when every stage passed (the status is then the upstream's), else the refusal. */
  outcome:
    | { decision: 'forward'; upstream: string; path: string; policy?: string; rule?: string }
    | { decision: 'redirect'; status: number; location: string; policy?: string; rule?: string }
    | { decision: 'refuse'; status: number; code: string; reason?: string; policy?: string; rule?: string };
  route?: string;
  authorization?: ExplainedDecision;
  /** What the upstream would get. */
  forwarded?: { headers: Record<string, string | string[]>; added: string[]; stripped: string[] };
  /** For a refusal: the smallest change that would let the request through, when there is one. */
  hint?: string;
}

const EXPLAIN_REQUEST_ID = 'explain';

/** Path refusals a route may opt out of (docs/policies.md), by reason. */
const PATH_OPT_OUTS: Readonly<Record<string, string>> = {
  path_parameters: 'allowSemicolonParams',
  encoded_percent: 'allowEncodedPercent',
  encoded_non_ascii: 'decodeUtf8: nfkc',
};

export async function explainIngress(rt: IngressRuntime, input: ExplainInput): Promise<IngressExplanation> {
  const steps: ExplainStep[] = [];
  const out: IngressExplanation = { kind: 'ingress', steps, outcome: { decision: 'refuse', status: 0, code: '' } };
  try {
    await run(rt, input, out);
  } catch (err) {
    const at = steps.at(-1);
    if (!(err instanceof GatewayError)) throw err;
    const response = toHttpResponse(err, EXPLAIN_REQUEST_ID);
    out.outcome = {
      decision: 'refuse',
      status: response.status,
      code: err.code,
      ...(err.reason ? { reason: err.reason } : {}),
      ...policyOf(out.authorization),
    };
    const optOut = PATH_OPT_OUTS[err.reason ?? ''];
    if (err.code === 'GW_PATH_REJECTED' && out.hint === undefined) {
      out.hint = optOut
        ? `the request-target is refused before routing (${err.reason}); only a route with pathNormalization.${optOut} reads it`
        : `the request-target is refused before routing (${err.reason}); send it in normalized form (docs/policies.md, "The path policies see")`;
    }
    if (at && at.ok) {
      at.ok = false;
      at.detail = `${at.detail}: refused, ${err.code}${err.reason ? ` (${err.reason})` : ''}`;
    }
  }
  return out;
}

async function run(rt: IngressRuntime, input: ExplainInput, out: IngressExplanation): Promise<void> {
  const { steps } = out;
  const step = (name: StepName, detail: string) => {
    const s = { step: name, ok: true, detail };
    steps.push(s);
    return s;
  };
  const { authority, target } = splitUrl(input.url);
  const headers = headerObject(input.headers ?? [], authority);
  const req = { headers, rawHeaders: rawHeaders(input.headers ?? [], authority) } as Request;

  // 1. Listener and virtual host: the TLS server name picks it, then the Host must belong to it.
  const listener = pickListener(rt, input.listener, authority);
  const sni = input.sni ?? authorityHost(headers.host ?? '') ?? '';
  const vhostStep = step('virtual-host', `listener '${listener.name}' (port ${listener.port}), SNI '${sni}'`);
  const vhost = listener.hosts.lookup(sni);
  if (!vhost) throw new GatewayError('GW_ROUTE_NOT_FOUND', sni ? 'sni_unknown' : 'sni_missing');
  if (vhost.target.kind !== 'terminate') {
    vhostStep.detail += `: virtual host '${vhost.name}' passes TLS through; the gateway never sees its requests`;
    throw new GatewayError('GW_ROUTE_NOT_FOUND', 'tls_passthrough');
  }
  const host = checkHost(req, listener.hosts, vhost);
  vhostStep.detail += ` → virtual host '${vhost.name}', host '${host}'`;
  // A listener configured on port 0 serves on whatever port it bound: the one the URL names, as a client would.
  const port = vhost.port || urlPort(authority);

  // 2. Path.
  const pathStep = step('path', `'${target}'`);
  const normalized = rt.paths.normalize(target);
  pathStep.detail += ` → '${normalized.path}'${normalized.query ? ` (query '${normalized.query}' forwarded untouched)` : ''}`;

  // 3. Route.
  const routeStep = step('route', `${input.method} on '${vhost.name}'`);
  const route = rt.routes.select(vhost.name, input.method, normalized, req.rawHeaders);
  if (!route) throw new GatewayError('GW_ROUTE_NOT_FOUND');
  out.route = route.name;
  routeStep.detail += ` → route '${route.name}' (upstream '${backendsOf(route)}')`;

  // 4. Authentication.
  const authStep = step('authentication', '');
  const peer = input.peer !== undefined && vhost.clientAuth !== 'none' ? input.peer : undefined;
  const authn = await authenticate(rt, input, req, normalized.query, route);
  authStep.detail = [
    peer ? `mTLS peer ${peer} (given; no certificate checked)` : input.peer !== undefined ? `peer ${input.peer} ignored: the virtual host asks for no client certificate` : 'no client certificate',
    authn.auth ? `${input.claims ? 'claims given, not verified' : 'token verified'}: principal ${authn.auth.principal}` : 'no token (anonymous)',
    // What a dry-run would have refused here: the gateway lets the request on and reports it (DRY_RUN_WOULD_DENY).
    ...(authn.wouldDeny ? [`dry-run: provider '${authn.wouldDeny.provider}' would refuse the token (${authn.wouldDeny.reason})`] : []),
    ...(route.authenticationDryRun && !authn.auth ? [`dry-run: route '${route.name}' would refuse it (token_missing)`] : []),
  ].join('; ');

  // 5. Authorization.
  const sourceIp = input.sourceIp ?? '127.0.0.1';
  const forwarded = rt.forwarded.resolve(sourceIp, headers['x-forwarded-for']);
  const attributes = requestAttributes(req, {
    host,
    method: route.effectiveMethod(input.method, headers),
    path: normalized.path,
    port,
    sni,
    sourceIp,
    remoteIp: forwarded.remoteIp,
    ...(peer ? { peerSpiffeId: peer } : {}),
    ...(authn.auth ? { auth: authn.auth } : {}),
    ...(route.pathCase ? { pathCase: route.pathCase } : {}),
  });
  const explained = explainEvaluation(rt.policies, route.name, attributes);
  out.authorization = explained;
  if (explained.hint !== undefined) out.hint = explained.hint;
  const authzStep = step('authorization', describeDecision(explained.decision));
  if (!explained.decision.allowed) {
    authzStep.ok = false;
    throw new GatewayError('GW_AUTHZ_DENIED', describeDecision(explained.decision));
  }

  // 6–7. Limits known before the body (rate limits are not consumed by an explanation).
  const declaredLength = Number(headers['content-length'] ?? 0);
  step('limits', `content-length ${declaredLength} of at most ${route.maxBodyBytes}${route.rateLimit ? `; rate limit '${route.rateLimit}' applies (not consumed here)` : ''}`);
  if (declaredLength > route.maxBodyBytes) throw new GatewayError('GW_BODY_TOO_LARGE');

  // 8. A redirect route answers without any upstream.
  const redirect = route.filters.redirect;
  if (redirect) {
    const location = redirect.location(host, authority ?? headers.host ?? '', normalized.forwardPath, normalized.query);
    step('forward', `no upstream: redirect ${redirect.statusCode} to ${location}`);
    out.outcome = { decision: 'redirect', status: redirect.statusCode, location, ...policyOf(explained) };
    return;
  }

  // 9. What the upstream would get.
  const upstream = upstreamRequest(req, rt, { route, authn, forwarded, host, port, query: normalized.query }, EXPLAIN_REQUEST_ID);
  const sent = new Set(Object.keys(headers));
  const stripped = [...sent].filter((name) => !(name in upstream.headers));
  const added = Object.keys(upstream.headers).filter((name) => !sent.has(name) || upstream.headers[name] !== headers[name]);
  out.forwarded = { headers: upstream.headers, added, stripped };
  step('forward', `${input.method} ${normalized.forwardPath}${upstream.query} to upstream '${backendsOf(route)}'`);
  out.outcome = { decision: 'forward', upstream: backendsOf(route), path: normalized.forwardPath + upstream.query, ...policyOf(explained) };
}

function policyOf(explained: ExplainedDecision | undefined): { policy?: string; rule?: string } {
  const d = explained?.decision;
  return d?.policy !== undefined ? { policy: d.policy, ...(d.rule !== undefined ? { rule: d.rule } : {}) } : {};
}

/** The JWT stage itself for a token; for given claims, the same identity and claim headers, unverified. */
async function authenticate(rt: IngressRuntime, input: ExplainInput, req: Request, query: string, route: CompiledRoute): Promise<AuthnResult> {
  if (input.claims === undefined) {
    return rt.jwt.authenticate({
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      query: query.length > 1 ? query.slice(1) : '',
      ...(route.jwtProviders ? { allowedProviders: route.jwtProviders } : {}),
      // As the pipeline: an enforced `authentication: required` answers a missing token 401 here.
      required: route.authenticationRequired,
    });
  }
  const auth: RequestAuth = toRequestAuth(input.claims);
  const provider = (rt.config.jwtProviders ?? []).find((p) => p.issuer === auth.issuer && (route.jwtProviders?.has(p.name) ?? true));
  // The gateway refuses a token whose issuer no provider (allowed on the route) has.
  if (!provider) throw new GatewayError('GW_AUTHN_INVALID_TOKEN', 'issuer_unknown');
  return { auth, provider: provider.name, removeHeaders: [], removeCookies: [], removeParams: [], setHeaders: compileClaimHeaders(provider.claimsToHeaders)(input.claims) };
}

function splitUrl(url: string): { authority: string | undefined; target: string } {
  // Not `new URL()`: it resolves dot segments and escapes, which is exactly what must be shown here.
  const absolute = /^https?:\/\/([^/?#]*)(.*)$/i.exec(url);
  if (!absolute) return { authority: undefined, target: url };
  return { authority: absolute[1], target: absolute[2] === '' ? '/' : absolute[2]! };
}

function headerObject(list: readonly (readonly [string, string])[], authority: string | undefined): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  if (authority !== undefined && !list.some(([n]) => n.toLowerCase() === 'host')) out.host = authority;
  for (const [name, value] of list) {
    const key = name.toLowerCase();
    const prior = out[key];
    // Node joins repeated headers with ', ' except set-cookie, which is a list.
    out[key] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : key === 'set-cookie' ? [prior, value] : `${prior}, ${value}`;
  }
  return out;
}

function rawHeaders(list: readonly (readonly [string, string])[], authority: string | undefined): string[] {
  const hasHost = list.some(([n]) => n.toLowerCase() === 'host');
  return [...(authority !== undefined && !hasHost ? ['host', authority] : []), ...list.flatMap(([n, v]) => [n, v])];
}

/** The port a URL's authority names; 443, the scheme's, when it names none. */
function urlPort(authority: string | undefined): number {
  return Number(/:(\d+)$/.exec(authority ?? '')?.[1] ?? 443);
}

function pickListener(rt: IngressRuntime, name: string | undefined, authority: string | undefined): ListenerRuntime {
  if (name !== undefined) {
    const named = rt.listeners.get(name);
    if (!named) throw new ExplainInputError(`no listener named '${name}'`);
    return named;
  }
  const port = authority === undefined ? undefined : urlPort(authority);
  const all = [...rt.listeners.values()];
  const listener = all.find((l) => l.port === port) ?? all[0];
  if (!listener) throw new ExplainInputError('the config has no listener');
  return listener;
}

/** An explain request that cannot be run as given (a usage problem, not a gateway refusal). */
export class ExplainInputError extends Error {}
