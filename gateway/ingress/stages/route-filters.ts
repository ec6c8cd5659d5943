// A route's filters (Gateway API HTTPRoute `filters`), compiled once per config: header edits of the request (after
// authorization, so policies judge what the client sent) and of the upstream's answer, a redirect answered without
// any upstream, and a mirror to a shadow upstream (upstream/mirror.ts sends it).
import { readFileSync } from 'node:fs';
import { DEFAULTS } from '../../config/defaults.js';
import type { RouteConfig } from '../../config/schema.js';
import { HEADER_VALUE, MAX_HEADER_VALUE, type HeaderModifierConfig, type HeaderWriteConfig } from '../../config/route-traffic-schema.js';

type Headers = Record<string, string | string[] | undefined>;

/** Changes a header set in place: `remove`, then `set`, then `add` (so remove + add replaces a header). */
export type HeaderEdit = (headers: Headers) => void;

export interface Redirect {
  readonly statusCode: number;
  /** The Location for a request: its host name, the port its Host header named (if any), its path and query. */
  location(host: string, authority: string, path: string, query: string): string;
}

export interface Mirror {
  readonly upstream: string;
  readonly percent: number;
}

export interface RouteFilters {
  readonly requestHeaders: HeaderEdit | undefined;
  readonly responseHeaders: HeaderEdit | undefined;
  readonly redirect: Redirect | undefined;
  readonly mirror: Mirror | undefined;
}

export function compileFilters(route: RouteConfig): RouteFilters {
  let requestHeaders: HeaderEdit | undefined;
  let responseHeaders: HeaderEdit | undefined;
  let redirect: Redirect | undefined;
  let mirror: Mirror | undefined;
  for (const f of route.filters ?? []) {
    if (f.type === 'RequestHeaderModifier') requestHeaders = compileHeaderEdit(f.requestHeaderModifier);
    else if (f.type === 'ResponseHeaderModifier') responseHeaders = compileHeaderEdit(f.responseHeaderModifier);
    else if (f.type === 'RequestRedirect') redirect = compileRedirect(f.requestRedirect, route.match.path);
    else mirror = Object.freeze({ upstream: f.requestMirror.backendRef.name, percent: f.requestMirror.percent ?? DEFAULTS.mirrorPercent });
  }
  return { requestHeaders, responseHeaders, redirect, mirror };
}

function compileHeaderEdit(m: HeaderModifierConfig): HeaderEdit {
  const lower = (list: readonly HeaderWriteConfig[] | undefined) => (list ?? []).map((h) => ({ name: h.name.toLowerCase(), value: headerValue(h) }));
  const remove = (m.remove ?? []).map((n) => n.toLowerCase());
  const set = lower(m.set);
  const add = lower(m.add);
  return (headers) => {
    for (const name of remove) delete headers[name];
    for (const h of set) headers[h.name] = h.value;
    for (const h of add) {
      const current = headers[h.name];
      headers[h.name] = current === undefined ? h.value : Array.isArray(current) ? [...current, h.value] : [current, h.value];
    }
  };
}

/** A written header's value: inline, or read from its `valueFile` (at each build, so a reload picks up a new one). */
export function headerValue(h: HeaderWriteConfig): string {
  if (h.value !== undefined) return h.value;
  // A byte order mark (Windows editors write one) is no part of the value.
  const text = readFileSync(h.valueFile!, 'utf8').replace(/^\uFEFF/, '');
  const value = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  if (value === '') throw new Error(`valueFile ${h.valueFile} is empty`);
  // The schema's rule for inline values, which Node and undici enforce on every request that would send it.
  if (!HEADER_VALUE.test(value) || value.length > MAX_HEADER_VALUE) {
    throw new Error(`valueFile ${h.valueFile} must hold one header value: one line of visible characters, spaces or tabs (no control characters, none above U+00FF), at most ${MAX_HEADER_VALUE} characters`);
  }
  return value;
}

type RedirectConfig = Extract<NonNullable<RouteConfig['filters']>[number], { type: 'RequestRedirect' }>['requestRedirect'];

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

function compileRedirect(r: RedirectConfig, matched: RouteConfig['match']['path']): Redirect {
  const rewrite = pathRewrite(r.path, matched);
  // Listeners terminate TLS, so a request came over https.
  const scheme = r.scheme ?? 'https';
  // Unset, the port is the scheme's when the redirect names a scheme, else the one the client used (its Host
  // header's): behind a load balancer that maps ports, the listener's own port would be the wrong one.
  const fixedPort = r.port ?? (r.scheme ? DEFAULT_PORTS[r.scheme] : undefined);
  const hostname = r.hostname;
  return Object.freeze({
    statusCode: r.statusCode ?? DEFAULTS.redirectStatusCode,
    location(host: string, authority: string, path: string, query: string): string {
      const port = fixedPort ?? Number(/:(\d+)$/.exec(authority)?.[1] ?? DEFAULT_PORTS[scheme]);
      const name = hostname ?? (host.includes(':') ? `[${host}]` : host);
      const shown = port === DEFAULT_PORTS[scheme] ? '' : `:${port}`;
      return `${scheme}://${name}${shown}${rewrite(path)}${query}`;
    },
  });
}

function pathRewrite(path: RedirectConfig['path'], matched: RouteConfig['match']['path']): (path: string) => string {
  if (!path) return (p) => p;
  if (path.type === 'ReplaceFullPath') {
    const full = path.replaceFullPath;
    return () => full;
  }
  // The route matched this prefix (whole segments), so the rest of the path is '' or starts with '/'.
  const prefix = matched && 'prefix' in matched ? matched.prefix.replace(/\/$/, '') : '';
  const replacement = path.replacePrefixMatch.replace(/\/$/, '');
  return (p) => `${replacement}${p.slice(prefix.length)}` || '/';
}
