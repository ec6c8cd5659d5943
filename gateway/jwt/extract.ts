// Where JWTs are read from: every provider's locations compiled once into one index, applied per request.
// Istio leaves requests with several tokens undefined ("the output principal is undefined"); we refuse them, so
// which token was authenticated never depends on header order.
import type { IncomingHttpHeaders } from 'node:http';
import { countHeader } from '../core/raw-headers.js';
import { DEFAULTS } from '../config/defaults.js';
import type { JwtProviderConfig } from '../config/schema.js';

type LocationConfig = Pick<JwtProviderConfig, 'name' | 'fromHeaders' | 'fromCookies' | 'fromParams'>;

export type Extraction =
  | { readonly kind: 'none' }
  | { readonly kind: 'multiple' }
  /** A token header is present but carries none of the configured prefixes: invalid, not missing (Istio). */
  | { readonly kind: 'malformed'; readonly header: string }
  | {
      readonly kind: 'token';
      readonly token: string;
      /** Allowed providers that read at least one location the token was found in; only they may verify it. */
      readonly providers: ReadonlySet<string>;
      readonly headers: readonly string[];
      readonly cookies: readonly string[];
      readonly params: readonly string[];
    };

export type TokenExtractor = (
  headers: IncomingHttpHeaders,
  query: string,
  allowedProviders?: ReadonlySet<string>,
  rawHeaders?: readonly string[],
) => Extraction;

interface Prefixed {
  prefix: string;
  providers: string[];
}
interface HeaderLocation {
  name: string;
  prefixes: Prefixed[];
}
interface NamedLocation {
  name: string;
  providers: string[];
}

const NONE: Extraction = Object.freeze({ kind: 'none' });
const MULTIPLE: Extraction = Object.freeze({ kind: 'multiple' });

function addProvider<T extends { providers: string[] }>(list: T[], match: (x: T) => boolean, make: () => T, provider: string): void {
  const existing = list.find(match);
  if (existing) existing.providers.push(provider);
  else list.push(make());
}

const isAllowed = (providers: readonly string[], allowed: ReadonlySet<string> | undefined): boolean =>
  allowed === undefined || providers.some((p) => allowed.has(p));

function headerValues(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  // A compact JWS never contains ',' (RFC 7515 §7.1), so a comma means Node joined repeated header lines
  // (joinDuplicateHeaders) or a client sent a list: each part is a separate token candidate.
  return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(','));
}

// Hand-written because no installed library parses Cookie headers; RFC 6265 §5.4 pairs split on ';', name before '='.
function cookieValues(header: string | string[] | undefined, name: string): string[] {
  const out: string[] = [];
  for (const line of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
    for (const pair of line.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim() === name) out.push(pair.slice(eq + 1).trim());
    }
  }
  return out;
}

export function createTokenExtractor(providers: readonly LocationConfig[]): TokenExtractor {
  const headerLocs: HeaderLocation[] = [];
  const cookieLocs: NamedLocation[] = [];
  const paramLocs: NamedLocation[] = [];
  for (const p of providers) {
    const noneConfigured = !p.fromHeaders?.length && !p.fromCookies?.length && !p.fromParams?.length;
    for (const h of noneConfigured ? DEFAULTS.jwtFromHeaders : (p.fromHeaders ?? [])) {
      const name = h.name.toLowerCase();
      const prefix = (h.prefix ?? '').toLowerCase();
      let loc = headerLocs.find((l) => l.name === name);
      if (!loc) headerLocs.push((loc = { name, prefixes: [] }));
      addProvider(loc.prefixes, (x) => x.prefix === prefix, () => ({ prefix, providers: [p.name] }), p.name);
    }
    for (const c of p.fromCookies ?? []) {
      addProvider(cookieLocs, (x) => x.name === c, () => ({ name: c, providers: [p.name] }), p.name);
    }
    for (const q of p.fromParams ?? []) {
      addProvider(paramLocs, (x) => x.name === q, () => ({ name: q, providers: [p.name] }), p.name);
    }
  }
  // Longest prefix first, so `Bearer ` is tried before a bare-token location on the same header.
  for (const loc of headerLocs) loc.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);

  const headerNames = headerLocs.map((l) => l.name);
  // Most requests carry no token at all: answered without allocating anything.
  const nothingToRead = (headers: IncomingHttpHeaders, query: string): boolean =>
    headerNames.every((name) => headers[name] === undefined) &&
    (cookieLocs.length === 0 || headers.cookie === undefined) &&
    (paramLocs.length === 0 || query === '');

  return (headers, query, allowed, rawHeaders) => {
    if (nothingToRead(headers, query)) return NONE;
    let token: string | undefined;
    const found = new Set<string>();
    const hits = { headers: [] as string[], cookies: [] as string[], params: [] as string[] };
    let multiple = false;
    const take = (candidate: string, providerNames: readonly string[], kind: keyof typeof hits, name: string): void => {
      if (token === undefined) token = candidate;
      else if (candidate !== token) multiple = true;
      for (const p of providerNames) if (allowed === undefined || allowed.has(p)) found.add(p);
      if (!hits[kind].includes(name)) hits[kind].push(name);
    };

    for (const loc of headerLocs) {
      const raw = headers[loc.name];
      if (raw === undefined) continue;
      const prefixes = loc.prefixes.filter((x) => isAllowed(x.providers, allowed));
      if (prefixes.length === 0) continue;
      const values = headerValues(raw);
      // A repeated token header is refused even when both copies agree: a client that sends it is confused or probing.
      // Node keeps only the first Authorization (and Proxy-Authorization) line in `headers`, so repeats are
      // counted in the raw header list.
      if (values.length > 1 || (rawHeaders !== undefined && countHeader(rawHeaders, loc.name) > 1)) return MULTIPLE;
      const value = (values[0] ?? '').trim();
      // RFC 7235 §2.1: the auth-scheme is case-insensitive, so prefixes (stored lower-case) are matched without case.
      const match = prefixes.find((x) => value.slice(0, x.prefix.length).toLowerCase() === x.prefix);
      const candidate = match ? value.slice(match.prefix.length).trim() : '';
      if (!match || candidate === '') return { kind: 'malformed', header: loc.name };
      take(candidate, match.providers, 'headers', loc.name);
    }
    for (const loc of cookieLocs) {
      if (headers.cookie === undefined || !isAllowed(loc.providers, allowed)) continue;
      for (const v of cookieValues(headers.cookie, loc.name)) if (v !== '') take(v, loc.providers, 'cookies', loc.name);
    }
    if (query !== '') {
      const params = paramLocs.filter((loc) => isAllowed(loc.providers, allowed));
      if (params.length > 0) {
        const search = new URLSearchParams(query);
        for (const loc of params) {
          for (const v of search.getAll(loc.name)) if (v !== '') take(v, loc.providers, 'params', loc.name);
        }
      }
    }
    if (multiple) return MULTIPLE;
    if (token === undefined) return NONE;
    return { kind: 'token', token, providers: found, ...hits };
  };
}
