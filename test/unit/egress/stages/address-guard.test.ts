import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyAddress,
  compileAddressExceptions,
  createAddressGuard,
  type AddressReason,
} from '../../../../gateway/egress/stages/address-guard.js';

// [address, allowed, reason, embedded reason?]
const TABLE: [string, boolean, AddressReason, AddressReason?][] = [
  ['0.0.0.0', false, 'unspecified'],
  ['0.1.2.3', false, 'unspecified'],
  ['127.0.0.1', false, 'loopback'],
  ['127.255.255.254', false, 'loopback'],
  ['10.0.0.1', false, 'private'],
  ['10.255.255.255', false, 'private'],
  ['172.16.0.1', false, 'private'],
  ['172.31.255.255', false, 'private'],
  ['172.32.0.1', true, 'public'],
  ['192.168.1.1', false, 'private'],
  ['169.254.0.1', false, 'link_local'],
  ['169.254.169.254', false, 'metadata'],
  ['100.64.0.1', false, 'cgnat'],
  ['100.127.255.255', false, 'cgnat'],
  ['100.128.0.1', true, 'public'],
  ['255.255.255.255', false, 'broadcast'],
  ['224.0.0.1', false, 'multicast'],
  ['239.255.255.255', false, 'multicast'],
  ['240.0.0.1', false, 'reserved'],
  ['192.0.0.8', false, 'reserved'],
  ['192.0.2.1', false, 'documentation'],
  ['198.51.100.7', false, 'documentation'],
  ['203.0.113.9', false, 'documentation'],
  ['198.18.0.1', false, 'benchmarking'],
  ['198.19.255.255', false, 'benchmarking'],
  ['8.8.8.8', true, 'public'],
  ['93.184.215.14', true, 'public'],
  ['::', false, 'unspecified'],
  ['::1', false, 'loopback'],
  ['fc00::1', false, 'unique_local'],
  ['fd12:3456::1', false, 'unique_local'],
  ['fd00:ec2::254', false, 'metadata'],
  ['fe80::1', false, 'link_local'],
  ['febf::1', false, 'link_local'],
  ['ff02::1', false, 'multicast'],
  ['::ffff:127.0.0.1', false, 'ipv4_mapped', 'loopback'],
  ['::ffff:7f00:1', false, 'ipv4_mapped', 'loopback'],
  ['::ffff:169.254.169.254', false, 'ipv4_mapped', 'metadata'],
  ['::ffff:10.1.2.3', false, 'ipv4_mapped', 'private'],
  ['::ffff:8.8.8.8', true, 'public', 'public'],
  ['::127.0.0.1', false, 'ipv4_compatible', 'loopback'],
  ['::8.8.8.8', false, 'ipv4_compatible', 'public'],
  ['::ffff:0:127.0.0.1', false, 'ipv4_translated', 'loopback'],
  ['64:ff9b::127.0.0.1', false, 'nat64', 'loopback'],
  ['64:ff9b::10.0.0.1', false, 'nat64', 'private'],
  ['64:ff9b::8.8.8.8', true, 'public', 'public'],
  ['64:ff9b:1::8.8.8.8', false, 'nat64'],
  ['2002:7f00:1::1', false, '6to4', 'loopback'],
  ['2002:808:808::1', false, '6to4', 'public'],
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', false, 'teredo', 'loopback'],
  ['2001:2::1', false, 'benchmarking'],
  ['2001:db8::1', false, 'documentation'],
  ['3fff::1', false, 'documentation'],
  ['100::1', false, 'reserved'],
  ['fec0::1', false, 'reserved'],
  ['4000::1', false, 'reserved'],
  ['2606:4700:4700::1111', true, 'public'],
  ['2a00:1450:4001::1', true, 'public'],
];

describe('classifyAddress', () => {
  for (const [ip, allowed, reason, embedded] of TABLE) {
    test(`${ip} → ${allowed ? 'allowed' : 'blocked'} (${reason})`, () => {
      const c = classifyAddress(ip);
      assert.equal(c.allowed, allowed);
      assert.equal(c.reason, reason);
      if (embedded) assert.equal(c.embedded?.reason, embedded);
    });
  }

  test('allowAddresses opens one address, also in its IPv4-mapped spelling', () => {
    const ex = compileAddressExceptions({ allowAddresses: ['127.0.0.1'] });
    assert.deepEqual(classifyAddress('127.0.0.1', ex), { allowed: true, reason: 'explicitly_allowed' });
    assert.equal(classifyAddress('::ffff:127.0.0.1', ex).allowed, true);
    assert.equal(classifyAddress('127.0.0.2', ex).reason, 'loopback');
  });

  test('deny beats allow, whatever the order (unlike stripe/smokescreen#236)', () => {
    const ex = compileAddressExceptions({ allowRanges: ['192.168.0.0/16'], denyAddresses: ['192.168.1.5'] });
    assert.equal(classifyAddress('192.168.1.4', ex).reason, 'explicitly_allowed');
    assert.deepEqual(classifyAddress('192.168.1.5', ex), { allowed: false, reason: 'explicitly_denied' });
    const ex2 = compileAddressExceptions({ denyRanges: ['8.8.0.0/16'] });
    assert.equal(classifyAddress('8.8.8.8', ex2).reason, 'explicitly_denied');
  });

  test('invalid exceptions fail at creation', () => {
    assert.throws(() => compileAddressExceptions({ allowRanges: ['10.0.0.0/33'] }), /invalid range/);
    assert.throws(() => compileAddressExceptions({ allowAddresses: ['localhost'] }), /invalid address/);
  });
});

describe('createAddressGuard.resolve', () => {
  const name = (host: string) => ({ host, port: 443, isIp: false });

  test('resolves once and dials the first address when every answer is public', async () => {
    let calls = 0;
    const guard = createAddressGuard({ dnsTimeoutMs: 5_000 }, {
      lookup: async () => {
        calls++;
        return [{ address: '93.184.215.14', family: 4 }, { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 }];
      },
    });
    const r = await guard.resolve(name('example.com'));
    assert.equal(r.allowed, true);
    assert.equal(r.allowed && r.address, '93.184.215.14');
    assert.equal(calls, 1);
  });

  test('one blocked answer refuses the whole name (no "pick the good one")', async () => {
    const guard = createAddressGuard({ dnsTimeoutMs: 5_000 }, {
      lookup: async () => [{ address: '93.184.215.14', family: 4 }, { address: '169.254.169.254', family: 4 }],
    });
    const r = await guard.resolve(name('rebind.example'));
    assert.equal(r.allowed, false);
    assert.ok(!r.allowed);
    assert.equal(r.error.code, 'GW_EGRESS_ADDRESS_BLOCKED');
    assert.equal(r.error.reason, 'metadata');
    assert.equal(r.address, '169.254.169.254');
  });

  test('static hosts replace DNS and are still checked', async () => {
    const guard = createAddressGuard(
      { staticHosts: new Map([['svc.test', ['127.0.0.1']]]), dnsTimeoutMs: 5_000 },
      { lookup: async () => assert.fail('no DNS for static hosts') },
    );
    const r = await guard.resolve(name('svc.test'));
    assert.ok(!r.allowed);
    assert.equal(r.error.reason, 'loopback');
  });

  test('DNS failure and timeout fail closed', async () => {
    const failing = createAddressGuard({ dnsTimeoutMs: 5_000 }, { lookup: async () => Promise.reject(new Error('ENOTFOUND')) });
    const r1 = await failing.resolve(name('nx.example'));
    assert.ok(!r1.allowed);
    assert.equal(r1.error.code, 'GW_UPSTREAM_UNAVAILABLE');
    const slow = createAddressGuard({ dnsTimeoutMs: 20 }, { lookup: () => new Promise(() => undefined) });
    const r2 = await slow.resolve(name('slow.example'));
    assert.ok(!r2.allowed);
    assert.equal(r2.error.code, 'GW_UPSTREAM_TIMEOUT');
    const empty = createAddressGuard({ dnsTimeoutMs: 5_000 }, { lookup: async () => [] });
    const r3 = await empty.resolve(name('empty.example'));
    assert.ok(!r3.allowed);
  });

  test('a resolver server that is not an address fails at build, naming the field', () => {
    assert.throws(() => createAddressGuard({ dnsTimeoutMs: 5_000, resolver: { servers: ['dns.example'], timeoutMs: 1_000 } }), /egress\.resolver\.servers/);
  });
});
