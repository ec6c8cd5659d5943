// The admin plane's /metrics of a real gateway after a scripted mix of ingress and egress traffic over three
// upstreams (a TLS echo, a plain HTTP server, a closed port): every count is exactly what the mix did, and `promtool check metrics` (Debian's prometheus package) accepts the page with no
// warning.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { createAdminServer, type AdminServer } from '../../../gateway/admin/server.js';
import { PORTCULLIS_VERSION } from '../../../gateway/core/process-metrics.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { assertPromtoolAccepts } from '../../helpers/promtool.js';

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One absolute-form request through the egress proxy; resolves with the status. */
function viaEgress(proxyPort: number, authority: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, path: `http://${authority}/x`, headers: { host: authority }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Bytes that are not TLS on the edge port; resolves when the gateway has closed the connection. */
function notTls(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\n\r\n'));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

/** A TLS 1.2 client offering only a cipher the gateway does not (CBC, no forward secrecy): the handshake fails. */
function weakCipherHandshake(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA', rejectUnauthorized: false });
    socket.on('error', () => resolve());
    socket.on('secureConnect', () => {
      socket.destroy();
      resolve();
    });
  });
}

/** Prometheus text → `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const split = line.lastIndexOf(' ');
    out.set(line.slice(0, split), Number(line.slice(split + 1)));
  }
  return out;
}

/** The samples of one metric family. */
function family(s: Map<string, number>, name: string): Map<string, number> {
  return new Map([...s].filter(([k]) => k.startsWith(`${name}{`)));
}

describe('metrics of a real gateway after a scripted mix', () => {
  let gw: TestIngress;
  let admin: AdminServer;
  let adminPort: number;
  let plain: http.Server;
  let page: string;

  before(async () => {
    plain = http
      .createServer((req, res) => {
        res.statusCode = req.url?.includes('missing') ? 404 : 200;
        res.end('hello from upstream');
      })
      .listen(0, '127.0.0.1');
    await new Promise((resolve) => plain.once('listening', resolve));
    const plainPort = (plain.address() as net.AddressInfo).port;
    const deadPort = await closedPort();
    gw = await startTestIngress((config) => {
      config.upstreams.push({ name: 'dead', url: `https://127.0.0.1:${deadPort}`, tls: { spiffeId: config.upstreams[0].tls.spiffeId } });
      config.routes.push({ name: 'broken', match: { path: { prefix: '/broken' } }, upstream: 'dead' });
      config.policies.push({ name: 'broken', action: 'ALLOW', routes: ['broken'], rules: [{}] });
      config.upstreams.push({ name: 'plain', url: `http://127.0.0.1:${plainPort}` });
      config.routes.push({ name: 'plain', match: { path: { prefix: '/plain' } }, upstream: 'plain' });
      config.policies.push({ name: 'plain', action: 'ALLOW', routes: ['plain'], rules: [{}] });
      config.egress = {
        listener: { address: '127.0.0.1', port: 0 },
        allow: [{ name: 'mix', identities: ['anonymous'], hosts: ['allowed.test', 'dead.test'], ports: [plainPort, deadPort] }],
        staticHosts: [
          { host: 'allowed.test', addresses: ['127.0.0.1'] },
          { host: 'dead.test', addresses: ['127.0.0.1'] },
        ],
        addressGuard: { allowAddresses: ['127.0.0.1'] },
      };
    });
    admin = createAdminServer(
      { port: 0 },
      { logger: gw.logger, registry: gw.gateway.metrics.registry, ready: () => gw.gateway.ready(), reload: async () => ({ ok: true }), config: () => ({}) },
    );
    ({ port: adminPort } = await admin.listen());

    const token = await gw.jwks.sign({ sub: 'alice' });
    const [head, payload, signature] = token.split('.') as [string, string, string];
    const tampered = `${head}.${payload}.${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    const statuses = [
      (await request(gw.port, gw.caPem, { path: '/public/a' })).status,
      (await request(gw.port, gw.caPem, { path: '/public/b' })).status,
      (await request(gw.port, gw.caPem, { path: '/api/orders', headers: { authorization: `Bearer ${token}` } })).status,
      (await request(gw.port, gw.caPem, { path: '/api/orders' })).status,
      (await request(gw.port, gw.caPem, { path: '/admin/users', headers: { authorization: `Bearer ${token}` } })).status,
      (await request(gw.port, gw.caPem, { path: '/api/orders', headers: { authorization: `Bearer ${tampered}` } })).status,
      (await request(gw.port, gw.caPem, { path: '/broken/x' })).status,
      (await request(gw.port, gw.caPem, { path: '/plain/a', method: 'POST', body: 'twelve bytes' })).status,
      (await request(gw.port, gw.caPem, { path: '/plain/missing' })).status,
    ];
    assert.deepEqual(statuses, [200, 200, 200, 403, 403, 401, 502, 200, 404]);
    await notTls(gw.port);
    await weakCipherHandshake(gw.port);
    const egressPort = gw.gateway.ports.get('egress')!;
    assert.deepEqual(
      [await viaEgress(egressPort, `allowed.test:${plainPort}`), await viaEgress(egressPort, 'denied.test:80'), await viaEgress(egressPort, `dead.test:${deadPort}`)],
      [200, 407, 502],
    );
    page = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  });

  after(async () => {
    await admin.close();
    await gw.close();
    await new Promise((resolve) => plain.close(resolve));
  });

  test('ingress: requests, JWT failures with their provider, authz decisions with policy and reason', () => {
    const s = samples(page);
    assert.deepEqual(
      family(s, 'portcullis_requests_total'),
      new Map([
        ['portcullis_requests_total{route="public",status="200",code="ok"}', 2],
        ['portcullis_requests_total{route="api",status="200",code="ok"}', 1],
        ['portcullis_requests_total{route="api",status="403",code="GW_AUTHZ_DENIED"}', 1],
        ['portcullis_requests_total{route="admin",status="403",code="GW_AUTHZ_DENIED"}', 1],
        ['portcullis_requests_total{route="api",status="401",code="GW_AUTHN_INVALID_TOKEN"}', 1],
        ['portcullis_requests_total{route="broken",status="502",code="GW_UPSTREAM_UNAVAILABLE"}', 1],
        ['portcullis_requests_total{route="plain",status="200",code="ok"}', 1],
        ['portcullis_requests_total{route="plain",status="404",code="ok"}', 1],
      ]),
    );
    assert.deepEqual(family(s, 'portcullis_jwt_failures_total'), new Map([['portcullis_jwt_failures_total{provider="test",reason="signature_invalid"}', 1]]));
    assert.deepEqual(
      family(s, 'portcullis_authz_decisions_total'),
      new Map([
        ['portcullis_authz_decisions_total{policy="public",decision="allow",reason="allowed_by_policy"}', 2],
        ['portcullis_authz_decisions_total{policy="api",decision="allow",reason="allowed_by_policy"}', 1],
        ['portcullis_authz_decisions_total{policy="",decision="deny",reason="no_allow_policy_matched"}', 1],
        ['portcullis_authz_decisions_total{policy="admin-deny",decision="deny",reason="denied_by_policy"}', 1],
        ['portcullis_authz_decisions_total{policy="broken",decision="allow",reason="allowed_by_policy"}', 1],
        ['portcullis_authz_decisions_total{policy="plain",decision="allow",reason="allowed_by_policy"}', 2],
      ]),
    );
    assert.equal(s.get('portcullis_request_duration_seconds_count{route="public",status_class="2xx"}'), 2);
    assert.equal(s.get('portcullis_request_duration_seconds_bucket{le="60",route="public",status_class="2xx"}'), 2);
    assert.equal(s.get('portcullis_request_duration_seconds_count{route="api",status_class="4xx"}'), 2);
    assert.ok(s.get('portcullis_response_bytes_total{route="public"}')! > 0);
    assert.deepEqual(
      family(s, 'portcullis_tls_handshake_failures_total'),
      new Map([
        ['portcullis_tls_handshake_failures_total{listener="edge",reason="not_tls"}', 1],
        ['portcullis_tls_handshake_failures_total{listener="edge",reason="no_shared_cipher"}', 1],
      ]),
    );
    assert.ok(s.has('portcullis_open_connections{listener="edge"}'));
  });

  test('per upstream: requests sent to each, with the status and code the client got, their latency and bytes', () => {
    const s = samples(page);
    // Refused before the upstream (403, 401): not sent, not counted here; the route series counts them.
    assert.deepEqual(
      family(s, 'portcullis_upstream_requests_total'),
      new Map([
        ['portcullis_upstream_requests_total{upstream="echo",status="200",code="ok"}', 3],
        ['portcullis_upstream_requests_total{upstream="dead",status="502",code="GW_UPSTREAM_UNAVAILABLE"}', 1],
        ['portcullis_upstream_requests_total{upstream="plain",status="200",code="ok"}', 1],
        ['portcullis_upstream_requests_total{upstream="plain",status="404",code="ok"}', 1],
      ]),
    );
    for (const [upstream, cls, n] of [['echo', '2xx', 3], ['dead', '5xx', 1], ['plain', '2xx', 1], ['plain', '4xx', 1]] as const) {
      const labels = `upstream="${upstream}",status_class="${cls}"`;
      assert.equal(s.get(`portcullis_upstream_request_duration_seconds_count{${labels}}`), n, labels);
      assert.equal(s.get(`portcullis_upstream_request_duration_seconds_bucket{le="+Inf",${labels}}`), n, labels);
      assert.equal(s.get(`portcullis_upstream_request_duration_seconds_bucket{le="60",${labels}}`), n, labels);
    }
    // The upstream's share of a request is never longer than the whole of it.
    const sum = (name: string, label: string) => [...s].filter(([k]) => k.startsWith(`${name}_sum{${label}`)).reduce((t, [, v]) => t + v, 0);
    assert.ok(sum('portcullis_upstream_request_duration_seconds', 'upstream="plain"') <= sum('portcullis_request_duration_seconds', 'route="plain"'));
    assert.equal(s.get('portcullis_upstream_sent_bytes_total{upstream="plain"}'), 'twelve bytes'.length);
    assert.equal(s.get('portcullis_upstream_received_bytes_total{upstream="plain"}'), 2 * 'hello from upstream'.length);
    assert.equal(s.get('portcullis_upstream_received_bytes_total{upstream="dead"}'), 0);
  });

  test('egress: an allowed attempt whose upstream failed is an allow with its code, in the metric and the audit line', () => {
    const s = samples(page);
    assert.deepEqual(
      family(s, 'portcullis_egress_attempts_total'),
      new Map([
        ['portcullis_egress_attempts_total{destination="allowed.test",decision="allow",code="ok"}', 1],
        ['portcullis_egress_attempts_total{destination="denied.test",decision="deny",code="GW_EGRESS_NO_IDENTITY"}', 1],
        ['portcullis_egress_attempts_total{destination="dead.test",decision="allow",code="GW_UPSTREAM_UNAVAILABLE"}', 1],
      ]),
    );
    assert.ok(s.get('portcullis_egress_received_bytes_total{destination="allowed.test"}')! > 0);
    const audit = gw.logs.filter((l) => l.event === 'EGRESS_DECISION').map((l) => [l.host, l.allow, l.code]);
    assert.deepEqual(audit, [
      ['allowed.test', true, undefined],
      ['denied.test', false, 'GW_EGRESS_NO_IDENTITY'],
      ['dead.test', true, 'GW_UPSTREAM_UNAVAILABLE'],
    ]);
  });

  test('no Redis, no portcullis_redis_up; certificate expiry is a timestamp; build info names the versions', () => {
    const s = samples(page);
    assert.ok(![...s.keys()].some((k) => k.startsWith('portcullis_redis_up')));
    assert.ok(s.get('portcullis_certificate_expiry_timestamp_seconds{name="mesh-svid"}')! > Date.now() / 1000);
    assert.equal(s.get(`portcullis_build_info{version="${PORTCULLIS_VERSION}",node="${process.versions.node}"}`), 1);
  });

  test('promtool check metrics: no error, no warning', (t) => assertPromtoolAccepts(t, page));
});
