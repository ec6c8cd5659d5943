// Route selection: the first route, in config order, whose host, method and path all match.
// Path prefixes match whole segments (Gateway API PathPrefix: `/api` matches `/api` and `/api/x`, not
// `/apix`), always against the normalized path, so routing and authorization see the same path.
//
// Case (`pathCase`): a backend that folds case (IIS, Express by default, Spring with some settings) reads
// `/API/INTERNAL` as `/api/internal`, so a route matched case-sensitively could hand that request to a
// lesser route (`/api`) or a catch-all. Unless `pathCase` says otherwise, a route is selected by both
// readings: the request goes to the route both agree on, to the folded match when no route matches as
// written, and is refused (`path_case_ambiguous`) when the two readings pick different routes.
import type { IncomingHttpHeaders } from 'node:http';
import { RELAXED_REASONS, relaxationsOf, type NormalizedTarget } from '../../../policies/path.js';
import { DEFAULTS } from '../../config/defaults.js';
import type { RouteConfig } from '../../config/schema.js';
import { GatewayError } from '../../core/errors.js';
import { GRPC_RETRY_ON, type RetryOn, type RetryPolicy } from '../upstream/retry.js';
import { compileFault, type CompiledFault } from './fault.js';
import { routePathOptions } from './normalize-path.js';
import { compileWebSocket, type WebSocketLimits } from './upgrade.js';
import { compileFilters, type RouteFilters } from './route-filters.js';
import { compileRequestMatch, compileSplit, type Backend, type Split } from './route-traffic.js';

export type PathCase = 'sensitive' | 'insensitive';

export interface CompiledRoute {
  readonly name: string;
  /** The route's one upstream; undefined when it splits (`split`) or redirects. */
  readonly backend: Backend | undefined;
  /** Weighted upstreams (`backendRefs`): one is picked per request. */
  readonly split: Split | undefined;
  readonly jwtProviders: ReadonlySet<string> | undefined;
  /** `authentication: required` enforced: no token is a 401 before authorization runs. */
  readonly authenticationRequired: boolean;
  /** `authentication: required` in `authenticationMode: dry-run`: no token is reported as a would-deny, not refused. */
  readonly authenticationDryRun: boolean;
  readonly maxBodyBytes: number;
  /** Name of the rate limit applied after authorization, if any. */
  readonly rateLimit: string | undefined;
  /** How policies compare paths for this route; undefined is the default (DENY folds, ALLOW does not). */
  readonly pathCase: PathCase | undefined;
  /** `RELAXED` bits of the path readings this route opted into. */
  readonly relaxations: number;
  /** Whether the route's own path has upper-case letters (folding can then change which route matches). */
  readonly upperCaseInPath: boolean;
  /** Request-line override headers this route forwards. */
  readonly overrideHeaders: ReadonlySet<string> | undefined;
  /** Retries of failed upstream tries; unset: none. */
  readonly retry: RetryPolicy | undefined;
  /** Delays and aborts injected before forwarding; unset: none. */
  readonly fault: CompiledFault | undefined;
  /** WebSocket upgrades allowed, with their limits; unset: refused. */
  readonly websocket: WebSocketLimits | undefined;
  /** Header edits, redirect and mirror (route-filters.ts). */
  readonly filters: RouteFilters;
  /** Host, method, and the header and query conditions (`rawHeaders` as Node gives them, `query` with its `?`). */
  accepts(vhost: string, method: string, rawHeaders: readonly string[], query: string): boolean;
  /**
   * The method the backend will execute, which is what policies must see: the value of a method-override
   * header the route allows, else `method`. Throws on a malformed or conflicting override, or one the route's
   * `match.methods` does not list.
   */
  effectiveMethod(method: string, headers: IncomingHttpHeaders): string;
  /** The path as the route's case rule reads it first (`lower` is `path` lower-cased). */
  matchesPath(path: string, lower: string): boolean;
  /** The path read with case folded, unless the route is `sensitive`. */
  matchesFolded(path: string, lower: string): boolean;
}

export interface RouteTable {
  /** The route, or undefined (404); throws GW_PATH_REJECTED when the path is ambiguous or needs an opt-out the route lacks. */
  select(vhost: string, method: string, target: NormalizedTarget, rawHeaders: readonly string[]): CompiledRoute | undefined;
}

export interface RouteDefaults {
  maxBodyBytes: number;
  /** An upstream's own timeout, for routes that set none. */
  upstreamTimeoutMs(upstream: string): number;
  pathCase?: PathCase | undefined;
  /** Unset: the secure default (`DEFAULTS.routeAuthentication`). */
  authentication?: NonNullable<RouteConfig['authentication']>;
}

export function compileRoute(route: RouteConfig, defaults: RouteDefaults): CompiledRoute {
  const hosts = route.match.hosts ? new Set(route.match.hosts) : undefined;
  const methods = route.match.methods ? new Set(route.match.methods) : undefined;
  const pathCase = route.pathCase ?? defaults.pathCase;
  const exact = compilePathMatch(route.match.path);
  const folded = compilePathMatch(foldMatch(route.match.path));
  const requestMatch = compileRequestMatch(route.match);
  const timeoutOf = (upstream: string) => route.timeoutMs ?? defaults.upstreamTimeoutMs(upstream);
  return Object.freeze({
    name: route.name,
    backend: route.upstream !== undefined ? Object.freeze({ name: route.upstream, timeoutMs: timeoutOf(route.upstream) }) : undefined,
    split: route.backendRefs ? compileSplit(route.backendRefs, timeoutOf) : undefined,
    jwtProviders: route.jwtProviders ? new Set(route.jwtProviders) : undefined,
    authenticationRequired: (route.authentication ?? defaults.authentication ?? DEFAULTS.routeAuthentication) === 'required' && route.authenticationMode !== 'dry-run',
    authenticationDryRun: route.authenticationMode === 'dry-run',
    maxBodyBytes: route.maxBodyBytes ?? defaults.maxBodyBytes,
    rateLimit: route.rateLimit,
    pathCase,
    relaxations: relaxationsOf(routePathOptions(route)),
    upperCaseInPath: route.match.path !== undefined && hasUpper('exact' in route.match.path ? route.match.path.exact : route.match.path.prefix),
    overrideHeaders: route.allowOverrideHeaders ? new Set<string>(route.allowOverrideHeaders) : undefined,
    retry: route.retries ? compileRetry(route.retries) : undefined,
    fault: route.fault ? compileFault(route.fault) : undefined,
    websocket: compileWebSocket(route.websocket),
    filters: compileFilters(route),
    accepts: requestMatch
      ? (vhost: string, method: string, rawHeaders: readonly string[], query: string) =>
          (!hosts || hosts.has(vhost)) && (!methods || methods.has(method)) && requestMatch(rawHeaders, query)
      : (vhost: string, method: string) => (!hosts || hosts.has(vhost)) && (!methods || methods.has(method)),
    effectiveMethod: compileMethodOverride(route.allowOverrideHeaders, methods),
    matchesPath: pathCase === 'insensitive' ? (_: string, lower: string) => folded(lower) : (path: string) => exact(path),
    matchesFolded: pathCase === 'sensitive' ? (path: string) => exact(path) : (_: string, lower: string) => folded(lower),
  });
}

function compileRetry(retries: NonNullable<RouteConfig['retries']>): RetryPolicy {
  const on: readonly string[] = retries.on ?? DEFAULTS.retryOn;
  return Object.freeze({
    attempts: retries.attempts,
    on: new Set(on.filter((name): name is RetryOn => !Object.hasOwn(GRPC_RETRY_ON, name))),
    statusCodes: new Set(retries.statusCodes ?? []),
    grpcStatuses: new Set(on.filter((name) => Object.hasOwn(GRPC_RETRY_ON, name)).map((name) => GRPC_RETRY_ON[name]!)),
    perTryTimeoutMs: retries.perTryTimeoutMs,
    backoffBaseMs: retries.backoff?.baseMs ?? DEFAULTS.retryBackoffBaseMs,
    backoffMaxMs: retries.backoff?.maxMs ?? DEFAULTS.retryBackoffMaxMs,
    budgetPercent: retries.budgetPercent ?? DEFAULTS.retryBudgetPercent,
    nonIdempotent: retries.nonIdempotent ?? false,
  });
}

const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];
const METHOD = /^[A-Z]{1,20}$/;

function compileMethodOverride(allowed: readonly string[] | undefined, methods: ReadonlySet<string> | undefined): CompiledRoute['effectiveMethod'] {
  const names = METHOD_OVERRIDE_HEADERS.filter((name) => allowed?.includes(name));
  if (names.length === 0) return (method) => method;
  return (method, headers) => {
    let override: string | undefined;
    for (const name of names) {
      const value = headers[name];
      if (value === undefined) continue;
      // A repeated header arrives joined (`GET, DELETE`) and fails the pattern: which one would the backend take?
      if (typeof value !== 'string' || !METHOD.test(value) || (override !== undefined && override !== value)) {
        throw new GatewayError('GW_REQUEST_MALFORMED', 'method_override');
      }
      override = value;
    }
    if (override !== undefined && methods && !methods.has(override)) throw new GatewayError('GW_METHOD_NOT_ALLOWED', 'method_override');
    return override ?? method;
  };
}

function foldMatch(match: RouteConfig['match']['path']): RouteConfig['match']['path'] {
  if (!match) return match;
  return 'exact' in match ? { exact: match.exact.toLowerCase() } : { prefix: match.prefix.toLowerCase() };
}

function compilePathMatch(match: RouteConfig['match']['path']): (path: string) => boolean {
  if (!match) return () => true;
  if ('exact' in match) {
    const exact = match.exact;
    return (path) => path === exact;
  }
  const prefix = match.prefix.endsWith('/') ? match.prefix.slice(0, -1) : match.prefix;
  if (prefix === '') return () => true;
  return (path) => path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 47);
}

const CASE_AMBIGUOUS = 'path_case_ambiguous';

export function createRouteTable(routes: readonly CompiledRoute[]): RouteTable {
  // With lower-case route paths (the usual config), a path without upper-case letters reads the same
  // folded, so one pass decides.
  const upperInRoutes = routes.some((r) => r.upperCaseInPath);
  const pick = (vhost: string, method: string, path: string, rawHeaders: readonly string[], query: string): CompiledRoute | undefined => {
    const upper = hasUpper(path);
    const lower = upper ? path.toLowerCase() : path;
    if (!upper && !upperInRoutes) {
      for (const route of routes) if (route.accepts(vhost, method, rawHeaders, query) && route.matchesPath(path, lower)) return route;
      return undefined;
    }
    let asWritten: CompiledRoute | undefined;
    let folded: CompiledRoute | undefined;
    for (const route of routes) {
      if (!route.accepts(vhost, method, rawHeaders, query)) continue;
      asWritten ??= route.matchesPath(path, lower) ? route : undefined;
      folded ??= route.matchesFolded(path, lower) ? route : undefined;
      if (asWritten && folded) break;
    }
    if (asWritten && folded && asWritten !== folded) throw new GatewayError('GW_PATH_REJECTED', CASE_AMBIGUOUS);
    return asWritten ?? folded;
  };
  return {
    select(vhost, method, target, rawHeaders) {
      const route = pick(vhost, method, target.path, rawHeaders, target.query);
      const missing = route ? target.relaxed & ~route.relaxations : 0;
      if (missing !== 0) throw new GatewayError('GW_PATH_REJECTED', RELAXED_REASONS.find(([bit]) => (missing & bit) !== 0)![1]);
      return route;
    },
  };
}

function hasUpper(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return true;
  }
  return false;
}
