// Route selection: the first route, in config order, whose host, method and path all match.
// Path prefixes match whole segments (Gateway API PathPrefix: `/api` matches `/api` and `/api/x`, not
// `/apix`), always against the normalized path, so routing and authorization see the same path.
import type { RouteConfig } from '../../config/schema.js';

export interface CompiledRoute {
  readonly name: string;
  readonly upstream: string;
  readonly jwtProviders: ReadonlySet<string> | undefined;
  /** `authentication: required`: no token is a 401 before authorization runs. */
  readonly authenticationRequired: boolean;
  readonly maxBodyBytes: number;
  readonly timeoutMs: number;
  /** Name of the rate limit applied after authorization, if any. */
  readonly rateLimit: string | undefined;
  matches(vhost: string, method: string, path: string): boolean;
}

export interface RouteTable {
  select(vhost: string, method: string, path: string): CompiledRoute | undefined;
}

export function compileRoute(
  route: RouteConfig,
  defaults: { maxBodyBytes: number; timeoutMs: number; authentication: NonNullable<RouteConfig['authentication']> },
): CompiledRoute {
  const hosts = route.match.hosts ? new Set(route.match.hosts) : undefined;
  const methods = route.match.methods ? new Set(route.match.methods) : undefined;
  const matchPath = compilePathMatch(route.match.path);
  return Object.freeze({
    name: route.name,
    upstream: route.upstream,
    jwtProviders: route.jwtProviders ? new Set(route.jwtProviders) : undefined,
    authenticationRequired: (route.authentication ?? defaults.authentication) === 'required',
    maxBodyBytes: route.maxBodyBytes ?? defaults.maxBodyBytes,
    timeoutMs: route.timeoutMs ?? defaults.timeoutMs,
    rateLimit: route.rateLimit,
    matches: (vhost: string, method: string, path: string) =>
      (!hosts || hosts.has(vhost)) && (!methods || methods.has(method)) && matchPath(path),
  });
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

export function createRouteTable(routes: readonly CompiledRoute[]): RouteTable {
  return {
    select(vhost, method, path) {
      for (const route of routes) if (route.matches(vhost, method, path)) return route;
      return undefined;
    },
  };
}
