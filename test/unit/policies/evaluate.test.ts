import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../../../policies/compile.js';
import { evaluate } from '../../../policies/evaluate.js';
import type { Policy, Rule } from '../../../policies/schema.js';
import { request, type RequestSpec } from './request.js';

/** Whether one ALLOW rule admits the request (the only policy on the route). */
function ruleMatches(rule: Rule, spec: RequestSpec): boolean {
  const set = compilePolicies([{ name: 'p', action: 'ALLOW', rules: [rule] }]);
  const decision = evaluate(set, 'route', request(spec));
  assert.equal(decision.reason, decision.allowed ? 'allowed_by_policy' : 'no_allow_policy_matched');
  return decision.allowed;
}

type Case = [name: string, rule: Rule, spec: RequestSpec, matches: boolean];

const src = (source: NonNullable<Rule['from']>[number]['source']): Rule => ({ from: [{ source }] });
const op = (operation: NonNullable<Rule['to']>[number]['operation']): Rule => ({ to: [{ operation }] });
const when = (key: string, values?: string[], notValues?: string[]): Rule => ({
  when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }],
});

function table(title: string, cases: Case[]): void {
  describe(title, () => {
    for (const [name, rule, spec, expected] of cases) {
      test(name, () => assert.equal(ruleMatches(rule, spec), expected));
    }
  });
}

table('source fields', [
  ['principals, Istio spelling', src({ principals: ['cluster.local/ns/shop/sa/web'] }), {}, true],
  ['principals, spiffe:// spelling', src({ principals: ['spiffe://cluster.local/ns/shop/sa/web'] }), {}, true],
  ['principals, other identity', src({ principals: ['cluster.local/ns/shop/sa/db'] }), {}, false],
  ['principals, prefix', src({ principals: ['cluster.local/ns/shop/*'] }), {}, true],
  ['principals, suffix', src({ principals: ['*/sa/web'] }), {}, true],
  ['principals, suffix with spiffe://', src({ principals: ['spiffe://*/sa/web'] }), {}, true],
  ['principals, * needs a peer certificate', src({ principals: ['*'] }), { peerSpiffeId: undefined }, false],
  ['principals, no peer certificate', src({ principals: ['cluster.local/ns/shop/sa/web'] }), { peerSpiffeId: undefined }, false],
  ['principals, malformed peer id is no identity', src({ principals: ['*'] }), { peerSpiffeId: 'cluster.local/ns/shop/sa/web' }, false],
  ['principals are literal: dots are not wildcards (CVE-2026-39350)', src({ principals: ['cluster.local/ns/a.b/sa/web'] }), { peerSpiffeId: 'spiffe://cluster.local/ns/aXb/sa/web' }, false],
  ['notPrincipals, other identity', src({ notPrincipals: ['cluster.local/ns/shop/sa/db'] }), {}, true],
  ['notPrincipals, same identity', src({ notPrincipals: ['spiffe://cluster.local/ns/shop/sa/web'] }), {}, false],
  ['notPrincipals *, no peer certificate', src({ notPrincipals: ['*'] }), { peerSpiffeId: undefined }, true],
  ['notPrincipals *, with peer certificate', src({ notPrincipals: ['*'] }), {}, false],
  ['requestPrincipals exact', src({ requestPrincipals: ['https://issuer.example/alice'] }), { auth: {} }, true],
  ['requestPrincipals issuer prefix', src({ requestPrincipals: ['https://issuer.example/*'] }), { auth: { subject: 'bob' } }, true],
  ['requestPrincipals * needs a token', src({ requestPrincipals: ['*'] }), {}, false],
  ['requestPrincipals * with a token', src({ requestPrincipals: ['*'] }), { auth: {} }, true],
  ['notRequestPrincipals * without a token', src({ notRequestPrincipals: ['*'] }), {}, true],
  ['notRequestPrincipals matching', src({ notRequestPrincipals: ['https://issuer.example/alice'] }), { auth: {} }, false],
  ['trustDomains', src({ trustDomains: ['cluster.local'] }), {}, true],
  ['trustDomains, case-insensitive', src({ trustDomains: ['Cluster.Local'] }), {}, true],
  ['trustDomains, other', src({ trustDomains: ['partner.example'] }), {}, false],
  ['trustDomains, no peer', src({ trustDomains: ['cluster.local'] }), { peerSpiffeId: undefined }, false],
  ['notTrustDomains, other', src({ notTrustDomains: ['partner.example'] }), {}, true],
  ['notTrustDomains, same', src({ notTrustDomains: ['cluster.local'] }), {}, false],
  ['ipBlocks CIDR', src({ ipBlocks: ['10.0.0.0/8'] }), {}, true],
  ['ipBlocks single address', src({ ipBlocks: ['10.1.2.3'] }), {}, true],
  ['ipBlocks miss', src({ ipBlocks: ['192.168.0.0/16'] }), {}, false],
  ['ipBlocks v4 CIDR vs IPv4-mapped source', src({ ipBlocks: ['10.0.0.0/8'] }), { sourceIp: '::ffff:10.9.9.9' }, true],
  ['ipBlocks mapped CIDR vs IPv4 source', src({ ipBlocks: ['::ffff:10.0.0.0/104'] }), { sourceIp: '10.9.9.9' }, true],
  ['ipBlocks mapped CIDR vs other IPv4', src({ ipBlocks: ['::ffff:10.0.0.0/104'] }), { sourceIp: '11.0.0.1' }, false],
  ['ipBlocks IPv6 CIDR', src({ ipBlocks: ['2001:db8::/32'] }), { sourceIp: '2001:db8:1::7' }, true],
  ['ipBlocks IPv6 miss', src({ ipBlocks: ['2001:db8::/32'] }), { sourceIp: '2001:db9::7' }, false],
  ['ipBlocks IPv6 vs IPv4 source', src({ ipBlocks: ['::/0'] }), { sourceIp: '10.0.0.1' }, false],
  ['ipBlocks, unparsable source is absent', src({ ipBlocks: ['0.0.0.0/0'] }), { sourceIp: 'nonsense' }, false],
  ['ipBlocks, octal-looking source is absent', src({ ipBlocks: ['0.0.0.0/0'] }), { sourceIp: '010.1.2.3' }, false],
  ['notIpBlocks outside', src({ notIpBlocks: ['192.168.0.0/16'] }), {}, true],
  ['notIpBlocks inside', src({ notIpBlocks: ['10.0.0.0/8'] }), {}, false],
  ['remoteIpBlocks uses remoteIp', src({ remoteIpBlocks: ['203.0.113.0/24'] }), { remoteIp: '203.0.113.9' }, true],
  ['remoteIpBlocks ignores sourceIp', src({ remoteIpBlocks: ['10.0.0.0/8'] }), { remoteIp: '203.0.113.9' }, false],
  ['notRemoteIpBlocks', src({ notRemoteIpBlocks: ['203.0.113.0/24'] }), { remoteIp: '203.0.113.9' }, false],
  ['fields in one source are ANDed', src({ principals: ['*'], ipBlocks: ['192.168.0.0/16'] }), {}, false],
  ['sources are ORed', { from: [{ source: { ipBlocks: ['192.168.0.0/16'] } }, { source: { principals: ['*'] } }] }, {}, true],
]);

table('operation fields', [
  ['hosts exact', op({ hosts: ['api.example.com'] }), {}, true],
  ['hosts case-insensitive both ways (CVE-2021-39155)', op({ hosts: ['API.Example.com'] }), { host: 'api.EXAMPLE.com' }, true],
  ['hosts wildcard subdomain', op({ hosts: ['*.example.com'] }), {}, true],
  ['hosts wildcard does not match apex', op({ hosts: ['*.example.com'] }), { host: 'example.com' }, false],
  ['notHosts', op({ notHosts: ['admin.example.com'] }), { host: 'ADMIN.example.com' }, false],
  ['methods', op({ methods: ['GET', 'HEAD'] }), {}, true],
  ['methods miss', op({ methods: ['POST'] }), {}, false],
  ['methods exact case', op({ methods: ['GET'] }), { method: 'get' }, false],
  ['methods *', op({ methods: ['*'] }), { method: 'PATCH' }, true],
  ['notMethods', op({ notMethods: ['DELETE'] }), { method: 'DELETE' }, false],
  ['paths exact', op({ paths: ['/api'] }), { path: '/api' }, true],
  ['paths exact is not prefix', op({ paths: ['/api'] }), { path: '/api/x' }, false],
  ['paths prefix', op({ paths: ['/api/*'] }), { path: '/api/v1/x' }, true],
  ['paths suffix', op({ paths: ['*.png'] }), { path: '/img/a.png' }, true],
  ['paths presence', op({ paths: ['*'] }), { path: '/' }, true],
  ['paths are case-sensitive (istio#40541)', op({ paths: ['/admin*'] }), { path: '/ADMIN' }, false],
  ['notPaths', op({ notPaths: ['/admin*'] }), { path: '/admin/x' }, false],
  ['notPaths other', op({ notPaths: ['/admin*'] }), { path: '/public' }, true],
  ['ports', op({ ports: [8443] }), {}, true],
  ['ports miss', op({ ports: [443] }), {}, false],
  ['notPorts', op({ notPorts: [8443] }), {}, false],
  ['fields in one operation are ANDed', op({ methods: ['GET'], paths: ['/other'] }), { path: '/' }, false],
  ['operations are ORed', { to: [{ operation: { paths: ['/other'] } }, { operation: { methods: ['GET'] } }] }, {}, true],
]);

table('path templates', [
  ['{*} one segment', op({ paths: ['/users/{*}'] }), { path: '/users/bob' }, true],
  ['{*} not two segments', op({ paths: ['/users/{*}'] }), { path: '/users/bob/keys' }, false],
  ['{*} not zero segments', op({ paths: ['/users/{*}'] }), { path: '/users' }, false],
  ['{*} not an empty segment', op({ paths: ['/users/{*}'] }), { path: '/users/' }, false],
  ['{*} ignores one trailing slash', op({ paths: ['/users/{*}'] }), { path: '/users/bob/' }, true],
  ['{*} in the middle', op({ paths: ['/users/{*}/keys'] }), { path: '/users/bob/keys' }, true],
  ['{*} in the middle, wrong literal', op({ paths: ['/users/{*}/keys'] }), { path: '/users/bob/key' }, false],
  ['{*} matches a segment with * (envoy#39168)', op({ paths: ['/users/{*}/keys'] }), { path: '/users/*/keys' }, true],
  ['{**} zero segments', op({ paths: ['/files/{**}'] }), { path: '/files' }, true],
  ['{**} trailing slash', op({ paths: ['/files/{**}'] }), { path: '/files/' }, true],
  ['{**} many segments', op({ paths: ['/files/{**}'] }), { path: '/files/a/b/c.txt' }, true],
  ['{**} matches * and ** characters (CVE-2025-46821)', op({ paths: ['/files/{**}'] }), { path: '/files/*/**' }, true],
  ['{**} not a longer first segment', op({ paths: ['/files/{**}'] }), { path: '/filesystem' }, false],
  ['{*} then {**}', op({ paths: ['/{*}/v1/{**}'] }), { path: '/shop/v1/orders/7' }, true],
  ['literal dots are literal', op({ paths: ['/a.b/{*}'] }), { path: '/aXb/c' }, false],
]);

table('when conditions', [
  ['header value', when('request.headers[x-role]', ['admin']), { headers: { 'x-role': ['admin'] } }, true],
  ['header name is case-insensitive', when('request.headers[X-Role]', ['admin']), { headers: { 'x-role': ['admin'] } }, true],
  ['header absent', when('request.headers[x-role]', ['*']), {}, false],
  ['header notValues, absent header', when('request.headers[x-role]', undefined, ['guest']), {}, true],
  // CVE-2026-26308: each value of a repeated header is matched on its own, never the joined string.
  ['repeated header, second value matches', when('request.headers[x-role]', ['admin']), { headers: { 'x-role': ['user', 'admin'] } }, true],
  ['repeated header, joined string does not', when('request.headers[x-role]', ['user,admin', 'user, admin']), { headers: { 'x-role': ['user', 'admin'] } }, false],
  ['repeated header, notValues sees every value', when('request.headers[x-role]', undefined, ['guest']), { headers: { 'x-role': ['admin', 'guest'] } }, false],
  ['values and notValues are ANDed', { when: [{ key: 'request.headers[x-role]', values: ['*'], notValues: ['guest'] }] }, { headers: { 'x-role': ['admin'] } }, true],
  ['claim string', when('request.auth.claims[group]', ['ops']), { auth: { claims: { group: 'ops' } } }, true],
  ['claim nested', when('request.auth.claims[realm][role]', ['admin']), { auth: { claims: { realm: { role: 'admin' } } } }, true],
  ['claim nested, wrong shape', when('request.auth.claims[realm][role]', ['admin']), { auth: { claims: { realm: 'admin' } } }, false],
  ['claim array, any element', when('request.auth.claims[groups]', ['ops']), { auth: { claims: { groups: ['dev', 'ops'] } } }, true],
  ['claim array, none', when('request.auth.claims[groups]', ['ops']), { auth: { claims: { groups: ['dev'] } } }, false],
  ['claim array, notValues sees every element', when('request.auth.claims[groups]', undefined, ['banned']), { auth: { claims: { groups: ['dev', 'banned'] } } }, false],
  ['scope claim split on spaces', when('request.auth.claims[scope]', ['write']), { auth: { claims: { scope: 'read write' } } }, true],
  ['other string claims are not split', when('request.auth.claims[name]', ['Doe']), { auth: { claims: { name: 'Jane Doe' } } }, false],
  ['boolean claim by its JSON spelling', when('request.auth.claims[admin]', ['true']), { auth: { claims: { admin: true } } }, true],
  ['claim never reaches the prototype', when('request.auth.claims[constructor]', ['*']), { auth: { claims: {} } }, false],
  ['claim without token', when('request.auth.claims[group]', ['*']), {}, false],
  ['request.auth.principal', when('request.auth.principal', ['https://issuer.example/alice']), { auth: {} }, true],
  ['request.auth.audiences', when('request.auth.audiences', ['billing']), { auth: { audiences: ['api', 'billing'] } }, true],
  ['request.auth.presenter', when('request.auth.presenter', ['web-app']), { auth: { claims: { azp: 'web-app' } } }, true],
  ['source.ip', when('source.ip', ['10.0.0.0/8']), {}, true],
  ['source.ip notValues', when('source.ip', undefined, ['10.0.0.0/8']), {}, false],
  ['remote.ip IPv6', when('remote.ip', ['2001:db8::/32']), { remoteIp: '2001:db8::1' }, true],
  ['source.principal both spellings', when('source.principal', ['spiffe://cluster.local/ns/shop/sa/web']), {}, true],
  ['destination.port', when('destination.port', ['8443']), {}, true],
  ['destination.port miss', when('destination.port', ['443']), {}, false],
  ['connection.sni, case-insensitive', when('connection.sni', ['API.example.com']), {}, true],
  ['connection.sni absent', when('connection.sni', ['*']), { sni: '' }, false],
  ['conditions are ANDed', { when: [{ key: 'source.ip', values: ['10.0.0.0/8'] }, { key: 'destination.port', values: ['1'] }] }, {}, false],
]);

table('rule structure', [
  ['empty rule matches everything', {}, {}, true],
  ['from AND to', { from: [{ source: { principals: ['*'] } }], to: [{ operation: { methods: ['POST'] } }] }, {}, false],
  ['from AND to AND when', { from: [{ source: { principals: ['*'] } }], to: [{ operation: { methods: ['GET'] } }], when: [{ key: 'destination.port', values: ['8443'] }] }, {}, true],
]);

describe('decision order', () => {
  const allowAll: Policy = { name: 'allow-all', action: 'ALLOW', rules: [{}] };
  const denyAdmin: Policy = { name: 'deny-admin', action: 'DENY', rules: [{ name: 'admin', to: [{ operation: { paths: ['/admin*'] } }] }] };

  test('DENY beats ALLOW, naming policy and rule', () => {
    const d = evaluate(compilePolicies([allowAll, denyAdmin]), 'r', request({ path: '/admin' }));
    assert.equal(d.allowed, false);
    assert.equal(d.reason, 'denied_by_policy');
    assert.equal(d.policy, 'deny-admin');
    assert.equal(d.rule, 'admin');
  });

  test('ALLOW names policy and unnamed rule by index', () => {
    const d = evaluate(compilePolicies([allowAll, denyAdmin]), 'r', request({ path: '/x' }));
    assert.deepEqual([d.allowed, d.reason, d.policy, d.rule], [true, 'allowed_by_policy', 'allow-all', 'rules[0]']);
  });

  test('no policy at all: denied (least privilege, unlike Istio)', () => {
    const d = evaluate(compilePolicies([]), 'r', request());
    assert.deepEqual([d.allowed, d.reason, d.policy], [false, 'no_policy_applies', undefined]);
  });

  test('only DENY policies, none matching: denied no_policy_applies', () => {
    const d = evaluate(compilePolicies([denyAdmin]), 'r', request({ path: '/x' }));
    assert.deepEqual([d.allowed, d.reason], [false, 'no_policy_applies']);
  });

  test('ALLOW with rules unset allows nothing', () => {
    const d = evaluate(compilePolicies([{ name: 'nothing', action: 'ALLOW' }]), 'r', request());
    assert.deepEqual([d.allowed, d.reason], [false, 'no_allow_policy_matched']);
  });

  test('DENY with rules unset denies nothing', () => {
    const d = evaluate(compilePolicies([{ name: 'nothing', action: 'DENY' }, allowAll]), 'r', request());
    assert.equal(d.allowed, true);
  });

  test('DENY with notPrincipals ["*"] rejects plaintext peers, not mTLS peers', () => {
    const set = compilePolicies([{ name: 'mtls-only', action: 'DENY', rules: [{ from: [{ source: { notPrincipals: ['*'] } }] }] }, allowAll]);
    assert.equal(evaluate(set, 'r', request({ peerSpiffeId: undefined })).allowed, false);
    assert.equal(evaluate(set, 'r', request()).allowed, true);
  });

  test('policies are indexed by route; unset routes apply everywhere', () => {
    const set = compilePolicies([
      { name: 'shop-allow', action: 'ALLOW', routes: ['shop'], rules: [{}] },
      { name: 'global-deny', action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] },
    ]);
    assert.equal(evaluate(set, 'shop', request()).policy, 'shop-allow');
    assert.equal(evaluate(set, 'other', request()).reason, 'no_policy_applies');
    assert.equal(evaluate(set, 'shop', request({ method: 'DELETE' })).policy, 'global-deny');
    assert.equal(evaluate(set, 'other', request({ method: 'DELETE' })).policy, 'global-deny');
  });

  test('decisions without audit or dry-run are shared frozen values', () => {
    const set = compilePolicies([allowAll]);
    const a = evaluate(set, 'r', request());
    assert.equal(a, evaluate(set, 'r', request({ path: '/other' })));
    assert.ok(Object.isFrozen(a));
  });
});

describe('AUDIT', () => {
  test('never changes the decision, listed when matched', () => {
    const set = compilePolicies([
      { name: 'audit-writes', action: 'AUDIT', rules: [{ name: 'writes', to: [{ operation: { methods: ['POST'] } }] }] },
      { name: 'audit-all', action: 'AUDIT', rules: [{}] },
    ]);
    const d = evaluate(set, 'r', request({ method: 'POST' }));
    assert.deepEqual([d.allowed, d.reason], [false, 'no_policy_applies']);
    assert.deepEqual(d.audit, [
      { policy: 'audit-writes', action: 'AUDIT', rule: 'writes' },
      { policy: 'audit-all', action: 'AUDIT', rule: 'rules[0]' },
    ]);
    assert.deepEqual(evaluate(set, 'r', request()).audit.map((a) => a.policy), ['audit-all']);
  });
});

describe('dry-run', () => {
  const allowAll: Policy = { name: 'allow-all', action: 'ALLOW', rules: [{}] };
  const dryDeny: Policy = { name: 'dry-deny', action: 'DENY', mode: 'dry-run', rules: [{ name: 'posts', to: [{ operation: { methods: ['POST'] } }] }] };
  const dryAllow: Policy = { name: 'dry-allow', action: 'ALLOW', mode: 'dry-run', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }] };

  test('a dry-run DENY never denies but reports, and the shadow decision denies', () => {
    const d = evaluate(compilePolicies([allowAll, dryDeny]), 'r', request({ method: 'POST' }));
    assert.equal(d.allowed, true);
    assert.equal(d.policy, 'allow-all');
    assert.deepEqual(d.dryRun, [{ policy: 'dry-deny', action: 'DENY', rule: 'posts', wouldAllow: false }]);
    assert.deepEqual([d.shadowAllowed, d.shadowReason, d.shadowPolicy, d.shadowRule], [false, 'denied_by_policy', 'dry-deny', 'posts']);
  });

  test('a dry-run DENY that does not match leaves the shadow equal to the decision', () => {
    const d = evaluate(compilePolicies([allowAll, dryDeny]), 'r', request());
    assert.deepEqual(d.dryRun, []);
    assert.deepEqual([d.shadowAllowed, d.shadowReason, d.shadowPolicy], [true, 'allowed_by_policy', 'allow-all']);
  });

  test('a dry-run ALLOW never allows: still no_policy_applies, shadow allowed', () => {
    const d = evaluate(compilePolicies([dryAllow]), 'r', request());
    assert.deepEqual([d.allowed, d.reason], [false, 'no_policy_applies']);
    assert.deepEqual(d.dryRun, [{ policy: 'dry-allow', action: 'ALLOW', rule: 'rules[0]', wouldAllow: true }]);
    assert.deepEqual([d.shadowAllowed, d.shadowReason, d.shadowPolicy], [true, 'allowed_by_policy', 'dry-allow']);
  });

  test('rolling out a narrower ALLOW: shadow shows who it would lock out', () => {
    const d = evaluate(compilePolicies([allowAll, dryAllow]), 'r', request({ peerSpiffeId: 'spiffe://cluster.local/ns/other/sa/x' }));
    assert.equal(d.allowed, true);
    assert.deepEqual(d.dryRun, []);
    // The enforced allow-all still matches, so enforcing dry-allow alone changes nothing.
    assert.equal(d.shadowAllowed, true);
    const only = evaluate(compilePolicies([dryAllow]), 'r', request({ peerSpiffeId: undefined }));
    assert.deepEqual([only.shadowAllowed, only.shadowReason], [false, 'no_allow_policy_matched']);
  });

  test('an enforced DENY wins over dry-run reports in the shadow too', () => {
    const deny: Policy = { name: 'deny-posts', action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] };
    const d = evaluate(compilePolicies([deny, dryDeny, allowAll]), 'r', request({ method: 'POST' }));
    assert.deepEqual([d.allowed, d.policy, d.shadowPolicy], [false, 'deny-posts', 'deny-posts']);
    assert.equal(d.dryRun.length, 1);
  });
});
