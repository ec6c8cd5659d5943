// A route's traffic fields (backendRefs, header and query matches, filters): the checks beyond the schema
// (gateway/config/route-traffic-checks.ts), through the real loader, each located by pointer and line.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError, loadConfigText } from '../../../gateway/config/load.js';

const UPSTREAMS = [
  { name: 'stable', url: 'http://10.0.0.1:80' },
  { name: 'canary', url: 'http://10.0.0.2:80' },
  { name: 'pg', url: 'tcp://10.0.0.3:5432' },
];

function issues(routes: unknown[]): string[] {
  try {
    loadConfigText(stringify({ version: 'v1', listeners: [], upstreams: UPSTREAMS, routes }), '/tmp/route-traffic.yaml');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

const route = (fields: Record<string, unknown>, match: Record<string, unknown> = { path: { prefix: '/r' } }) => ({ name: 'r', match, ...fields });

test('a route sends to exactly one of upstream, backendRefs or a redirect', () => {
  assert.deepEqual(issues([route({})]), ['/routes/0: set exactly one of upstream, backendRefs or a RequestRedirect filter (found none)']);
  assert.deepEqual(issues([route({ upstream: 'stable', backendRefs: [{ name: 'canary' }] })]), [
    '/routes/0/backendRefs: set exactly one of upstream, backendRefs or a RequestRedirect filter (found upstream and backendRefs)',
  ]);
  assert.deepEqual(issues([route({ backendRefs: [{ name: 'stable', weight: 99 }, { name: 'canary', weight: 1 }] })]), []);
});

test('backendRefs name HTTP upstreams, once each, and not all of them drained', () => {
  assert.deepEqual(issues([route({ backendRefs: [{ name: 'stable' }, { name: 'nope' }, { name: 'pg' }, { name: 'stable' }] })]), [
    '/routes/0/backendRefs/1/name: no upstream named "nope"',
    '/routes/0/backendRefs/2/name: upstream "pg" is tcp://10.0.0.3:5432; an HTTP route needs an http:// or https:// upstream',
    '/routes/0/backendRefs/3/name: upstream "stable" is named twice; give it one weight',
  ]);
  assert.deepEqual(issues([route({ backendRefs: [{ name: 'stable', weight: 0 }, { name: 'canary', weight: 0 }] })]), [
    '/routes/0/backendRefs: every backendRef has weight 0; give at least one a weight',
  ]);
});

test('the error names the file and line of the offending node', () => {
  try {
    loadConfigText(stringify({ version: 'v1', listeners: [], upstreams: UPSTREAMS, routes: [route({ backendRefs: [{ name: 'nope' }] })] }), '/tmp/route-traffic.yaml');
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.issues[0]!.file, '/tmp/route-traffic.yaml');
    assert.ok((err.issues[0]!.line ?? 0) > 1, JSON.stringify(err.issues[0]));
  }
});

test('a regular expression RE2 cannot run in linear time (backreference, lookaround) is refused at validate', () => {
  const found = issues([
    route(
      { upstream: 'stable' },
      {
        path: { prefix: '/r' },
        headers: [{ name: 'x-a', type: 'RegularExpression', value: '(a)\\1' }, { name: 'x-b', type: 'RegularExpression', value: '^v[0-9]+$' }],
        queryParams: [{ name: 'q', type: 'RegularExpression', value: '(?=x)y' }, { name: 'lit', value: '(a)\\1' }],
      },
    ),
  ]);
  assert.equal(found.length, 2, found.join('\n'));
  assert.match(found[0]!, /^\/routes\/0\/match\/headers\/0\/value: "\(a\)\\1" is not an RE2 regular expression: .*invalid escape/);
  assert.match(found[1]!, /^\/routes\/0\/match\/queryParams\/0\/value: .*not an RE2 regular expression: .*Perl syntax/);
});

test('header modifiers may not touch what the gateway sets, strips or frames', () => {
  const modifier = (type: string, key: string, m: Record<string, unknown>) => ({ type, [key]: m });
  const found = issues([
    route({
      upstream: 'stable',
      filters: [
        modifier('RequestHeaderModifier', 'requestHeaderModifier', {
          set: [{ name: 'X-Forwarded-For', value: '1.2.3.4' }, { name: 'x-env', value: 'ok' }, { name: 'Host', value: 'h' }],
          add: [{ name: 'transfer-encoding', value: 'chunked' }, { name: 'x-user', value: 'admin' }, { name: 'x_forwarded_for', value: 'x' }],
          remove: ['forwarded', 'content-length', 'x-request-id', 'x-original-url', 'x-portcullis-peer', 'x-fine'],
        }),
        modifier('ResponseHeaderModifier', 'responseHeaderModifier', { set: [{ name: 'Connection', value: 'close' }, { name: 'x-ok', value: '1' }], remove: ['content-length'] }),
      ],
    }),
  ]);
  const at = (p: string) => found.filter((f) => f.startsWith(`/routes/0/filters/${p}`)).map((f) => f.split(':')[0]);
  assert.deepEqual(at('0/'), [
    '/routes/0/filters/0/requestHeaderModifier/set/0/name',
    '/routes/0/filters/0/requestHeaderModifier/set/2/name',
    '/routes/0/filters/0/requestHeaderModifier/add/0/name',
    '/routes/0/filters/0/requestHeaderModifier/add/2/name',
    '/routes/0/filters/0/requestHeaderModifier/remove/0',
    '/routes/0/filters/0/requestHeaderModifier/remove/1',
    '/routes/0/filters/0/requestHeaderModifier/remove/2',
    '/routes/0/filters/0/requestHeaderModifier/remove/3',
    '/routes/0/filters/0/requestHeaderModifier/remove/4',
  ]);
  assert.deepEqual(at('1/'), ['/routes/0/filters/1/responseHeaderModifier/set/0/name', '/routes/0/filters/1/responseHeaderModifier/remove/0']);
  assert.match(found[0]!, /"X-Forwarded-For" is set, stripped or framed by the gateway itself; a route may not change it/);
});

test('claim headers of the JWT providers are the gateway\'s own too', () => {
  try {
    loadConfigText(
      stringify({
        version: 'v1',
        listeners: [],
        upstreams: UPSTREAMS,
        jwtProviders: [{ name: 'corp', issuer: 'https://issuer', jwks: '{"keys":[]}', claimsToHeaders: [{ header: 'x-user', claim: 'sub' }] }],
        routes: [route({ upstream: 'stable', filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-User', value: 'admin' }] } }] })],
      }),
      '/tmp/route-traffic.yaml',
    );
    assert.fail('accepted');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.ok(err.issues.some((i) => i.path === '/routes/0/filters/0/requestHeaderModifier/set/0/name'), JSON.stringify(err.issues));
  }
});

test('filters: each type once, nothing beside a redirect, ReplacePrefixMatch needs a prefix, mirrors name HTTP upstreams', () => {
  assert.deepEqual(
    issues([
      route({
        filters: [
          { type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } } },
          { type: 'RequestMirror', requestMirror: { backendRef: { name: 'pg' } } },
        ],
      }, { path: { exact: '/r' } }),
      { name: 'twice', match: {}, upstream: 'stable', filters: [
        { type: 'RequestMirror', requestMirror: { backendRef: { name: 'canary' } } },
        { type: 'RequestMirror', requestMirror: { backendRef: { name: 'nope' } } },
      ] },
    ]),
    [
      '/routes/0/filters/0/requestRedirect/path: ReplacePrefixMatch replaces the prefix the route matched, so the route needs match.path.prefix',
      '/routes/0/filters/1/type: a redirect route sends nothing upstream, so RequestMirror has nothing to act on',
      '/routes/0/filters/1/requestMirror/backendRef/name: upstream "pg" is tcp://10.0.0.3:5432; an HTTP route needs an http:// or https:// upstream',
      '/routes/1/filters/1/type: a second RequestMirror filter; give each filter type once',
      '/routes/1/filters/1/requestMirror/backendRef/name: no upstream named "nope"',
    ],
  );
});

test('a written header gives its value inline or in a file, exactly one; a missing file is located', () => {
  const modifier = (write: Record<string, unknown>) =>
    issues([route({ upstream: 'stable', filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-api-key', ...write }] } }] })]);
  const exactlyOne = 'give the value either inline (value) or in a file (valueFile), exactly one of them';
  assert.deepEqual(modifier({}), [`/routes/0/filters/0/requestHeaderModifier/set/0: ${exactlyOne}`]);
  const both = modifier({ value: 'k', valueFile: '/nonexistent/portcullis-api-key' });
  assert.ok(both.includes(`/routes/0/filters/0/requestHeaderModifier/set/0: ${exactlyOne}`), both.join('\n'));
  assert.ok(both.some((i) => i.startsWith('/routes/0/filters/0/requestHeaderModifier/set/0/valueFile: ')), both.join('\n'));
});
