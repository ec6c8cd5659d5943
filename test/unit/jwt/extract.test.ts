import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { createTokenExtractor, type Extraction } from '../../../gateway/jwt/extract.js';

const extract = createTokenExtractor([
  { name: 'default' },
  { name: 'custom', fromHeaders: [{ name: 'X-Token' }, { name: 'authorization', prefix: 'JWT ' }], fromCookies: ['session'], fromParams: ['access_token'] },
]);
const tok = (token: string, providers: string[], where: Partial<Record<'headers' | 'cookies' | 'params', string[]>>): Extraction => ({
  kind: 'token',
  token,
  providers: new Set(providers),
  headers: where.headers ?? [],
  cookies: where.cookies ?? [],
  params: where.params ?? [],
});

describe('token extraction', () => {
  const cases: [string, IncomingHttpHeaders, string, ReadonlySet<string> | undefined, Extraction][] = [
    ['nothing', {}, '', undefined, { kind: 'none' }],
    ['Authorization Bearer (the default location)', { authorization: 'Bearer a.b.c' }, '', undefined, tok('a.b.c', ['default'], { headers: ['authorization'] })],
    ['the scheme is case-insensitive (RFC 7235)', { authorization: 'bEARER   a.b.c ' }, '', undefined, tok('a.b.c', ['default'], { headers: ['authorization'] })],
    ['a second prefix on the same header selects its provider', { authorization: 'JWT a.b.c' }, '', undefined, tok('a.b.c', ['custom'], { headers: ['authorization'] })],
    ['header without any configured prefix is malformed', { authorization: 'Basic dTpw' }, '', undefined, { kind: 'malformed', header: 'authorization' }],
    ['prefix without a token is malformed', { authorization: 'Bearer ' }, '', undefined, { kind: 'malformed', header: 'authorization' }],
    ['custom header without prefix', { 'x-token': 'a.b.c' }, '', undefined, tok('a.b.c', ['custom'], { headers: ['x-token'] })],
    ['cookie', { cookie: 'a=1; session=a.b.c; b=2' }, '', undefined, tok('a.b.c', ['custom'], { cookies: ['session'] })],
    ['query parameter', {}, 'x=1&access_token=a.b.c', undefined, tok('a.b.c', ['custom'], { params: ['access_token'] })],
    ['the same token in two places is one token', { 'x-token': 'a.b.c' }, 'access_token=a.b.c', undefined, tok('a.b.c', ['custom'], { headers: ['x-token'], params: ['access_token'] })],
    ['two distinct tokens', { authorization: 'Bearer a.b.c' }, 'access_token=d.e.f', undefined, { kind: 'multiple' }],
    ['a repeated Authorization header, even identical', { authorization: ['Bearer a.b.c', 'Bearer a.b.c'] as unknown as string }, '', undefined, { kind: 'multiple' }],
    ['comma-joined repeated header (joinDuplicateHeaders)', { authorization: 'Bearer a.b.c, Bearer a.b.c' }, '', undefined, { kind: 'multiple' }],
    ['a repeated parameter with distinct values', {}, 'access_token=a.b.c&access_token=d.e.f', undefined, { kind: 'multiple' }],
    ['a repeated cookie with distinct values', { cookie: 'session=a.b.c; session=d.e.f' }, '', undefined, { kind: 'multiple' }],
    ['locations of providers the route does not allow are not read', { 'x-token': 'a.b.c' }, '', new Set(['default']), { kind: 'none' }],
    ['a prefix of a provider the route does not allow makes the header malformed', { authorization: 'JWT a.b.c' }, '', new Set(['default']), { kind: 'malformed', header: 'authorization' }],
    ['only allowed providers are reported', { authorization: 'Bearer a.b.c' }, '', new Set(['default', 'other']), tok('a.b.c', ['default'], { headers: ['authorization'] })],
    ['no allowed provider reads nothing', { authorization: 'Bearer a.b.c' }, '', new Set(), { kind: 'none' }],
  ];
  for (const [name, headers, query, allowed, expected] of cases) {
    test(name, () => assert.deepEqual(extract(headers, query, allowed), expected));
  }

  test('configured locations replace the Authorization default', () => {
    const cookieOnly = createTokenExtractor([{ name: 'c', fromCookies: ['jwt'] }]);
    assert.deepEqual(cookieOnly({ authorization: 'Basic dTpw' }, '', undefined), { kind: 'none' });
  });
});
