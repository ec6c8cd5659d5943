import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalHost } from '../../../gateway/core/net/host.js';
import { formatAuthority, parseAuthority } from '../../../gateway/egress/destination.js';

describe('canonicalHost', () => {
  // Every spelling of an address is recognized as that address before any DNS (inet_aton / WHATWG URL rules).
  const literals: [string, string][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['017700000001', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['127.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0x7f.0x0.0x0.0x1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['[::1]', '::1'],
    ['[::ffff:127.0.0.1]', '::ffff:7f00:1'],
    ['[::ffff:7f00:1]', '::ffff:7f00:1'],
    ['[::127.0.0.1]', '::7f00:1'],
    ['[fe80::1%25eth0]', 'fe80::1'],
    ['[0:0:0:0:0:0:0:1]', '::1'],
    ['[FE80::1]', 'fe80::1'],
  ];
  for (const [raw, ip] of literals) {
    test(`${raw} is the address ${ip}`, () => assert.deepEqual(canonicalHost(raw), { host: ip, isIp: true }));
  }

  const names: [string, string][] = [
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['a-b.c0.example', 'a-b.c0.example'],
  ];
  for (const [raw, name] of names) {
    test(`${raw} is the name ${name}`, () => assert.deepEqual(canonicalHost(raw), { host: name, isIp: false }));
  }

  const invalid = ['', 'a..b', '-a.com', 'a_b.com', 'foo.123', '256.256', '127.0.0.1..', 'a%2eb', '127%2e0.0.1', 'a b',
    'user@host', 'a/b', 'a\\b', '[::1', '[127.0.0.1]', '[::1]x', 'a\u0000b', '*.example.com', `${'a'.repeat(64)}.com`];
  for (const raw of invalid) {
    test(`${JSON.stringify(raw)} is rejected`, () => assert.equal(canonicalHost(raw), undefined));
  }
});

describe('parseAuthority', () => {
  test('CONNECT authority needs a port', () => {
    assert.deepEqual(parseAuthority('Example.com:443'), { host: 'example.com', port: 443, isIp: false });
    assert.deepEqual(parseAuthority('[::1]:8443'), { host: '::1', port: 8443, isIp: true });
    assert.throws(() => parseAuthority('example.com'), { code: 'GW_REQUEST_MALFORMED' });
  });
  test('Host headers default the port', () => {
    assert.deepEqual(parseAuthority('example.com', 80), { host: 'example.com', port: 80, isIp: false });
  });
  for (const bad of ['example.com:0', 'example.com:65536', 'example.com:', 'example.com:+1', 'example.com:1e3', '::1:443']) {
    test(`${bad} is malformed`, () => assert.throws(() => parseAuthority(bad, 80), { code: 'GW_REQUEST_MALFORMED' }));
  }
  test('formatAuthority brackets IPv6', () => {
    assert.equal(formatAuthority({ host: '::1', port: 443, isIp: true }), '[::1]:443');
    assert.equal(formatAuthority({ host: 'a.test', port: 80, isIp: false }), 'a.test:80');
  });
});
