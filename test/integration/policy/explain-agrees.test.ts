// `portcullis explain` and `portcullis test` run the gateway's own stages without sockets: for a table of
// requests, what a real gateway on real sockets does and what explain says it does must be the same
// (status, code, reason, deciding policy and rule, and the headers the upstream gets).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestIngress, request, type TestIngress } from '../../helpers/ingress.js';
import { createDecisionRuntime, type DecisionRuntime } from '../../../gateway/tools/decide.js';
import type { IngressExplanation } from '../../../gateway/ingress/explain.js';

let ing: TestIngress;
let runtime: DecisionRuntime;

before(async () => {
  ing = await startTestIngress((config) => {
    config.routes.push({ name: 'orders', match: { path: { prefix: '/orders' } }, upstream: 'echo' });
    config.routes.push({ name: 'closed', match: { path: { prefix: '/closed' } }, upstream: 'echo' });
    config.routes.push({ name: 'moved', match: { path: { prefix: '/moved' } }, filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/orders' }, statusCode: 308 } }] });
    config.policies.push({ name: 'moved', action: 'ALLOW', routes: ['moved'], rules: [{}] });
    config.policies.push({
      name: 'orders',
      action: 'ALLOW',
      routes: ['orders'],
      rules: [
        { name: 'read', to: [{ operation: { methods: ['GET'] } }], when: [{ key: 'request.auth.claims[scope]', values: ['orders:read'] }] },
        { name: 'internal', from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] },
      ],
    });
    config.policies.push({ name: 'no-export', action: 'DENY', routes: ['orders'], rules: [{ name: 'export', to: [{ operation: { paths: ['/orders/export'] } }] }] });
  });
  runtime = createDecisionRuntime(ing.loaded.config);
});

after(async () => {
  await runtime.close();
  await ing.close();
});

interface Row {
  name: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  token?: Record<string, unknown>;
}

const ROWS: Row[] = [
  { name: 'public allowed', path: '/public/a?x=1' },
  { name: 'spoofed forwarding and identity headers stripped', path: '/public/a', headers: { 'x-forwarded-for': '6.6.6.6', 'x-user': 'root', x_admin: '1', 'x-original-url': '/admin' } },
  { name: 'dot segments resolved into a DENY', path: '/public/../orders/export', token: { scope: 'orders:read' } },
  { name: 'case variant still denied', path: '/orders/EXPORT', token: { scope: 'orders:read' } },
  { name: 'semicolon refused', path: '/orders;x/list' },
  { name: 'double encoding refused', path: '/%2561dmin' },
  { name: 'no route', path: '/nowhere' },
  { name: 'route without policy', path: '/closed/x' },
  { name: 'api without token', path: '/api/x' },
  { name: 'api with token, claim header set', path: '/api/x', token: {} },
  { name: 'api with a forged claim header', path: '/api/x', token: { sub: 'bob' }, headers: { 'x-user': 'alice' } },
  { name: 'orders with the scope', path: '/orders/list', token: { scope: 'orders:read orders:write' } },
  { name: 'orders without the scope', path: '/orders/list', token: { scope: 'profile' } },
  { name: 'orders POST with the scope', method: 'POST', path: '/orders/list', token: { scope: 'orders:read' } },
  { name: 'admin without role', path: '/admin/x', token: { role: 'user' } },
  { name: 'admin with role', path: '/admin/x', token: { role: 'admin' } },
  { name: 'invalid token', path: '/api/x', headers: { authorization: 'Bearer not.a.token' } },
  { name: 'unknown host', path: '/public/a', headers: { host: 'other.test' } },
  { name: 'redirect route', path: '/moved/a?x=1' },
];

for (const row of ROWS) {
  test(`explain agrees with the gateway: ${row.name}`, async () => {
    const headers: Record<string, string> = { ...row.headers };
    if (row.token) headers.authorization = `Bearer ${await ing.jwks.sign(row.token)}`;
    const method = row.method ?? 'GET';
    const reply = await request(ing.port, ing.caPem, { path: row.path, method, headers: { host: `localhost:${ing.port}`, ...headers } });
    const explained = (await runtime.explain({
      kind: 'ingress',
      // The helper's client always sends SNI 'localhost', whatever the Host. The URL, like the real request's Host,
      // names the port the gateway bound (its listener is configured on port 0).
      input: { method, url: `https://localhost:${ing.port}${row.path}`, headers: Object.entries(headers), sni: 'localhost' },
    })) as IngressExplanation;
    const outcome = explained.outcome;
    if (outcome.decision === 'forward') {
      assert.equal(reply.status, 200, reply.text);
      const echoed = reply.json();
      assert.equal(echoed.path, outcome.path);
      // Every header explain says the upstream gets, with the value it says (the request id aside).
      const forwarded = explained.forwarded!.headers;
      for (const [name, value] of Object.entries(forwarded)) {
        if (name === 'x-request-id' || name === 'host') continue;
        assert.deepEqual(echoed.headers[name], value, name);
      }
      for (const name of explained.forwarded!.stripped) assert.equal(echoed.headers[name], undefined, name);
    } else if (outcome.decision === 'redirect') {
      assert.equal(reply.status, outcome.status);
      assert.equal(reply.headers.location, outcome.location);
    } else {
      assert.equal(reply.status, outcome.status, reply.text);
      const body = reply.json();
      assert.equal(body.code, outcome.code);
      if (outcome.code === 'GW_AUTHZ_DENIED') {
        const d = explained.authorization!.decision;
        assert.equal(body.reason, d.policy ? `${d.reason}: ${d.policy}/${d.rule}` : d.reason);
      } else if (outcome.reason !== undefined && body.reason !== undefined) {
        assert.equal(body.reason, outcome.reason);
      }
    }
  });
}
