// `authentication: required` on a route: a request without a valid token is answered 401 with an RFC 6750
// challenge before authorization runs. Without it (the default), the request is anonymous and the policy answers
// 403, as Istio does. Provider-level requireExpiration and requiredClaims are checked through the real gateway.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';

describe('route authentication: required vs optional', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.jwtProviders[0].requiredClaims = [{ claim: 'tenant' }, { claim: 'role', values: ['admin', 'ops'] }];
      config.routes.unshift(
        { name: 'members', match: { path: { prefix: '/members' } }, upstream: 'echo', authentication: 'required' },
        { name: 'closed', match: { path: { prefix: '/closed' } }, upstream: 'echo', authentication: 'required' },
      );
      config.policies.push(
        { name: 'members', action: 'ALLOW', routes: ['members'], rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] },
        { name: 'closed', action: 'DENY', routes: ['closed'], rules: [{}] },
      );
    });
  });
  after(() => ing.close());

  const token = (claims: Record<string, unknown> = {}) => ing.jwks.sign({ tenant: 't1', role: 'ops', ...claims });

  test('no token on a required route: 401 with a bare Bearer challenge, nothing forwarded', async () => {
    const hits = ing.upstream.hits;
    const reply = await request(ing.port, ing.caPem, { path: '/members/profile' });
    assert.equal(reply.status, 401);
    assert.equal(reply.headers['www-authenticate'], 'Bearer realm="portcullis"');
    assert.equal(reply.json().code, 'GW_AUTHN_REQUIRED');
    assert.equal(reply.json().reason, 'token_missing');
    assert.equal(ing.upstream.hits, hits);
  });

  test('authentication runs before authorization: a route every policy denies still answers 401 without a token', async () => {
    const reply = await request(ing.port, ing.caPem, { path: '/closed/x' });
    assert.equal(reply.status, 401);
    const withToken = await request(ing.port, ing.caPem, { path: '/closed/x', headers: { authorization: `Bearer ${await token()}` } });
    assert.equal(withToken.status, 403);
  });

  test('without `authentication: required` a missing token is anonymous and the policy answers 403 (Istio)', async () => {
    const reply = await request(ing.port, ing.caPem, { path: '/api/x' });
    assert.equal(reply.status, 403);
    assert.equal(reply.headers['www-authenticate'], undefined);
  });

  test('a valid token passes; an invalid one is 401 invalid_token on either kind of route', async () => {
    const ok = await request(ing.port, ing.caPem, { path: '/members/profile', headers: { authorization: `Bearer ${await token()}` } });
    assert.equal(ok.status, 200);
    for (const path of ['/members/profile', '/api/x']) {
      const bad = await request(ing.port, ing.caPem, { path, headers: { authorization: 'Bearer not-a-jwt' } });
      assert.equal(bad.status, 401);
      assert.match(String(bad.headers['www-authenticate']), /error="invalid_token"/);
    }
  });

  test('requiredClaims through the gateway: a missing claim or a value not listed is 401 with its reason', async () => {
    const missing = await request(ing.port, ing.caPem, { path: '/members/x', headers: { authorization: `Bearer ${await token({ tenant: undefined })}` } });
    assert.equal(missing.status, 401);
    assert.equal(missing.json().reason, 'claim_missing');
    const wrong = await request(ing.port, ing.caPem, { path: '/members/x', headers: { authorization: `Bearer ${await token({ role: 'guest' })}` } });
    assert.equal(wrong.json().reason, 'claim_value_not_allowed');
  });
});
