import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { isNormalizedPath, normalizeRequestTarget, type NormalizeResult } from '../../../gateway/ingress/stages/normalize-path.js';

const ok = (path: string, query = ''): NormalizeResult => ({ path, query });
const rejected = (reason: string): NormalizeResult => ({ error: 'GW_PATH_REJECTED', reason });
const malformed = (reason: string): NormalizeResult => ({ error: 'GW_REQUEST_MALFORMED', reason });

function table(title: string, cases: [target: string, expected: NormalizeResult][], options?: Parameters<typeof normalizeRequestTarget>[1]): void {
  describe(title, () => {
    for (const [target, expected] of cases) {
      test(JSON.stringify(target), () => assert.deepEqual(normalizeRequestTarget(target, options), expected));
    }
  });
}

table('spellings of a denied /admin', [
  ['/admin', ok('/admin')],
  ['//admin', ok('/admin')],
  ['/./admin', ok('/admin')],
  ['/x/../admin', ok('/admin')],
  ['/%2e%2e/admin', rejected('dot_segment_above_root')],
  ['/x/%2e%2e/admin', ok('/admin')],
  ['/x/.%2E/admin', ok('/admin')],
  ['/%2E/admin', ok('/admin')],
  ['/%2fadmin', rejected('escaped_slash')],
  ['/%2Fadmin', rejected('escaped_slash')],
  ['/%5Cadmin', rejected('escaped_slash')],
  ['/%5cadmin', rejected('escaped_slash')],
  ['/\\admin', rejected('backslash')],
  ['/admin#x', rejected('fragment')],
  ['/admin?x#y', rejected('fragment')],
  ['/admin%00', rejected('nul')],
  ['/admin\u0000', rejected('nul')],
  ['/ADMIN', ok('/ADMIN')],
  ['/admin/', ok('/admin/')],
  ['/a/%252e%252e/admin', ok('/a/%252e%252e/admin')],
  ['/%61dmin', ok('/admin')],
  ['/public/..;/admin', rejected('parameters_on_dot_or_empty_segment')],
  ['/public/.;x/admin', rejected('parameters_on_dot_or_empty_segment')],
  ['/;/admin', rejected('parameters_on_dot_or_empty_segment')],
  ['/x/;p=1/../admin', rejected('parameters_on_dot_or_empty_segment')],
  ['/x/..%3B/admin', rejected('parameters_on_dot_or_empty_segment')],
]);

table('RFC 3986 dot segments and slashes', [
  ['/', ok('/')],
  ['//', ok('/')],
  ['/.', ok('/')],
  ['/a/b/..', ok('/a/')],
  ['/a/b/.', ok('/a/b/')],
  ['/a/b/../..', ok('/')],
  ['/a/b/../../..', rejected('dot_segment_above_root')],
  ['/..', rejected('dot_segment_above_root')],
  ['/a//b///c', ok('/a/b/c')],
  ['/a/b//', ok('/a/b/')],
  ['/a/./b/../c/', ok('/a/c/')],
  ['/.well-known/x', ok('/.well-known/x')],
  ['/a/.../b', ok('/a/.../b')],
  ['/a/..b/c', ok('/a/..b/c')],
  ['/a;b=c/d', ok('/a;b=c/d')],
]);

table('percent-encoding: decode unreserved once, upper-case the rest', [
  ['/%41%42%7e%2D%5f', ok('/AB~-_')],
  ['/caf%c3%a9', ok('/caf%C3%A9')],
  ['/a%3bb', ok('/a%3Bb')],
  ['/a%20b', ok('/a%20b')],
  ['/a%252fb', ok('/a%252fb')],
  ['/%25', ok('/%25')],
  ['/a%zz', malformed('invalid_percent_encoding')],
  ['/a%4', malformed('invalid_percent_encoding')],
  ['/a%', malformed('invalid_percent_encoding')],
  ['/a%4?x', malformed('invalid_percent_encoding')],
  ['/a%g1', malformed('invalid_percent_encoding')],
]);

table('query is returned untouched and never normalized', [
  ['/a?x=1', ok('/a', '?x=1')],
  ['/a?', ok('/a', '?')],
  ['/a/../b?c=/../%2F&d=%zz', ok('/b', '?c=/../%2F&d=%zz')],
  ['/a?b?c', ok('/a', '?b?c')],
  ['/a?x=\u0001', rejected('invalid_character')],
]);

table('request-target form and bytes', [
  ['', malformed('not_origin_form')],
  ['*', malformed('not_origin_form')],
  ['http://example.com/a', malformed('not_origin_form')],
  ['admin', malformed('not_origin_form')],
  ['?x', malformed('not_origin_form')],
  ['/a b', rejected('invalid_character')],
  ['/a\tb', rejected('invalid_character')],
  ['/a\u007fb', rejected('invalid_character')],
  ['/caf\u00e9', rejected('invalid_character')],
  ['/a\r\nb', rejected('invalid_character')],
]);

table('escapedSlashes: keep', [
  ['/a%2fb', ok('/a%2Fb')],
  ['/a%5cb', ok('/a%5Cb')],
  ['/a/..%2F..%2Fadmin', ok('/a/..%2F..%2Fadmin')],
  ['/\\a', rejected('backslash')],
], { escapedSlashes: 'keep' });

describe('properties', () => {
  test('fast path returns the target itself', () => {
    const target = '/api/v1/orders/123.json';
    const result = normalizeRequestTarget(target);
    assert.ok('path' in result);
    assert.equal(result.path, target);
  });

  test('normalizing is idempotent over a corpus of tricky targets', () => {
    const parts = ['a', '.', '..', '', '%2e', '%2E%2e', '%41', '%25', '%2f', 'b;c', '..;', '%252e', 'x.y'];
    let checked = 0;
    for (const a of parts) for (const b of parts) for (const c of parts) {
      const first = normalizeRequestTarget(`/${a}/${b}/${c}`, { escapedSlashes: 'keep' });
      if (!('path' in first)) continue;
      checked++;
      assert.deepEqual(normalizeRequestTarget(first.path, { escapedSlashes: 'keep' }), first, `/${a}/${b}/${c}`);
      assert.ok(isNormalizedPath(first.path, { escapedSlashes: 'keep' }));
      // The output has nothing a backend could resolve or decode into a different path.
      assert.doesNotMatch(first.path, /\/\.\.?(\/|$)|\/\/|%2[eE]|%4[1-9A-F]/);
    }
    assert.ok(checked > 500);
  });
});
