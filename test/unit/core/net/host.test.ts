// One canonical host for SNI, Host, config names and egress destinations. Plain ASCII names take a fast path (a Host
// is checked per request); every other spelling goes through the WHATWG URL host parser. Both must agree.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalHost, canonicalHostPattern, splitAuthority } from '../../../../gateway/core/net/host.js';

/** What the URL host parser alone makes of a name (the slow path), for comparison with the fast one. */
function byUrlParser(raw: string): string | undefined {
  try {
    const host = new URL(`http://${raw}/`).hostname;
    return host.endsWith('.') ? host.slice(0, -1) : host;
  } catch {
    return undefined;
  }
}

describe('canonicalHost', () => {
  const names = ['www.example.com', 'WWW.Example.COM.', 'a', 'a-b.c-d', 'ab--cd.com', 'example.0x1g', 'a.b.c1', 'x1.y2.z3', 'EXAMPLE.com'];
  for (const raw of names) {
    test(`${raw}: the fast path agrees with the URL parser`, () => {
      assert.deepEqual(canonicalHost(raw), { host: byUrlParser(raw), isIp: false });
    });
  }

  const numericEndings: [string, string | undefined][] = [
    ['example.0x10', undefined],
    ['foo.123', undefined],
    ['example.09', undefined],
    ['0x7f.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
  ];
  for (const [raw, ip] of numericEndings) {
    test(`${raw}: a numeric last label is read as IPv4 or refused, never as a name`, () => {
      assert.deepEqual(canonicalHost(raw), ip === undefined ? undefined : { host: ip, isIp: true });
    });
  }

  for (const raw of ['-a.com', 'a-.com', 'a..b', '.a', `${'x'.repeat(64)}.com`, 'xn--a.com', 'a b', 'a%2eb', 'a_b.com', '']) {
    test(`${JSON.stringify(raw)} is no host`, () => assert.equal(canonicalHost(raw), undefined));
  }

  test('IDN labels become punycode', () => {
    assert.deepEqual(canonicalHost('Bücher.DE'), { host: 'xn--bcher-kva.de', isIp: false });
  });
});

describe('canonicalHostPattern', () => {
  test('a wildcard keeps its `*.`, the rest is canonical', () => {
    assert.deepEqual(canonicalHostPattern('*.Apps.Example.COM.'), { host: '*.apps.example.com', isIp: false, wildcard: true });
    assert.deepEqual(canonicalHostPattern('API.example.com'), { host: 'api.example.com', isIp: false, wildcard: false });
  });
  test('a wildcard over an address is no pattern', () => assert.equal(canonicalHostPattern('*.127.0.0.1'), undefined));
});

describe('splitAuthority', () => {
  const cases: [string, { host: string; port: string | undefined }][] = [
    ['example.com:8443', { host: 'example.com', port: '8443' }],
    ['example.com', { host: 'example.com', port: undefined }],
    ['[::1]:443', { host: '[::1]', port: '443' }],
    ['[::1]', { host: '[::1]', port: undefined }],
  ];
  for (const [authority, expected] of cases) test(authority, () => assert.deepEqual(splitAuthority(authority), expected));
});
