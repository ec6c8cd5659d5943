// A route's traffic split and its header and query matches (Gateway API HTTPRoute `backendRefs`, `headers`,
// `queryParams`), compiled once per config.
//
// Split: one backend per request, picked by weight with one uniform random number; retries stay on it (Envoy
// picks the weighted cluster once per request, too). A route with one upstream has no split at all.
//
// Matches: a header or parameter condition holds only when the request carries exactly one value of it. A repeated
// header or parameter does not match, whatever its values: the backend may read the other one (first or last, or
// all joined), so a route chosen by one copy could hand the backend a request it reads differently. Regular
// expressions are RE2 (re2js): linear in the input, no backtracking, so no pattern can be a ReDoS.
import { RE2JS } from 're2js';
import { onlyHeaderValue } from '../../core/raw-headers.js';
import { DEFAULTS } from '../../config/defaults.js';
import type { RouteConfig } from '../../config/schema.js';
import type { ValueMatchConfig } from '../../config/route-traffic-schema.js';

/** Where a request goes, and how long its upstream may take to answer. */
export interface Backend {
  readonly name: string;
  readonly timeoutMs: number;
}

export interface Split {
  /** Every backend with its weight, drained ones (weight 0) included, for explanations. */
  readonly weights: readonly { readonly backend: Backend; readonly weight: number }[];
  pick(): Backend;
}

/** `timeoutOf`: a backend's timeout when the route sets none (its upstream's). Throws when every weight is 0. */
export function compileSplit(refs: NonNullable<RouteConfig['backendRefs']>, timeoutOf: (upstream: string) => number): Split {
  const weights = refs.map((r) => Object.freeze({ backend: Object.freeze({ name: r.name, timeoutMs: timeoutOf(r.name) }), weight: r.weight ?? DEFAULTS.backendWeight }));
  const live = weights.filter((w) => w.weight > 0);
  if (live.length === 0) throw new Error('every backendRef has weight 0; give at least one a weight');
  const only = live.length === 1 ? live[0]!.backend : undefined;
  const bounds: number[] = [];
  let total = 0;
  for (const w of live) bounds.push((total += w.weight));
  return Object.freeze({
    weights,
    pick: only
      ? () => only
      : () => {
          const r = Math.random() * total;
          for (let i = 0; i < bounds.length; i++) if (r < bounds[i]!) return live[i]!.backend;
          return live[live.length - 1]!.backend;
        },
  });
}

/** The request's raw header lines (name, value, name, value, …) and its query with the leading `?` (or ''). */
export type RequestMatch = (rawHeaders: readonly string[], query: string) => boolean;

/** Undefined when the route has no header or query condition (nothing to check per request). */
export function compileRequestMatch(match: RouteConfig['match']): RequestMatch | undefined {
  // `host` is HTTP/2's `:authority` when one was sent, as for policies' request.headers[host] (pipeline.ts).
  const headers = (match.headers ?? []).map((h) => ({ name: h.name.toLowerCase(), test: valueTest(h) }));
  const params = (match.queryParams ?? []).map((p) => ({ name: p.name, test: valueTest(p) }));
  if (headers.length === 0 && params.length === 0) return undefined;
  return (rawHeaders, query) => {
    for (const h of headers) {
      const value = h.name === 'host' ? (onlyHeaderValue(rawHeaders, ':authority') ?? onlyHeaderValue(rawHeaders, 'host')) : onlyHeaderValue(rawHeaders, h.name);
      if (value === undefined || !h.test(value)) return false;
    }
    if (params.length === 0) return true;
    // The same reading of the query as the JWT stage's `fromParams` (WHATWG form decoding).
    const search = new URLSearchParams(query);
    for (const p of params) {
      const values = search.getAll(p.name);
      if (values.length !== 1 || !p.test(values[0]!)) return false;
    }
    return true;
  };
}

/** Throws with RE2's reason when a pattern is not RE2 syntax (backreferences, lookaround, …). */
export function checkValueMatch(m: ValueMatchConfig): void {
  valueTest(m);
}

function valueTest(m: ValueMatchConfig): (value: string) => boolean {
  if (m.type !== 'RegularExpression') {
    const expected = m.value;
    return (value) => value === expected;
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(m.value);
  } catch (err) {
    throw new Error(`"${m.value}" is not an RE2 regular expression: ${err instanceof Error ? err.message : String(err)}`);
  }
  // The whole value must match, as Envoy's safe_regex does: `v2` does not match `v20`.
  return (value) => re.matches(value);
}

/** The route's upstream for an explanation: its name, or each of a split's with its weight (`stable:90,canary:10`). */
export function backendsOf(route: { readonly backend: Backend | undefined; readonly split: Split | undefined }): string {
  return route.backend?.name ?? route.split?.weights.map((w) => `${w.backend.name}:${w.weight}`).join(',') ?? '';
}
