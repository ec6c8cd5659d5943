import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileClaimHeaders, toRequestAuth } from '../../../gateway/jwt/claims.js';

test('claimsToHeaders keeps scalar claims and drops everything else', () => {
  const headers = compileClaimHeaders([
    { header: 'x-a', claim: 'a' },
    { header: 'x-n', claim: 'n' },
    { header: 'x-f', claim: 'f' },
    { header: 'x-b', claim: 'b' },
    { header: 'x-deep', claim: 'o.p.q' },
    { header: 'x-arr', claim: 'arr' },
    { header: 'x-obj', claim: 'o' },
    { header: 'x-null', claim: 'nul' },
    { header: 'x-missing', claim: 'o.zzz' },
    { header: 'x-through-array', claim: 'arr.0' },
    { header: 'x-proto', claim: 'constructor.name' },
    { header: 'x-crlf', claim: 'crlf' },
    { header: 'x-unicode', claim: 'uni' },
    { header: 'x-inf', claim: 'inf' },
  ]);
  const out = headers({
    a: 'text',
    n: 42,
    f: 1.5,
    b: true,
    o: { p: { q: 'deep' } },
    arr: ['x'],
    nul: null,
    crlf: 'a\r\nx-admin: 1',
    uni: 'snowman \u2603',
    inf: Infinity,
  });
  assert.deepEqual(out, { 'x-a': 'text', 'x-n': '42', 'x-f': '1.5', 'x-b': 'true', 'x-deep': 'deep' });
  assert.ok(Object.isFrozen(out));
});

test('RequestAuth: principal is iss/sub, aud becomes a list, the result is frozen', () => {
  const auth = toRequestAuth({ iss: 'https://idp', sub: 'u1', aud: 'api', scope: 'a b', nested: { x: [1] } });
  assert.equal(auth.principal, 'https://idp/u1');
  assert.deepEqual(auth.audiences, ['api']);
  assert.deepEqual(toRequestAuth({ iss: 'i', sub: 's', aud: ['a', 'b'] }).audiences, ['a', 'b']);
  assert.deepEqual(toRequestAuth({ iss: 'i', sub: 's' }).audiences, []);
  assert.ok(Object.isFrozen(auth) && Object.isFrozen(auth.claims) && Object.isFrozen((auth.claims.nested as { x: unknown[] }).x));
});
