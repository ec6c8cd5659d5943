// IPv6 forms that carry an IPv4 address, against the address guard: the IPv4 rules judge the embedded address.
// Each form is built from the IPv4 address byte by byte (RFC 4291, RFC 6052, RFC 3056, RFC 4380, RFC 8215), for
// the metadata service, loopback, an RFC 1918 address and a public one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import ipaddr from 'ipaddr.js';
import { classifyAddress, compileAddressExceptions, type AddressReason } from '../../../../gateway/egress/stages/address-guard.js';

const v6 = (bytes: number[]): string => ipaddr.fromByteArray(bytes).toString();
const octets = (v4: string): number[] => v4.split('.').map(Number);
const zeros = (n: number): number[] => Array<number>(n).fill(0);

/** The IPv6 spellings of `v4`: the form (its reason when blocked) and whether it is as allowed as the IPv4 host. */
function forms(v4: string): [form: AddressReason, address: string, reaches: boolean][] {
  const [a, b, c, d] = octets(v4) as [number, number, number, number];
  return [
    ['ipv4_mapped', v6([...zeros(10), 0xff, 0xff, a, b, c, d]), true],
    ['nat64', v6([0, 0x64, 0xff, 0x9b, ...zeros(8), a, b, c, d]), true],
    ['ipv4_compatible', v6([...zeros(12), a, b, c, d]), false],
    ['ipv4_translated', v6([...zeros(8), 0xff, 0xff, 0, 0, a, b, c, d]), false],
    ['6to4', v6([0x20, 0x02, a, b, c, d, ...zeros(9), 1]), false],
    // Teredo server 65.54.227.120, cone flag, port 40000 obfuscated, then the client address with every bit inverted.
    ['teredo', v6([0x20, 0x01, 0, 0, 0x41, 0x36, 0xe3, 0x78, 0x80, 0, 0x63, 0xbf, ~a & 0xff, ~b & 0xff, ~c & 0xff, ~d & 0xff]), false],
  ];
}

/** 64:ff9b:1::/48 with `v4` where RFC 6052 §2.2 puts it for a /48, /56, /64 and /96 prefix (byte 8 is `u`, zero). */
function localNat64(v4: string): string[] {
  const [a, b, c, d] = octets(v4) as [number, number, number, number];
  const prefix = [0, 0x64, 0xff, 0x9b, 0, 1];
  return [
    v6([...prefix, a, b, 0, c, d, ...zeros(5)]),
    v6([...prefix, 0, a, 0, b, c, d, ...zeros(4)]),
    v6([...prefix, 0, 0, 0, a, b, c, d, ...zeros(3)]),
    v6([...prefix, ...zeros(6), a, b, c, d]),
  ];
}

// [IPv4, its own class]
const HOSTS: [string, AddressReason][] = [
  ['169.254.169.254', 'metadata'],
  ['127.0.0.1', 'loopback'],
  ['10.0.0.1', 'private'],
  ['8.8.8.8', 'public'],
];

describe('the built-in classes judge the embedded IPv4', () => {
  for (const [v4, own] of HOSTS) {
    for (const [form, address, reaches] of forms(v4)) {
      const allowed = reaches && own === 'public';
      test(`${form} ${address} (${v4}, ${own}) → ${allowed ? 'allowed' : `blocked as ${form}`}`, () => {
        const c = classifyAddress(address);
        assert.deepEqual([c.allowed, c.reason, c.embedded], [allowed, allowed ? 'public' : form, { address: v4, reason: own }]);
      });
    }
    test(`local-use NAT64 carrying ${v4} is blocked in every layout`, () => {
      for (const address of localNat64(v4)) assert.deepEqual(classifyAddress(address), { allowed: false, reason: 'nat64' }, address);
    });
  }
});

describe('an IPv4 deny entry closes every IPv6 form carrying the address', () => {
  for (const [v4] of HOSTS) {
    const byAddress = compileAddressExceptions({ denyAddresses: [v4] });
    const byRange = compileAddressExceptions({ denyRanges: [`${v4}/32`] });
    for (const [form, address] of forms(v4)) {
      test(`${form} ${address} with denyAddresses/denyRanges [${v4}] → explicitly_denied`, () => {
        assert.deepEqual(classifyAddress(address, byAddress), { allowed: false, reason: 'explicitly_denied' });
        assert.deepEqual(classifyAddress(address, byRange), { allowed: false, reason: 'explicitly_denied' });
      });
    }
  }

  test('a public IPv4 in a deny range is closed in its NAT64 form, its neighbour is not', () => {
    const ex = compileAddressExceptions({ denyRanges: ['8.8.8.0/24'] });
    assert.equal(classifyAddress('64:ff9b::808:808', ex).reason, 'explicitly_denied');
    assert.equal(classifyAddress('64:ff9b::8.8.9.8', ex).reason, 'public');
    assert.equal(classifyAddress('2606:4700:4700::808', ex).reason, 'public');
  });

  test('deny beats an IPv6 allow range that covers the NAT64 form', () => {
    const ex = compileAddressExceptions({ allowRanges: ['64:ff9b::/96'], denyAddresses: ['169.254.169.254'] });
    assert.equal(classifyAddress('64:ff9b::a00:1', ex).reason, 'explicitly_allowed');
    assert.deepEqual(classifyAddress('64:ff9b::a9fe:a9fe', ex), { allowed: false, reason: 'explicitly_denied' });
  });

  test('an opened local-use NAT64 prefix cannot reach a denied IPv4 in any layout', () => {
    const ex = compileAddressExceptions({ allowRanges: ['64:ff9b:1::/48'], denyRanges: ['169.254.0.0/16'] });
    for (const address of localNat64('169.254.169.254')) assert.equal(classifyAddress(address, ex).reason, 'explicitly_denied', address);
    assert.equal(classifyAddress(localNat64('8.8.8.8')[3]!, ex).reason, 'explicitly_allowed');
  });
});

describe('an IPv4 allow entry opens the host and its mapped spelling only', () => {
  for (const [v4] of HOSTS.slice(0, 3)) {
    const ex = compileAddressExceptions({ allowAddresses: [v4] });
    for (const [form, address] of forms(v4)) {
      const opened = form === 'ipv4_mapped';
      test(`${form} ${address} with allowAddresses [${v4}] → ${opened ? 'explicitly_allowed' : `still ${form}`}`, () => {
        const c = classifyAddress(address, ex);
        assert.deepEqual([c.allowed, c.reason], opened ? [true, 'explicitly_allowed'] : [false, form]);
      });
    }
  }
});
