import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createAllowlist } from '../../../../gateway/egress/stages/allowlist.js';
import { ANONYMOUS, type Identity } from '../../../../gateway/egress/stages/identify.js';
import { parseAuthority } from '../../../../gateway/egress/destination.js';

const svid = (principal: string): Identity => ({ kind: 'spiffe', principal });
const billing = svid('spiffe://td/ns/billing/sa/api');
const to = (authority: string) => parseAuthority(authority);

const allowlist = createAllowlist({
  allow: [
    { name: 'billing-stripe', identities: ['spiffe://td/ns/billing/*'], hosts: ['api.stripe.com', '*.stripe.net'] },
    { name: 'billing-bank', identities: ['spiffe://td/ns/billing/sa/api'], hosts: ['bank.example'], ports: [8443] },
    { name: 'ci', identities: ['ci-runners'], hosts: ['*.npmjs.org'] },
    { name: 'ip-literal', identities: ['spiffe://td/ns/ops/sa/probe'], cidrs: ['8.8.8.0/24', '2001:4860::/32'] },
    { name: 'legacy-report', identities: ['spiffe://td/ns/legacy/sa/app'], hosts: ['old.example'], mode: 'report' },
    { name: 'everyone-idn', identities: ['spiffe://td/ns/billing/*'], hosts: ['Bücher.Example.'] },
  ],
  deny: [{ name: 'no-evil', hosts: ['*.stripe.net', 'evil.example'] }],
});

describe('allowlist', () => {
  test('exact host, default ports 80 and 443', () => {
    assert.deepEqual(allowlist(billing, to('api.stripe.com:443')), { allowed: true, reason: 'allowed_by_rule', rule: 'billing-stripe', wouldDeny: false });
    assert.equal(allowlist(billing, to('API.Stripe.com.:80')).allowed, true);
    assert.equal(allowlist(billing, to('api.stripe.com:22')).reason, 'no_rule_matched');
  });

  test('explicit ports replace the default', () => {
    assert.equal(allowlist(billing, to('bank.example:8443')).rule, 'billing-bank');
    assert.equal(allowlist(billing, to('bank.example:443')).allowed, false);
  });

  test('a SPIFFE prefix matches below it, never a sibling that shares the string prefix', () => {
    assert.equal(allowlist(svid('spiffe://td/ns/billing/sa/worker'), to('api.stripe.com:443')).allowed, true);
    assert.equal(allowlist(svid('spiffe://td/ns/billing-evil/sa/x'), to('api.stripe.com:443')).allowed, false);
    assert.equal(allowlist(svid('spiffe://td/ns/billing'), to('api.stripe.com:443')).allowed, false);
    assert.equal(allowlist(svid('spiffe://other/ns/billing/sa/api'), to('api.stripe.com:443')).allowed, false);
  });

  test('wildcards match any depth but not the apex', () => {
    const ci: Identity = { kind: 'source', principal: 'ci-runners' };
    assert.equal(allowlist(ci, to('registry.npmjs.org:443')).allowed, true);
    assert.equal(allowlist(ci, to('a.b.registry.npmjs.org:443')).allowed, true);
    assert.equal(allowlist(ci, to('npmjs.org:443')).allowed, false);
    assert.equal(allowlist(ci, to('evilnpmjs.org:443')).allowed, false);
    assert.equal(allowlist(ci, to('registry.npmjs.org.evil.com:443')).allowed, false);
  });

  test('global deny wins even over a rule that lists the host', () => {
    assert.deepEqual(allowlist(billing, to('x.stripe.net:443')), { allowed: false, reason: 'denied_by_rule', rule: 'no-evil', wouldDeny: false });
  });

  test('host rules never match IP literals; cidrs do', () => {
    const probe = svid('spiffe://td/ns/ops/sa/probe');
    assert.equal(allowlist(probe, to('8.8.8.8:443')).allowed, true);
    assert.equal(allowlist(probe, to('[2001:4860:4860::8888]:443')).allowed, true);
    assert.equal(allowlist(probe, to('9.9.9.9:443')).allowed, false);
    assert.equal(allowlist(billing, to('8.8.8.8:443')).allowed, false);
  });

  test('a deny rule for an IPv4 address also stops the IPv6 forms carrying it; an allow rule opens only what it lists', () => {
    const list = createAllowlist({
      allow: [{ name: 'v6-anywhere', identities: ['spiffe://td/ns/ops/sa/probe'], cidrs: ['::/0', '8.8.4.4/32'] }],
      deny: [{ name: 'no-dns', cidrs: ['8.8.8.8/32'] }],
    });
    const probe = svid('spiffe://td/ns/ops/sa/probe');
    for (const form of ['[64:ff9b::808:808]', '[::ffff:8.8.8.8]', '[2002:808:808::1]', '[::8.8.8.8]', '[64:ff9b:1::808:808]']) {
      assert.equal(list(probe, to(`${form}:443`)).reason, 'denied_by_rule', form);
    }
    assert.equal(list(probe, to('[64:ff9b::808:404]:443')).rule, 'v6-anywhere', 'the IPv6 form is allowed by the IPv6 rule, not by 8.8.4.4/32');
    const v4Only = createAllowlist({ allow: [{ name: 'v4', identities: ['spiffe://td/ns/ops/sa/probe'], cidrs: ['8.8.4.4/32'] }] });
    assert.equal(v4Only(probe, to('[64:ff9b::808:404]:443')).allowed, false, 'an IPv4 allow entry does not open the NAT64 form');
  });

  test('report mode allows unlisted destinations and says it would deny', () => {
    const legacy = svid('spiffe://td/ns/legacy/sa/app');
    assert.deepEqual(allowlist(legacy, to('old.example:443')), { allowed: true, reason: 'allowed_by_rule', rule: 'legacy-report', wouldDeny: false });
    assert.deepEqual(allowlist(legacy, to('anything.example:9999')), { allowed: true, reason: 'dry_run_would_deny', rule: 'legacy-report', wouldDeny: true });
    assert.equal(allowlist(legacy, to('evil.example:443')).reason, 'denied_by_rule');
  });

  test('IDN patterns are compared in punycode', () => {
    assert.equal(allowlist(billing, to('xn--bcher-kva.example:443')).rule, 'everyone-idn');
    assert.equal(allowlist(billing, to('bücher.example:443')).rule, 'everyone-idn');
  });

  test('anonymous gets nothing by default', () => {
    assert.equal(allowlist(ANONYMOUS, to('api.stripe.com:443')).reason, 'no_rule_matched');
  });

  test('bad rules fail at creation', () => {
    const base = { name: 'r', identities: ['anonymous'] };
    assert.throws(() => createAllowlist({ allow: [{ ...base }] }), /needs hosts or cidrs/);
    assert.throws(() => createAllowlist({ allow: [{ ...base, hosts: ['127.0.0.1'] }] }), /list it under cidrs/);
    assert.throws(() => createAllowlist({ allow: [{ ...base, hosts: ['a..b'] }] }), /invalid host/);
    assert.throws(() => createAllowlist({ allow: [{ ...base, cidrs: ['10.0.0.0/40'] }] }), /is not an IP address or CIDR block/);
    assert.throws(() => createAllowlist({ allow: [{ ...base, identities: ['spiffe://td/*/x'], hosts: ['a.test'] }] }), /wildcard/);
  });
});
