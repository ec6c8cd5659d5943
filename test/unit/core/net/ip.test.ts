import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import { compileIpMatcher, parseIp, sourceKey } from '../../../../gateway/core/net/ip.js';

describe('parseIp', () => {
  const v4 = (s: string) => ipaddr.IPv4.parse(s).toByteArray().reduce((n, b) => n * 256 + b, 0);
  const cases: [input: string, expected: number | string | undefined][] = [
    ['10.1.2.3', v4('10.1.2.3')],
    ['0.0.0.0', 0],
    ['255.255.255.255', 0xffffffff],
    ['::ffff:10.1.2.3', v4('10.1.2.3')],
    ['::FFFF:10.1.2.3', v4('10.1.2.3')],
    ['::ffff:a01:203', v4('10.1.2.3')],
    ['0:0:0:0:0:ffff:10.1.2.3', v4('10.1.2.3')],
    ['2001:db8::1', '2001:db8::1'],
    ['::1', '::1'],
    ['256.1.1.1', undefined],
    ['01.2.3.4', undefined],
    ['1.2.3', undefined],
    ['1.2.3.4.5', undefined],
    ['1..2.3', undefined],
    ['1.2.3.4.', undefined],
    ['.1.2.3.4', undefined],
    ['1.2.3.4 ', undefined],
    ['0x0a.0.0.1', undefined],
    ['10.1', undefined],
    ['', undefined],
    ['::ffff:', undefined],
    ['::ffff:1.2.3', undefined],
    ['nonsense', undefined],
  ];
  for (const [input, expected] of cases) {
    test(JSON.stringify(input), () => {
      const got = parseIp(input);
      if (typeof expected === 'string') {
        assert.ok(got !== undefined && typeof got !== 'number');
        assert.equal(got.toString(), expected);
      } else assert.equal(got, expected);
    });
  }
});

describe('compileIpMatcher', () => {
  const problems: string[] = [];
  const match = compileIpMatcher(['10.0.0.0/8', '192.168.1.7', '0.0.0.0/0', '::ffff:172.16.0.0/108', '2001:db8::/32'], 'x', problems);
  const narrow = compileIpMatcher(['10.0.0.0/8', '::ffff:172.16.0.0/108', '2001:db8::/127'], 'x', problems);
  test('compiles', () => assert.deepEqual(problems, []));
  const cases: [address: string, expected: boolean][] = [
    ['10.255.255.255', true],
    ['11.0.0.0', false],
    ['9.255.255.255', false],
    ['172.16.0.1', true],
    ['172.15.255.255', false],
    ['172.31.255.255', true],
    ['172.32.0.0', false],
    ['::ffff:172.20.0.1', true],
    ['2001:db8::1', true],
    ['2001:db8::2', false],
    ['2001:db9::', false],
  ];
  for (const [address, expected] of cases) {
    test(address, () => assert.equal(narrow(parseIp(address)!), expected));
  }
  test('/0 matches every IPv4 address only', () => {
    assert.equal(match(parseIp('203.0.113.1')!), true);
    assert.equal(match(parseIp('2001:db9::1')!), false);
  });
});

test('sourceKey: an IPv4 client by its address (mapped or not), an IPv6 client by its /64', () => {
  assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::ffff:192.0.2.7'), sourceKey('192.0.2.7'));
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), sourceKey('2001:0DB8:1:2::9'));
  assert.notEqual(sourceKey('2001:db8:1:3::1'), sourceKey('2001:db8:1:2::1'));
  assert.equal(sourceKey('not an address'), 'not an address');
});
