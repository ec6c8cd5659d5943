import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../../../policies/compile.js';
import { evaluate } from '../../../policies/evaluate.js';
import type { Policy } from '../../../policies/schema.js';
import { explainEvaluation } from '../../../policies/trace.js';
import { request } from './request.js';

const POLICIES: Policy[] = [
  { name: 'no-admin', action: 'DENY', rules: [{ name: 'admin', to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }] },
  {
    name: 'api',
    action: 'ALLOW',
    routes: ['api'],
    rules: [
      {
        name: 'readers',
        from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }, { source: { requestPrincipals: ['*'] } }],
        to: [{ operation: { methods: ['GET'] } }],
        when: [{ key: 'request.auth.claims[scope]', values: ['orders:read'] }],
      },
      { name: 'ops', from: [{ source: { principals: ['cluster.local/ns/ops/sa/tool'] } }] },
    ],
  },
];
const set = compilePolicies(POLICIES, { routes: ['api', 'other'] });

test('the trace carries the decision evaluate makes, and every field of every rule', () => {
  const req = request({ method: 'POST', auth: { claims: { scope: 'orders:read orders:write' } } });
  const explained = explainEvaluation(set, 'api', req);
  assert.deepEqual(explained.decision, evaluate(set, 'api', req));
  assert.deepEqual(explained.policies.map((p) => [p.policy, p.action, p.matchedRule]), [
    ['no-admin', 'DENY', undefined],
    ['api', 'ALLOW', undefined],
  ]);
  const readers = explained.policies[1]!.rules[0]!;
  assert.deepEqual(
    readers.fields.map((f) => [f.field, f.matched, f.actual]),
    [
      ['from[0].source.principals', true, 'cluster.local/ns/shop/sa/web'],
      ['from[1].source.requestPrincipals', true, 'https://issuer.example/alice'],
      ['to[0].operation.methods', false, 'POST'],
      ['when[0].values', true, ['orders:read', 'orders:write']],
    ],
  );
  assert.equal(readers.fields[3]!.key, 'request.auth.claims[scope]');
  assert.equal(explained.hint, "policy 'api' rule 'readers' would allow it with: add 'POST' to to[0].operation.methods");
});

test('the hint takes the cheapest alternative of a from list and names missing attributes', () => {
  const req = request({ peerSpiffeId: undefined });
  const { hint } = explainEvaluation(set, 'api', req);
  // No certificate and no token: readers needs a principal or a token (one change) plus the scope claim.
  assert.match(hint ?? '', /rule 'ops' would allow it with: the request has nothing for from\[0\]\.source\.principals/);
});

test('a DENY and a route without ALLOW are named as such', () => {
  const denied = explainEvaluation(set, 'api', request({ path: '/ADMIN/x' }));
  assert.equal(denied.decision.reason, 'denied_by_policy');
  assert.equal(denied.policies[0]!.matchedRule, 'admin');
  assert.match(denied.hint ?? '', /DENY policy 'no-admin' rule 'admin' matches/);
  const none = explainEvaluation(set, 'other', request());
  assert.match(none.hint ?? '', /route 'other' has no enforced ALLOW policy/);
});

test('dry-run and audit policies are traced with their mode', () => {
  const s = compilePolicies([
    { name: 'all', action: 'ALLOW', rules: [{}] },
    { name: 'watch', action: 'AUDIT', rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] }] },
    { name: 'try', action: 'DENY', mode: 'dry-run', rules: [{ from: [{ source: { notIpBlocks: ['10.0.0.0/8'] } }] }] },
  ]);
  const { policies } = explainEvaluation(s, 'r', request());
  assert.deepEqual(policies.map((p) => [p.policy, p.mode, p.matchedRule ?? null]), [
    ['all', 'enforce', 'rules[0]'],
    ['watch', 'enforce', 'rules[0]'],
    ['try', 'dry-run', null],
  ]);
  assert.equal(policies[1]!.rules[0]!.fields[0]!.actual, '10.1.2.3');
});
