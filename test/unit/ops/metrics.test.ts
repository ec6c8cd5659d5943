import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { METRIC_NAMES, OTHER_DESTINATION, aggregateWorkerMetrics, createMetrics, createReloadMetrics } from '../../../gateway/core/metrics.js';
import { PORTCULLIS_VERSION } from '../../../gateway/core/process-metrics.js';

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
    m.requests('api', 200, 'ok', 0.0007, 10, 100);
    m.requests('api', 200, 'ok', 0.003, 0, 50);
    m.requests('api', 429, 'GW_RATE_LIMITED', 0.0001, 0, 0);
    m.requests('admin', 403, 'GW_AUTHZ_DENIED', 45, 0, 0);
    const s = await scrape(m.registry);
    assert.equal(s.get('portcullis_requests_total{route="api",status="200",code="ok"}'), 2);
    assert.equal(s.get('portcullis_requests_total{route="api",status="429",code="GW_RATE_LIMITED"}'), 1);
    assert.equal(s.get('portcullis_requests_total{route="admin",status="403",code="GW_AUTHZ_DENIED"}'), 1);
    // Durations by status class: the fast refusal is not in the answers' distribution.
    assert.equal(s.get('portcullis_request_duration_seconds_bucket{le="0.0005",route="api",status_class="4xx"}'), 1);
    assert.equal(s.get('portcullis_request_duration_seconds_bucket{le="0.0005",route="api",status_class="2xx"}'), 0);
    assert.equal(s.get('portcullis_request_duration_seconds_bucket{le="0.005",route="api",status_class="2xx"}'), 2);
    assert.equal(s.get('portcullis_request_duration_seconds_bucket{le="30",route="admin",status_class="4xx"}'), 0);
    assert.equal(s.get('portcullis_request_duration_seconds_bucket{le="60",route="admin",status_class="4xx"}'), 1);
    assert.ok(![...s.keys()].some((k) => k.includes('status_class="5xx"')), 'a class with no request has no series');
    assert.equal(s.get('portcullis_request_bytes_total{route="api"}'), 10);
    assert.equal(s.get('portcullis_response_bytes_total{route="api"}'), 150);
    assert.equal(s.get('portcullis_request_duration_seconds_count{route="api",status_class="2xx"}'), 2);
    assert.ok(Math.abs(s.get('portcullis_request_duration_seconds_sum{route="api",status_class="2xx"}')! - 0.0037) < 1e-9);
  });

  test('upstreams: one series per name, made once and kept; exported from its first request; summed across workers', async () => {
    const m = createMetrics();
    const app = m.upstream('app');
    assert.equal(m.upstream('app'), app, 'a reloaded runtime gets the same series back, so counts go on');
    m.upstream('idle');
    app.record(200, 'ok', 0.002, 5, 7);
    app.record(200, 'ok', 0.2, 0, 3);
    app.record(503, 'GW_UPSTREAM_OVERLOADED', 0.0001, 0, 0);
    const s = await scrape(m.registry);
    assert.equal(s.get('portcullis_upstream_requests_total{upstream="app",status="200",code="ok"}'), 2);
    assert.equal(s.get('portcullis_upstream_requests_total{upstream="app",status="503",code="GW_UPSTREAM_OVERLOADED"}'), 1);
    assert.equal(s.get('portcullis_upstream_request_duration_seconds_bucket{le="0.0025",upstream="app",status_class="2xx"}'), 1);
    assert.equal(s.get('portcullis_upstream_request_duration_seconds_count{upstream="app",status_class="2xx"}'), 2);
    assert.equal(s.get('portcullis_upstream_request_duration_seconds_count{upstream="app",status_class="5xx"}'), 1);
    assert.equal(s.get('portcullis_upstream_sent_bytes_total{upstream="app"}'), 5);
    assert.equal(s.get('portcullis_upstream_received_bytes_total{upstream="app"}'), 10);
    assert.ok(![...s.keys()].some((k) => k.includes('upstream="idle"')), 'an upstream no request reached has no series yet');

    const worker = async (name: string) => ({ worker: name, metrics: await m.registry.getMetricsAsJSON() });
    const machine = await scrape(aggregateWorkerMetrics([await worker('1'), await worker('2')]));
    assert.equal(machine.get('portcullis_upstream_requests_total{upstream="app",status="200",code="ok"}'), 4);
    assert.equal(machine.get('portcullis_upstream_request_duration_seconds_bucket{le="+Inf",upstream="app",status_class="2xx"}'), 4);
  });

  test('the metrics list of docs/operations.md: a row for every portcullis_* metric, and no row for one that does not exist', async () => {
    const doc = fs.readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
    const rows = new Set([...doc.matchAll(/^\| `(portcullis_[a-z_]+)` \|/gm)].map((m) => m[1]!));
    const m = createMetrics();
    // Those made on first use (Redis) or by whoever applies reloads, as a running gateway has them.
    m.redisUp(true);
    createReloadMetrics(m.registry);
    const families = (await m.registry.getMetricsAsJSON()).map((f) => f.name).filter((n) => n.startsWith('portcullis_'));
    const declared = Object.values(METRIC_NAMES).filter((n) => n.startsWith('portcullis_'));
    for (const name of new Set([...families, ...declared])) assert.ok(rows.has(name), `${name} has no row in docs/operations.md`);
    for (const name of rows) assert.ok(declared.includes(name as (typeof declared)[number]), `docs/operations.md lists ${name}, which METRIC_NAMES does not`);
  });

  test('jwt, authz, rate limit, certificate, redis and JWKS recorders', async () => {
    const m = createMetrics();
    m.jwtFailure('corp', 'expired');
    m.jwtFailure('corp', 'expired');
    m.authz('deny-admin', 'deny', 'denied_by_policy');
    m.authz('', 'deny', 'no_allow_policy_matched');
    m.authz('rollout', 'would_deny', 'denied_by_policy');
    m.rateLimitHit('api');
    m.rateLimitStoreFailure('api', 'fallback');
    const notAfter = new Date('2031-05-06T07:08:09Z');
    m.certificateExpiry('svid', notAfter);
    m.redisUp(true);
    m.jwksState('corp', 'fresh');
    m.jwksState('corp', 'stale');
    const s = await scrape(m.registry);
    assert.equal(s.get('portcullis_jwt_failures_total{provider="corp",reason="expired"}'), 2);
    assert.equal(s.get('portcullis_authz_decisions_total{policy="deny-admin",decision="deny",reason="denied_by_policy"}'), 1);
    assert.equal(s.get('portcullis_authz_decisions_total{policy="",decision="deny",reason="no_allow_policy_matched"}'), 1);
    assert.equal(s.get('portcullis_authz_decisions_total{policy="rollout",decision="would_deny",reason="denied_by_policy"}'), 1);
    assert.equal(s.get('portcullis_rate_limit_hits_total{limit="api"}'), 1);
    assert.equal(s.get('portcullis_rate_limit_store_failures_total{limit="api",outcome="fallback"}'), 1);
    assert.equal(s.get('portcullis_certificate_expiry_timestamp_seconds{name="svid"}'), notAfter.getTime() / 1000);
    assert.equal(s.get('portcullis_redis_up'), 1);
    assert.equal(s.get('portcullis_jwks_state{provider="corp",state="fresh"}'), 0);
    assert.equal(s.get('portcullis_jwks_state{provider="corp",state="stale"}'), 1);
    assert.equal(s.get('portcullis_jwks_state{provider="corp",state="empty"}'), 0);
    assert.ok(s.has('process_resident_memory_bytes'), 'default process metrics on the same registry');
  });

  test('egress destinations: bounded label cardinality', async () => {
    const m = createMetrics({ maxEgressDestinations: 3 });
    for (const host of ['a.example', 'b.example', 'c.example', 'd.example', 'e.example', 'a.example']) m.egress(host, 'allow', 'ok', 1, 2);
    m.egress('f.example', 'deny', 'GW_EGRESS_DENIED', 0, 0);
    const s = await scrape(m.registry);
    assert.equal(s.get('portcullis_egress_attempts_total{destination="a.example",decision="allow",code="ok"}'), 2);
    assert.equal(s.get('portcullis_egress_attempts_total{destination="c.example",decision="allow",code="ok"}'), 1);
    assert.equal(s.get(`portcullis_egress_attempts_total{destination="${OTHER_DESTINATION}",decision="allow",code="ok"}`), 2);
    assert.equal(s.get(`portcullis_egress_attempts_total{destination="${OTHER_DESTINATION}",decision="deny",code="GW_EGRESS_DENIED"}`), 1);
    assert.equal(s.get('portcullis_egress_sent_bytes_total{destination="a.example"}'), 2);
    assert.equal(s.get(`portcullis_egress_received_bytes_total{destination="${OTHER_DESTINATION}"}`), 4);
    assert.equal([...s.keys()].filter((k) => k.startsWith('portcullis_egress_attempts_total{')).length, 5);
  });

  test('no portcullis_redis_up until Redis is configured (its first state), so "Redis down" cannot fire without Redis', async () => {
    const m = createMetrics();
    assert.equal((await scrape(m.registry)).get('portcullis_redis_up'), undefined);
    m.redisUp(false);
    assert.equal((await scrape(m.registry)).get('portcullis_redis_up'), 0);
  });

  test('build info, TLS handshake failures and open connections', async () => {
    const m = createMetrics();
    m.tlsHandshakeFailure('edge', 'not_tls');
    m.tlsHandshakeFailure('edge', 'not_tls');
    m.trackConnections('edge', { getConnections: (callback) => callback(null, 3) });
    const s = await scrape(m.registry);
    assert.equal(s.get(`portcullis_build_info{version="${PORTCULLIS_VERSION}",node="${process.versions.node}"}`), 1);
    assert.match(PORTCULLIS_VERSION, /^\d+\.\d+\.\d+/);
    assert.equal(s.get('portcullis_tls_handshake_failures_total{listener="edge",reason="not_tls"}'), 2);
    assert.equal(s.get('portcullis_open_connections{listener="edge"}'), 3);
  });

  test('event-loop delay (perf_hooks.monitorEventLoopDelay) and every GC pause', async () => {
    const m = createMetrics();
    // A 60 ms synchronous block delays the monitor's timer by about that much.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const until = performance.now() + 60;
    while (performance.now() < until);
    await new Promise((resolve) => setTimeout(resolve, 30));
    // Enough short-lived garbage for several scavenges.
    for (let round = 0; round < 5; round++) {
      let keep: object[] | undefined = [];
      for (let i = 0; i < 200_000; i++) keep.push({ i });
      keep = undefined;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    const s = await scrape(m.registry);
    assert.ok(s.get('nodejs_eventloop_lag_max_seconds')! >= 0.05, `max delay ${s.get('nodejs_eventloop_lag_max_seconds')}`);
    assert.ok(s.has('nodejs_eventloop_lag_p99_seconds') && s.has('nodejs_eventloop_lag_p50_seconds'));
    assert.ok(s.get('nodejs_gc_duration_seconds_count{kind="minor"}')! >= 1, 'scavenges counted');
    // promtool refuses gauges named *_total; their per-type twins stay.
    for (const gone of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      assert.ok(![...s.keys()].some((k) => k.startsWith(gone)), gone);
    }
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
