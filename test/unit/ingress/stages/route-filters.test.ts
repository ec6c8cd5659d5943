// A route's filters compiled (gateway/ingress/stages/route-filters.ts): the Location of a redirect for each
// combination of scheme, host and port, the order of a header edit, and the mirror's shadow authority.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RouteConfig } from '../../../../gateway/config/schema.js';
import { compileFilters, headerValue } from '../../../../gateway/ingress/stages/route-filters.js';
import { shadowAuthority } from '../../../../gateway/ingress/upstream/mirror.js';

const withFilters = (filters: RouteConfig['filters'], path: RouteConfig['match']['path'] = { prefix: '/old/' }): RouteConfig => ({ name: 'r', match: { path }, filters });
type RedirectFields = Extract<NonNullable<RouteConfig['filters']>[number], { type: 'RequestRedirect' }>['requestRedirect'];
const redirect = (r: RedirectFields, path?: RouteConfig['match']['path']) => compileFilters(withFilters([{ type: 'RequestRedirect', requestRedirect: r }], path)).redirect!;

test('the Location keeps what the redirect does not name', () => {
  const keep = redirect({});
  assert.equal(keep.statusCode, 302);
  assert.equal(keep.location('shop.test', 'shop.test', '/old/a', '?x=1'), 'https://shop.test/old/a?x=1');
  assert.equal(keep.location('shop.test', 'shop.test:8443', '/a', ''), 'https://shop.test:8443/a', 'the port the client used');
  assert.equal(keep.location('shop.test', 'shop.test:443', '/a', ''), 'https://shop.test/a', 'the scheme\'s own port is not written');
  assert.equal(keep.location('::1', '[::1]:8443', '/a', ''), 'https://[::1]:8443/a');
});

test('scheme, hostname and port: a named scheme brings its own port', () => {
  assert.equal(redirect({ scheme: 'http' }).location('shop.test', 'shop.test:8443', '/a', ''), 'http://shop.test/a');
  assert.equal(redirect({ hostname: 'www.test' }).location('shop.test', 'shop.test:8443', '/a', ''), 'https://www.test:8443/a');
  assert.equal(redirect({ scheme: 'http', port: 8080 }).location('shop.test', 'shop.test', '/a', ''), 'http://shop.test:8080/a');
  assert.equal(redirect({ port: 443 }).location('shop.test', 'shop.test:8443', '/a', ''), 'https://shop.test/a');
});

test('paths: the full path replaced, or the prefix the route matched', () => {
  assert.equal(redirect({ path: { type: 'ReplaceFullPath', replaceFullPath: '/maintenance' } }).location('h', 'h', '/old/a', '?q'), 'https://h/maintenance?q');
  const prefix = redirect({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } });
  assert.equal(prefix.location('h', 'h', '/old/a/b', ''), 'https://h/new/a/b');
  assert.equal(prefix.location('h', 'h', '/old', ''), 'https://h/new');
  const toRoot = redirect({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } });
  assert.equal(toRoot.location('h', 'h', '/old/a', ''), 'https://h/a');
  assert.equal(toRoot.location('h', 'h', '/old', ''), 'https://h/');
});

test('a header edit removes, then sets, then adds; names in any case', () => {
  const { requestHeaders } = compileFilters(
    withFilters([{ type: 'RequestHeaderModifier', requestHeaderModifier: { remove: ['X-Old'], set: [{ name: 'X-Env', value: 'prod' }], add: [{ name: 'X-Tag', value: 'b' }, { name: 'x-new', value: '1' }] } }]),
  );
  const headers: Record<string, string | string[] | undefined> = { 'x-old': 'gone', 'x-env': 'dev', 'x-tag': ['a', 'a2'] };
  requestHeaders!(headers);
  assert.deepEqual(headers, { 'x-env': 'prod', 'x-tag': ['a', 'a2', 'b'], 'x-new': '1' });
});

test('a route without filters compiles to nothing to run', () => {
  assert.deepEqual(compileFilters(withFilters(undefined)), { requestHeaders: undefined, responseHeaders: undefined, redirect: undefined, mirror: undefined });
});

test('the shadow authority: Envoy\'s -shadow suffix on the host, the port kept', () => {
  assert.equal(shadowAuthority('shop.test'), 'shop.test-shadow');
  assert.equal(shadowAuthority('shop.test:8443'), 'shop.test-shadow:8443');
});

test('a valueFile holds one header value as Node would send it: a BOM and one line break dropped, controls and wide characters refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-value-file-'));
  try {
    const valueOf = (content: string) => {
      const file = join(dir, 'value');
      writeFileSync(file, content);
      return headerValue({ name: 'x-api-key', valueFile: file });
    };
    assert.equal(valueOf('\uFEFFkey-1\r\n'), 'key-1');
    assert.equal(valueOf('caf\u00e9 \tkey\n'), 'caf\u00e9 \tkey', 'Latin-1, spaces and tabs are field-value octets');
    for (const bad of ['', '\n', 'a\nb', 'a\rb', 'a\u0000b', 'a\u0001b', 'a\u007fb', 'price \u20ac', 'x'.repeat(8193)]) {
      assert.throws(() => valueOf(bad), /must hold one header value|is empty/, JSON.stringify(bad.slice(0, 20)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
