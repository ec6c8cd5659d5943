// Route selection as case tables: path case (both readings must agree) and the per-route opt-outs.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteConfig } from '../../../../gateway/config/schema.js';
import { GatewayError } from '../../../../gateway/core/errors.js';
import { compileRoute, createRouteTable, type PathCase } from '../../../../gateway/ingress/stages/route.js';
import { createPathStage } from '../../../../gateway/ingress/stages/normalize-path.js';

const route = (name: string, prefix: string, extra: Partial<RouteConfig> = {}): RouteConfig => ({
  name,
  match: { path: { prefix } },
  upstream: 'echo',
  ...extra,
});

function selector(routes: RouteConfig[], pathCase?: PathCase) {
  const table = createRouteTable(routes.map((r) => compileRoute(r, { maxBodyBytes: 1, upstreamTimeoutMs: () => 1, pathCase })));
  const paths = createPathStage(routes);
  return (target: string): string => {
    try {
      return table.select('main', 'GET', paths.normalize(target), [])?.name ?? '404';
    } catch (err) {
      if (err instanceof GatewayError) return `${err.code} ${err.reason}`;
      throw err;
    }
  };
}

const ROUTES = [route('internal', '/api/internal'), route('api', '/api'), route('public', '/')];
const AMBIGUOUS = 'GW_PATH_REJECTED path_case_ambiguous';

function table(title: string, select: (target: string) => string, cases: [target: string, expected: string][]): void {
  describe(title, () => {
    for (const [target, expected] of cases) test(JSON.stringify(target), () => assert.equal(select(target), expected));
  });
}

table('default case: both readings must pick the same route', selector(ROUTES), [
  ['/api/internal/keys', 'internal'],
  ['/api/orders', 'api'],
  ['/public/x', 'public'],
  ['/Public/X', 'public'],
  ['/api/Orders', 'api'],
  ['/api/INTERNAL/keys', AMBIGUOUS],
  ['/API/internal', AMBIGUOUS],
  ['/API/orders', AMBIGUOUS],
]);

table('default case without a catch-all: a folded-only match takes the folded route', selector([route('internal', '/api/internal'), route('api', '/api')]), [
  ['/API/orders', 'api'],
  ['/API/INTERNAL', 'internal'],
  ['/api/INTERNAL', AMBIGUOUS],
  ['/other', '404'],
]);

table('routes that differ only in case cannot be confused', selector([route('upper', '/Files'), route('lower', '/files')]), [
  ['/Files/a', 'upper'],
  ['/files/a', AMBIGUOUS],
  ['/FILES/a', 'upper'],
]);

table('pathCase: insensitive (global)', selector(ROUTES, 'insensitive'), [
  ['/api/INTERNAL/keys', 'internal'],
  ['/API/orders', 'api'],
  ['/public/x', 'public'],
]);

table('pathCase: sensitive (global)', selector(ROUTES, 'sensitive'), [
  ['/api/INTERNAL/keys', 'api'],
  ['/API/internal', 'public'],
]);

table('pathCase on one route overrides the global one', selector([route('internal', '/api/internal', { pathCase: 'insensitive' }), route('api', '/api'), route('public', '/')], 'sensitive'), [
  ['/api/INTERNAL/keys', 'internal'],
  ['/API/orders', 'public'],
]);

table('opt-outs apply only to the routes that have them', selector([
  route('legacy', '/legacy', { pathNormalization: { allowSemicolonParams: true, allowEncodedPercent: true, decodeUtf8: 'nfkc' } }),
  route('admin', '/admin'),
  route('public', '/'),
]), [
  ['/legacy/a;jsessionid=1', 'legacy'],
  ['/legacy/100%25', 'legacy'],
  ['/legacy/caf%c3%a9', 'legacy'],
  ['/admin;x', 'GW_PATH_REJECTED path_parameters'],
  ['/legacy/../admin;x', 'GW_PATH_REJECTED path_parameters'],
  ['/admin/%25', 'GW_PATH_REJECTED encoded_percent'],
  ['/%ef%bd%81dmin', 'GW_PATH_REJECTED encoded_non_ascii'],
  ['/x;y', 'GW_PATH_REJECTED path_parameters'],
  ['/legacy/..;/admin', 'GW_PATH_REJECTED parameters_on_dot_or_empty_segment'],
  ['/legacy/%2561', 'legacy'],
]);

table('without any opt-out, the strict default refuses before routing', selector(ROUTES), [
  ['/public/a;b', 'GW_PATH_REJECTED path_parameters'],
  ['/public/caf%c3%a9', 'GW_PATH_REJECTED encoded_non_ascii'],
  ['/public/%25', 'GW_PATH_REJECTED encoded_percent'],
]);

describe('an allowed method override is the method policies see', () => {
  const compiled = compileRoute(
    { ...route('legacy', '/legacy', { allowOverrideHeaders: ['x-http-method-override', 'x-method-override'] }), match: { path: { prefix: '/legacy' }, methods: ['GET', 'POST', 'PUT'] } },
    { maxBodyBytes: 1, upstreamTimeoutMs: () => 1 },
  );
  const effective = (headers: Record<string, string>): string => {
    try {
      return compiled.effectiveMethod('POST', headers);
    } catch (err) {
      if (err instanceof GatewayError) return `${err.code} ${err.reason}`;
      throw err;
    }
  };
  const cases: [headers: Record<string, string>, expected: string][] = [
    [{}, 'POST'],
    [{ 'x-http-method-override': 'PUT' }, 'PUT'],
    [{ 'x-http-method-override': 'PUT', 'x-method-override': 'PUT' }, 'PUT'],
    [{ 'x-http-method-override': 'PUT', 'x-method-override': 'GET' }, 'GW_REQUEST_MALFORMED method_override'],
    [{ 'x-http-method-override': 'put' }, 'GW_REQUEST_MALFORMED method_override'],
    [{ 'x-http-method-override': 'GET, DELETE' }, 'GW_REQUEST_MALFORMED method_override'],
    [{ 'x-http-method-override': 'DELETE' }, 'GW_METHOD_NOT_ALLOWED method_override'],
    // Not allowed on this route: stripped by the sanitizer, and ignored here.
    [{ 'x-http-method': 'DELETE' }, 'POST'],
  ];
  for (const [headers, expected] of cases) test(JSON.stringify(headers), () => assert.equal(effective(headers), expected));
});
