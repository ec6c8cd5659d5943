// Running as replicas: two gateway instances share a rate limit through the real Redis, metrics are
// scraped and parsed after traffic, and a gateway asked to stop finishes every request it accepted.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('two gateway instances sharing Redis', () => {
  const prefix = `portcullis-test-${randomUUID()}:`;
  const replicas: TestIngress[] = [];
  before(async () => {
    for (let i = 0; i < 2; i++) {
      replicas.push(
        await startTestIngress((config) => {
          config.redis = { url: REDIS_URL, keyPrefix: prefix };
          config.rateLimits = [{ name: 'per-client', requests: 10, perSeconds: 60, key: 'client_ip' }];
          config.routes.find((r: { name: string }) => r.name === 'public').rateLimit = 'per-client';
        }),
      );
    }
  });
  after(async () => {
    await Promise.all(replicas.map((r) => r.close()));
  });

  test('the limit holds across both replicas; refusals are 429 with Retry-After and RateLimit headers', async () => {
    const statuses: number[] = [];
    let refusal: Awaited<ReturnType<typeof request>> | undefined;
    for (let i = 0; i < 8; i++) {
      for (const replica of replicas) {
        const res = await request(replica.port, replica.caPem, { path: '/public/limited' });
        statuses.push(res.status);
        if (res.status === 429) refusal ??= res;
      }
    }
    const allowed = statuses.filter((s) => s === 200).length;
    console.log(`two-instance rate limit: ${statuses.length} requests, ${allowed} allowed, ${statuses.length - allowed} refused (limit 10/60s)`);
    assert.equal(allowed, 10);
    assert.equal(statuses.filter((s) => s === 429).length, 6);
    assert.ok(refusal);
    assert.equal(refusal.json().code, 'GW_RATE_LIMITED');
    assert.ok(Number(refusal.headers['retry-after']) >= 1);
    assert.equal(refusal.headers['ratelimit-limit'], '10');
    assert.equal(refusal.headers['ratelimit-remaining'], '0');
  });

  test('metrics after traffic: requests by route and code, rate-limit hits, Redis up, certificate expiry', async () => {
    const text = await replicas[0]!.gateway.metrics.registry.metrics();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
    assert.ok(value(/^portcullis_requests_total\{route="public",status="200",code="ok"\} (\d+)/m) >= 1);
    assert.ok(value(/^portcullis_requests_total\{route="public",status="429",code="GW_RATE_LIMITED"\} (\d+)/m) >= 1);
    assert.ok(value(/^portcullis_rate_limit_hits_total\{limit="per-client"\} (\d+)/m) >= 1);
    assert.equal(value(/^portcullis_redis_up (\d+)/m), 1);
    assert.ok(value(/^portcullis_certificate_expiry_timestamp_seconds\{name="mesh-svid"\} (\d+)/m) > Date.now() / 1000);
    assert.match(text, /^portcullis_request_duration_seconds_bucket\{le="0.005",route="public",status_class="2xx"\}/m);
    assert.match(text, /^portcullis_authz_decisions_total\{policy="public",decision="allow",reason="allowed_by_policy"\}/m);
  });
});

describe('graceful shutdown', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress();
  });

  test('requests in flight when shutdown starts all complete; readiness drops; new connections are refused', async () => {
    assert.equal(ing.gateway.ready(), true);
    const inFlight = Array.from({ length: 20 }, (_, i) => request(ing.port, ing.caPem, { path: `/public/slow?delay=1000&i=${i}` }));
    // In flight = already at the upstream, which holds each answer for a second.
    while (ing.upstream.hits < 20) await new Promise((r) => setTimeout(r, 10));
    const closing = ing.close();
    assert.equal(ing.gateway.ready(), false);
    const results = await Promise.all(inFlight);
    await closing;
    assert.deepEqual(results.map((r) => r.status), Array(20).fill(200));
    await assert.rejects(request(ing.port, ing.caPem));
  });
});
