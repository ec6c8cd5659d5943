// The whole ingress path on real sockets: TLS termination, JWT, policy, mutual TLS to an upstream that
// demands client certificates, and the headers the upstream receives.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';

describe('ingress request path', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress();
  });
  after(() => ing.close());

  test('public route reaches the upstream over mTLS with the gateway SPIFFE ID', async () => {
    const res = await request(ing.port, ing.caPem, { path: '/public/hello?x=1' });
    assert.equal(res.status, 200);
    const echo = res.json();
    assert.equal(echo.path, '/public/hello?x=1');
    assert.equal(echo.peer, `spiffe://${ing.trustDomain}/ns/portcullis/sa/gateway`);
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
    assert.equal(echo.headers.host, 'localhost');
    assert.match(String(echo.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  test('a missing token is anonymous and the policy denies it with a named reason', async () => {
    const res = await request(ing.port, ing.caPem, { path: '/api/orders' });
    assert.equal(res.status, 403);
    const body = res.json();
    assert.equal(body.code, 'GW_AUTHZ_DENIED');
    assert.equal(body.reason, 'no_allow_policy_matched');
    assert.ok(body.requestId);
    assert.equal(res.headers['content-type'], 'application/json');
  });

  test('a valid token is accepted, claims forwarded as headers, token stripped', async () => {
    const token = await ing.jwks.sign({ sub: 'alice' });
    const res = await request(ing.port, ing.caPem, { path: '/api/orders', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const echo = res.json();
    assert.equal(echo.headers['x-user'], 'alice');
    assert.equal(echo.headers.authorization, undefined);
  });

  test('an invalid token gets 401 with WWW-Authenticate', async () => {
    const token = await ing.jwks.sign({}, { issuer: 'https://evil.test' });
    const res = await request(ing.port, ing.caPem, { path: '/public/x', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401);
    assert.match(String(res.headers['www-authenticate']), /^Bearer .*error="invalid_token"/);
    assert.equal(res.json().code, 'GW_AUTHN_INVALID_TOKEN');
  });

  test('DENY wins and names the policy; the right claim passes', async () => {
    const user = await ing.jwks.sign({ role: 'user' });
    const denied = await request(ing.port, ing.caPem, { path: '/admin', headers: { authorization: `Bearer ${user}` } });
    assert.equal(denied.status, 403);
    assert.match(String(denied.json().reason), /^denied_by_policy: admin-deny\//);
    const admin = await ing.jwks.sign({ role: 'admin' });
    const allowed = await request(ing.port, ing.caPem, { path: '/admin', headers: { authorization: `Bearer ${admin}` } });
    assert.equal(allowed.status, 200);
  });

  test('client-sent copies of gateway-set headers are stripped (header spoofing)', async () => {
    const res = await request(ing.port, ing.caPem, {
      path: '/public/spoof',
      headers: {
        'x-forwarded-for': '10.0.0.1',
        'x-forwarded-host': 'evil.test',
        'x-user': 'root',
        x_user: 'root',
        'x-forwarded-client-cert': 'By=spiffe://evil',
        'x-portcullis-identity': 'root',
        connection: 'close, x-forwarded-proto',
      },
    });
    assert.equal(res.status, 200);
    const h = res.json().headers;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-host'], 'localhost');
    assert.equal(h['x-forwarded-proto'], 'https', 'Connection-listed names never remove gateway headers (CVE-2024-45410)');
    assert.equal(h['x-user'], undefined);
    assert.equal(h.x_user, undefined);
    assert.equal(h['x-forwarded-client-cert'], undefined);
    assert.equal(h['x-portcullis-identity'], undefined);
  });

  test('traceparent and a well-formed request id are passed on', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await request(ing.port, ing.caPem, { headers: { traceparent, 'x-request-id': 'req-123' } });
    assert.equal(res.json().headers.traceparent, traceparent);
    assert.equal(res.json().headers['x-request-id'], 'req-123');
  });

  test('large bodies stream both ways intact (multi-chunk, with backpressure)', async () => {
    const body = 'x'.repeat(900_000);
    const res = await request(ing.port, ing.caPem, { method: 'POST', path: '/public/upload', body });
    assert.equal(res.status, 200);
    assert.equal(res.json().body.length, body.length);
  });

  test('an unknown route is 404 and a body over the route limit is 413', async () => {
    const missing = await request(ing.port, ing.caPem, { path: '/nowhere' });
    assert.equal(missing.status, 404);
    assert.equal(missing.json().code, 'GW_ROUTE_NOT_FOUND');
    const big = await request(ing.port, ing.caPem, { method: 'POST', path: '/public/upload', body: 'x'.repeat(1_048_577) });
    assert.equal(big.status, 413);
  });

  test('one access-log line per request names decision, route and identity; no token in logs', async () => {
    const token = await ing.jwks.sign({ sub: 'bob' });
    await request(ing.port, ing.caPem, { path: '/api/log-check', headers: { authorization: `Bearer ${token}` } });
    const line = ing.logs.find((l) => l.event === 'REQUEST' && l.path === '/api/log-check');
    assert.ok(line);
    assert.equal(line.route, 'api');
    assert.equal(line.status, 200);
    assert.equal(line.principal, 'https://issuer.test/bob');
    assert.match(String(line.decision), /^allowed_by_policy: api\//);
    assert.ok(!JSON.stringify(ing.logs).includes(token));
  });
});

describe('X-Forwarded-For from a trusted proxy', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.trustedProxies = ['127.0.0.1/32'];
      config.policies.push({
        name: 'office-only',
        action: 'DENY',
        routes: ['public'],
        rules: [{ to: [{ operation: { paths: ['/public/office*'] } }], from: [{ source: { notRemoteIpBlocks: ['203.0.113.0/24'] } }] }],
      });
    });
  });
  after(() => ing.close());

  test('the client address is the right-most untrusted hop, and the chain is extended', async () => {
    const res = await request(ing.port, ing.caPem, { path: '/public/office', headers: { 'x-forwarded-for': '198.51.100.7, 203.0.113.9' } });
    assert.equal(res.status, 200);
    assert.equal(res.json().headers['x-forwarded-for'], '198.51.100.7, 203.0.113.9, 127.0.0.1');
    const outside = await request(ing.port, ing.caPem, { path: '/public/office', headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.7' } });
    assert.equal(outside.status, 403);
    const garbage = await request(ing.port, ing.caPem, { path: '/public/office', headers: { 'x-forwarded-for': 'not-an-ip, 203.0.113.9' } });
    assert.equal(garbage.status, 200, 'right-most hop is still a valid untrusted address');
  });
});

describe('verified-token cache off', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.jwtCache = { maxEntries: 0 };
    });
  });
  after(() => ing.close());

  test('jwtCache.maxEntries: 0 verifies every request and still accepts valid tokens', async () => {
    const token = await ing.jwks.sign({ sub: 'nocache' });
    for (let i = 0; i < 3; i++) {
      const res = await request(ing.port, ing.caPem, { path: '/api/x', headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
    }
  });
});
