import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError, toHttpResponse } from '../../../gateway/core/errors.js';
import { createLogger } from '../../../gateway/core/log.js';
import { createMetrics } from '../../../gateway/core/metrics.js';
import { createRateLimiter, rateLimitHeaders, type RateLimitRequest } from '../../../gateway/limits/rate-limiter.js';

const logger = createLogger('silent');
/** The request a decision is reported for (a dry-run limit's would-deny names it). */
const AT = { requestId: 'r-1', route: 'api' };

function request(fields: Partial<Omit<RateLimitRequest, 'header'>> & { headers?: Record<string, string[]> } = {}): RateLimitRequest {
  const { headers = {}, ...rest } = fields;
  return { remoteIp: '192.0.2.1', header: (name) => headers[name], ...rest };
}

async function allowedCount(run: () => Promise<{ allowed: boolean }>, times: number): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < times; i++) if ((await run()).allowed) allowed++;
  return allowed;
}

describe('rate limits in memory', () => {
  test('requests/perSeconds: the limit holds per key and reports what is left', async () => {
    const rl = createRateLimiter([{ name: 'api', requests: 3, perSeconds: 60 }], undefined, { logger });
    const first = await rl.check('api', 'a');
    assert.deepEqual({ ...first, resetMs: undefined }, { allowed: true, limit: 3, remaining: 2, resetMs: undefined });
    assert.ok(first.resetMs > 59_000 && first.resetMs <= 60_000);
    assert.equal(await allowedCount(() => rl.check('api', 'a'), 5), 2);
    assert.equal((await rl.check('api', 'b')).allowed, true, 'another key has its own count');
    assert.equal(rl.redisHealthy(), true);
    await rl.close();
  });

  test('burst adds extra requests on top of the steady rate', async () => {
    const rl = createRateLimiter([{ name: 'bursty', requestsPerSecond: 2, burst: 3 }], undefined, { logger });
    assert.equal(await allowedCount(() => rl.check('bursty', 'k'), 10), 5);
    await rl.close();
  });

  test('enforce refuses with GW_RATE_LIMITED, Retry-After and RateLimit-* headers', async () => {
    const metrics = createMetrics();
    const rl = createRateLimiter([{ name: 'one', requests: 1, perSeconds: 30 }], undefined, { logger, metrics });
    await rl.enforce('one', request(), AT);
    const err = await rl.enforce('one', request(), AT).then(
      () => assert.fail('second request must be refused'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, 'GW_RATE_LIMITED');
    assert.equal(err.reason, 'one');
    const response = toHttpResponse(err, 'req-1');
    assert.equal(response.status, 429);
    assert.equal(response.headers['ratelimit-limit'], '1');
    assert.equal(response.headers['ratelimit-remaining'], '0');
    assert.ok(Number(response.headers['ratelimit-reset']) >= 29 && Number(response.headers['ratelimit-reset']) <= 30);
    assert.equal(response.headers['retry-after'], response.headers['ratelimit-reset']);
    assert.match(await metrics.registry.metrics(), /portcullis_rate_limit_hits_total\{limit="one"\} 1\b/);
    await rl.close();
  });

  test('keys: jwt_subject and spiffe_id fall back to the client IP, header keys to the IP when absent', async () => {
    const rl = createRateLimiter(
      [
        { name: 'by-sub', requests: 1, perSeconds: 60, key: 'jwt_subject' },
        { name: 'by-spiffe', requests: 1, perSeconds: 60, key: 'spiffe_id' },
        { name: 'by-header', requests: 1, perSeconds: 60, key: 'header:x-api-key' },
      ],
      undefined,
      { logger },
    );
    const auth = (sub: string) => ({ issuer: 'https://idp', subject: sub, principal: `https://idp/${sub}`, audiences: [], claims: {} });
    assert.equal((await rl.enforce('by-sub', request({ auth: auth('alice') }), AT)).allowed, true);
    // Same IP, another subject: its own bucket.
    assert.equal((await rl.enforce('by-sub', request({ auth: auth('bob') }), AT)).allowed, true);
    // Anonymous: counted by IP, which has not been used under this limit yet.
    assert.equal((await rl.enforce('by-sub', request(), AT)).allowed, true);
    await assert.rejects(rl.enforce('by-sub', request(), AT), { code: 'GW_RATE_LIMITED' });
    await assert.rejects(rl.enforce('by-sub', request({ auth: auth('alice'), remoteIp: '198.51.100.7' }), AT), { code: 'GW_RATE_LIMITED' });

    await rl.enforce('by-spiffe', request({ peerSpiffeId: 'spiffe://td/ns/a/sa/x' }), AT);
    await rl.enforce('by-spiffe', request({ peerSpiffeId: 'spiffe://td/ns/a/sa/y' }), AT);
    await rl.enforce('by-spiffe', request(), AT);
    await assert.rejects(rl.enforce('by-spiffe', request({ peerSpiffeId: 'spiffe://td/ns/a/sa/x', remoteIp: '203.0.113.9' }), AT), {
      code: 'GW_RATE_LIMITED',
    });

    await rl.enforce('by-header', request({ headers: { 'x-api-key': ['k1'] } }), AT);
    await rl.enforce('by-header', request({ headers: { 'x-api-key': ['k2'] } }), AT);
    await rl.enforce('by-header', request(), AT);
    await assert.rejects(rl.enforce('by-header', request({ headers: { 'x-api-key': ['k1'] }, remoteIp: '203.0.113.9' }), AT), {
      code: 'GW_RATE_LIMITED',
    });
    // A huge client-chosen value is still one short key, and distinct from the others.
    assert.equal((await rl.enforce('by-header', request({ headers: { 'x-api-key': ['z'.repeat(100_000)] } }), AT)).allowed, true);
    await rl.close();
  });

  test('an IP and a subject spelled the same never share a count', async () => {
    const rl = createRateLimiter([{ name: 'l', requests: 1, perSeconds: 60, key: 'jwt_subject' }], undefined, { logger });
    const ip = '192.0.2.1';
    await rl.enforce('l', request({ remoteIp: ip }), AT);
    const auth = { issuer: '', subject: ip, principal: ip, audiences: [], claims: {} };
    assert.equal((await rl.enforce('l', request({ remoteIp: '198.51.100.1', auth }), AT)).allowed, true);
    await rl.close();
  });

  test('options are checked at creation', () => {
    assert.throws(() => createRateLimiter([{ name: 'x', requestsPerSecond: 1, key: 'cookie:x' }], undefined, { logger }), /rate limit key/);
    assert.throws(() => createRateLimiter([], {}, { logger, env: {} }), /PORTCULLIS_REDIS_URL/);
  });

  test('an unknown limit name is a programming error, not a refusal', async () => {
    const rl = createRateLimiter([], undefined, { logger });
    await assert.rejects(rl.check('nope', 'k'), /not configured/);
  });
});

describe('a dry-run limit', () => {
  test('never refuses: over the limit it reports one would-deny per request and counts no hit', async () => {
    const metrics = createMetrics();
    const rl = createRateLimiter([{ name: 'trial', requests: 1, perSeconds: 60, mode: 'dry-run' }], undefined, { logger, metrics });
    for (let i = 0; i < 3; i++) assert.equal((await rl.enforce('trial', request(), AT)).allowed, true);
    const page = await metrics.registry.metrics();
    assert.match(page, /^portcullis_dry_run_would_deny_total\{kind="rate_limit",policy="trial"\} 2$/m);
    assert.doesNotMatch(page, /^portcullis_rate_limit_hits_total\{/m);
    await rl.close();
  });
});

describe('rateLimitHeaders', () => {
  test('rounds the reset up to whole seconds; Retry-After only on refusal and at least 1', () => {
    assert.deepEqual(rateLimitHeaders({ allowed: true, limit: 10, remaining: 4, resetMs: 1200 }), {
      'ratelimit-limit': '10',
      'ratelimit-remaining': '4',
      'ratelimit-reset': '2',
    });
    assert.deepEqual(rateLimitHeaders({ allowed: false, limit: 10, remaining: 0, resetMs: 0 }), {
      'ratelimit-limit': '10',
      'ratelimit-remaining': '0',
      'ratelimit-reset': '0',
      'retry-after': '1',
    });
  });
});
