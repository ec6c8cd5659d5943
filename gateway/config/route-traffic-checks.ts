// The checks of a route's traffic fields (route-traffic-schema.ts) that the schema cannot express: where requests go
// (exactly one of `upstream`, `backendRefs`, a redirect), RE2 patterns, and header modifiers that would touch what the
// gateway itself vouches for.
import { HOP_BY_HOP_HEADERS } from '../core/net/hop-by-hop.js';
import { checkValueMatch } from '../ingress/stages/route-traffic.js';
import { isGatewayManaged } from '../ingress/stages/sanitize-headers.js';
import type { Report } from './compile.js';
import type { HeaderModifierConfig, RouteFilterConfig } from './route-traffic-schema.js';
import type { RouteConfig } from './schema.js';

/** `httpUpstream(name, pointer)` reports a name that is not an HTTP upstream. */
export function checkRouteTraffic<S>(
  r: RouteConfig,
  at: string,
  httpUpstream: (name: string, pointer: string) => void,
  claimHeaders: readonly string[],
  report: Report<S>,
): void {
  const filters = r.filters ?? [];
  const redirect = filters.findIndex((f) => f.type === 'RequestRedirect');
  const targets = [r.upstream !== undefined && 'upstream', r.backendRefs !== undefined && 'backendRefs', redirect >= 0 && 'a RequestRedirect filter'].filter(Boolean);
  if (targets.length !== 1) {
    report(targets.length === 0 ? at : `${at}/${r.backendRefs ? 'backendRefs' : 'upstream'}`, `set exactly one of upstream, backendRefs or a RequestRedirect filter (found ${targets.length === 0 ? 'none' : targets.join(' and ')})`);
  }
  checkBackendRefs(r, at, httpUpstream, report);
  (['headers', 'queryParams'] as const).forEach((kind) =>
    r.match[kind]?.forEach((m, k) => {
      try {
        checkValueMatch(m);
      } catch (err) {
        report(`${at}/match/${kind}/${k}/value`, (err as Error).message);
      }
    }),
  );
  const seen = new Set<string>();
  filters.forEach((f, k) => {
    const where = `${at}/filters/${k}`;
    if (seen.has(f.type)) report(`${where}/type`, `a second ${f.type} filter; give each filter type once`);
    seen.add(f.type);
    if (redirect >= 0 && f.type !== 'RequestRedirect') report(`${where}/type`, `a redirect route sends nothing upstream, so ${f.type} has nothing to act on`);
    checkFilter(r, f, where, httpUpstream, claimHeaders, report);
  });
}

function checkBackendRefs<S>(r: RouteConfig, at: string, httpUpstream: (name: string, pointer: string) => void, report: Report<S>): void {
  const refs = r.backendRefs;
  if (!refs) return;
  const names = new Set<string>();
  refs.forEach((ref, k) => {
    if (names.has(ref.name)) report(`${at}/backendRefs/${k}/name`, `upstream "${ref.name}" is named twice; give it one weight`);
    names.add(ref.name);
    httpUpstream(ref.name, `${at}/backendRefs/${k}/name`);
  });
  if (refs.every((ref) => ref.weight === 0)) report(`${at}/backendRefs`, 'every backendRef has weight 0; give at least one a weight');
}

function checkFilter<S>(r: RouteConfig, f: RouteFilterConfig, where: string, httpUpstream: (name: string, pointer: string) => void, claimHeaders: readonly string[], report: Report<S>): void {
  switch (f.type) {
    case 'RequestHeaderModifier':
      return checkModifier(f.requestHeaderModifier, `${where}/requestHeaderModifier`, (name) => isGatewayManaged(name, claimHeaders), report);
    case 'ResponseHeaderModifier':
      return checkModifier(f.responseHeaderModifier, `${where}/responseHeaderModifier`, (name) => name === 'content-length' || HOP_BY_HOP_HEADERS.has(name), report);
    case 'RequestMirror':
      return httpUpstream(f.requestMirror.backendRef.name, `${where}/requestMirror/backendRef/name`);
    case 'RequestRedirect':
      if (f.requestRedirect.path?.type === 'ReplacePrefixMatch' && (!r.match.path || !('prefix' in r.match.path))) {
        report(`${where}/requestRedirect/path`, 'ReplacePrefixMatch replaces the prefix the route matched, so the route needs match.path.prefix');
      }
  }
}

function checkModifier<S>(m: HeaderModifierConfig, at: string, managed: (name: string) => boolean, report: Report<S>): void {
  if (!m.set && !m.add && !m.remove) report(at, 'set, add or remove at least one header');
  for (const list of ['set', 'add'] as const) {
    m[list]?.forEach((h, k) => {
      if (managed(h.name.toLowerCase())) report(`${at}/${list}/${k}/name`, `"${h.name}" is set, stripped or framed by the gateway itself; a route may not change it`);
      if ((h.value === undefined) === (h.valueFile === undefined)) report(`${at}/${list}/${k}`, 'give the value either inline (value) or in a file (valueFile), exactly one of them');
    });
  }
  m.remove?.forEach((name, k) => {
    if (managed(name.toLowerCase())) report(`${at}/remove/${k}`, `"${name}" is set, stripped or framed by the gateway itself; a route may not change it`);
  });
}
