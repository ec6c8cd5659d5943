import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OTHER_DESTINATION, createMetrics } from '../../../gateway/core/metrics.js';

/** Prometheus text exposition → `name{labels}` → value (label order as prom-client prints it). */
async function scrape(registry: { metrics(): Promise<string> }): Promise<Map<string, number>> {
  const samples = new Map<string, number>();
  for (const line of (await registry.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const split = line.lastIndexOf(' ');
    samples.set(line.slice(0, split), Number(line.slice(split + 1)));
  }
  return samples;
}

describe('metrics', () => {
  test('requests: counter by route/status/code and a duration histogram by route', async () => {
    const m = createMetrics();
    m.requests('api', 200, 'ok', 0.0007);
    m.requests('api', 200, 'ok', 0.003);
    m.requests('api', 429, 'GW_RATE_LIMITED', 0.0001);
    m.requests('admin', 403, 'GW_AUTHZ_DENIED', 2);
    const s = await scrape(m.registry);
    assert.equal(s.get('portcullis_requests_total{route="api",status="200",code="ok"}'), 2);
    assert.equal(s.get('portcullis_requests_total{route="api",status="429",code="GW_RATE_LIMITED"}'), 1);
    assert.equal(s.get('portcullis_requests_total{route="admin",status="403",code="GW_AUTHZ_DENIED"}'), 1);
    assert.equal(s.get('portcullis_request_duration_seconds_bucket{le="0.0005",route="api"}'), 1);
    assert.equal(s.get('portcullis_request_duration_seconds_bucket{le="0.005",route="api"}'), 3);
    assert.equal(s.get('portcullis_request_duration_seconds_bucket{le="5",route="admin"}'), 1);
    assert.equal(s.get('portcullis_request_duration_seconds_count{route="api"}'), 3);
    assert.ok(Math.abs(s.get('portcullis_request_duration_seconds_sum{route="api"}')! - 0.0038) < 1e-9);
  });

  test('jwt, authz, rate limit, certificate, redis and JWKS recorders', async () => {
    const m = createMetrics();
    m.jwtFailure('corp', 'expired');
    m.jwtFailure('corp', 'expired');
    m.authz('deny-admin', 'deny');
    m.authz('rollout', 'would_deny');
    m.rateLimitHit('api');
    m.rateLimitStoreFailure('api', 'fallback');
    const notAfter = new Date('2031-05-06T07:08:09Z');
    m.certificateExpiry('svid', notAfter);
    m.redisUp(true);
    m.jwksState('corp', 'fresh');
    m.jwksState('corp', 'stale');
    const s = await scrape(m.registry);
    assert.equal(s.get('portcullis_jwt_failures_total{provider="corp",reason="expired"}'), 2);
    assert.equal(s.get('portcullis_authz_decisions_total{policy="deny-admin",decision="deny"}'), 1);
    assert.equal(s.get('portcullis_authz_decisions_total{policy="rollout",decision="would_deny"}'), 1);
    assert.equal(s.get('portcullis_rate_limit_hits_total{limit="api"}'), 1);
    assert.equal(s.get('portcullis_rate_limit_store_failures_total{limit="api",outcome="fallback"}'), 1);
    assert.equal(s.get('portcullis_certificate_expiry_seconds{name="svid"}'), notAfter.getTime() / 1000);
    assert.equal(s.get('portcullis_redis_up'), 1);
    assert.equal(s.get('portcullis_jwks_state{provider="corp",state="fresh"}'), 0);
    assert.equal(s.get('portcullis_jwks_state{provider="corp",state="stale"}'), 1);
    assert.equal(s.get('portcullis_jwks_state{provider="corp",state="empty"}'), 0);
    assert.ok(s.has('process_resident_memory_bytes'), 'default process metrics on the same registry');
  });

  test('egress destinations: bounded label cardinality', async () => {
    const m = createMetrics({ maxEgressDestinations: 3 });
    for (const host of ['a.example', 'b.example', 'c.example', 'd.example', 'e.example', 'a.example']) m.egress(host, 'allow');
    m.egress('f.example', 'deny');
    const s = await scrape(m.registry);
    assert.equal(s.get('portcullis_egress_attempts_total{destination="a.example",decision="allow"}'), 2);
    assert.equal(s.get('portcullis_egress_attempts_total{destination="c.example",decision="allow"}'), 1);
    assert.equal(s.get(`portcullis_egress_attempts_total{destination="${OTHER_DESTINATION}",decision="allow"}`), 2);
    assert.equal(s.get(`portcullis_egress_attempts_total{destination="${OTHER_DESTINATION}",decision="deny"}`), 1);
    assert.equal([...s.keys()].filter((k) => k.startsWith('portcullis_egress_attempts_total{')).length, 5);
  });

  test('each gateway has its own registry', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.rateLimitHit('x');
    assert.equal((await scrape(a.registry)).get('portcullis_rate_limit_hits_total{limit="x"}'), 1);
    assert.equal((await scrape(b.registry)).get('portcullis_rate_limit_hits_total{limit="x"}'), undefined);
    assert.throws(() => createMetrics({ maxEgressDestinations: 0 }), /positive integer/);
  });
});
