// The request lifecycle under sustained abuse, with a normal client measured alongside (issue #10's figures):
// a 10-second HTTP/2 Rapid Reset attack, 70 clients that stop reading their answers, and 70 request bodies that
// never arrive over HTTP/1.1 and over one HTTP/2 connection. The assertions hold on a loaded 2-core machine;
// the latencies are printed for the record (`# ...` lines).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { startLifecycleUpstream, type LifecycleUpstream } from '../../helpers/lifecycle-upstream.js';

const UPSTREAM_CONNECTIONS = 64;
const ATTACK_MS = 10_000;
const ATTACKER = new URL('../../helpers/rapid-reset-attacker.ts', import.meta.url).pathname;

describe('request lifecycle under sustained abuse', () => {
  let gw: TestIngress;
  let upstream: LifecycleUpstream;
  let agent: https.Agent;

  before(async () => {
    upstream = await startLifecycleUpstream();
    gw = await startTestIngress((config) => {
      config.listeners[0].timeouts = { requestMs: 5_000, bodyIdleMs: 1_000, writeIdleMs: 500 };
      config.upstreams.push({ name: 'life', url: upstream.url, connections: UPSTREAM_CONNECTIONS, maxPendingRequests: 256 });
      config.routes.push({ name: 'life', match: { path: { prefix: '/life' } }, upstream: 'life' });
      config.policies.push({ name: 'lifecycle', action: 'ALLOW', routes: ['life'], rules: [{}] });
    }, { logLevel: 'warn' });
    agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: gw.caPem, servername: 'localhost' });
  });
  after(async () => {
    agent.destroy();
    await gw.close();
    await upstream.close();
  });

  /** A normal client's sequential requests for `ms`: every status and each latency. */
  const normalClient = async (ms: number) => {
    const latencies: number[] = [];
    const statuses = new Map<number, number>();
    const until = performance.now() + ms;
    while (performance.now() < until) {
      const started = performance.now();
      const status = await new Promise<number>((resolve) => {
        const req = https.get({ host: '127.0.0.1', port: gw.port, path: '/life/fast', agent, headers: { host: 'localhost' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', () => resolve(0));
      });
      latencies.push(performance.now() - started);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    return { count: latencies.length, p50: at(0.5), p99: at(0.99), max: latencies.at(-1)!, statuses };
  };
  const connect = () =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: gw.port, ca: gw.caPem, servername: 'localhost' }, () => resolve(socket));
      socket.once('error', reject);
    });

  it('a 10-second Rapid Reset attack: upstream concurrency stays bounded and normal requests succeed', async () => {
    const baseline = await normalClient(2_000);
    const before = upstream.requests.length;
    const attacker = spawn(process.execPath, ['--import', 'tsx', ATTACKER, String(gw.port), `${gw.dir}/ca.pem`, String(ATTACK_MS), '/life/slow?ms=1000'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let report = '';
    attacker.stdout.on('data', (c: Buffer) => (report += c));
    const attackDone = new Promise((resolve) => attacker.once('exit', resolve));
    await sleep(200);
    const during = await normalClient(ATTACK_MS - 400);
    await attackDone;
    const { streams, connections } = JSON.parse(report) as { streams: number; connections: number };
    const sentAway = gw.logs.filter((l) => l.event === 'HTTP2_ABUSE').length;
    const reached = upstream.requests.length - before;
    console.log(
      `# Rapid Reset, 10 s: ${streams} streams reset on ${connections} connections (${sentAway} sent away with GOAWAY); ${reached} reached the upstream, ` +
        `at most ${upstream.peakOpen} open at once (pool ${UPSTREAM_CONNECTIONS}); normal client p50/p99/max ` +
        `${baseline.p50.toFixed(1)}/${baseline.p99.toFixed(1)}/${baseline.max.toFixed(1)} ms before, ` +
        `${during.p50.toFixed(1)}/${during.p99.toFixed(1)}/${during.max.toFixed(1)} ms during (${during.count} requests, statuses ${JSON.stringify([...during.statuses])})`,
    );
    assert.ok(upstream.peakOpen <= UPSTREAM_CONNECTIONS + 2, `peak ${upstream.peakOpen} upstream requests at once`);
    assert.deepEqual([...during.statuses.keys()], [200]);
    assert.ok(sentAway > 0, 'attacking connections were sent away (GOAWAY)');
    await sleep(1_200);
    assert.equal(upstream.open, 0, 'nothing of the attack is left running upstream');
  });

  // A paused client is only seen as stalled once the kernel's socket buffers are full (megabytes on loopback), so
  // the pool is held for that plus writeIdleMs; the bound is on that, not on writeIdleMs alone.
  it('70 clients that stop reading are cut at writeIdleMs; the upstream pool comes back', async () => {
    const readers = await Promise.all(Array.from({ length: 70 }, () => connect()));
    for (const s of readers) {
      s.pause();
      s.write('GET /life/big?bytes=20000000 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    }
    const started = performance.now();
    const normal = await normalClient(3_000);
    console.log(
      `# 70 slow readers (writeIdleMs 500, pool ${UPSTREAM_CONNECTIONS}): normal client p50/p99/max ` +
        `${normal.p50.toFixed(1)}/${normal.p99.toFixed(1)}/${normal.max.toFixed(1)} ms over ${Math.round(performance.now() - started)} ms, statuses ${JSON.stringify([...normal.statuses])}`,
    );
    assert.deepEqual([...normal.statuses.keys()], [200]);
    assert.ok(normal.max < 8_000, `a normal request waited ${Math.round(normal.max)} ms`);
    for (let i = 0; upstream.open > 0 && i < 100; i++) await sleep(50);
    assert.equal(upstream.open, 0, 'every slow reader was cut and its upstream request released');
    for (const s of readers) s.destroy();
  });

  it('70 request bodies that never arrive hold no upstream connection (HTTP/1.1 and one HTTP/2 connection)', async () => {
    const before = upstream.requests.length;
    const stalled = await Promise.all(Array.from({ length: 70 }, () => connect()));
    for (const s of stalled) s.write('POST /life/echo-body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nten bytes.');
    const session = http2.connect(`https://localhost:${gw.port}`, { ca: gw.caPem, host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    session.on('error', () => {});
    const streams = Array.from({ length: 70 }, () => {
      const stream = session.request({ ':path': '/life/echo-body', ':method': 'POST', 'content-length': '1000' });
      stream.on('error', () => {});
      stream.write('ten bytes.');
      return new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
    });
    const normal = await normalClient(2_000);
    const answers = await Promise.all(streams);
    console.log(
      `# 70 stalled HTTP/1.1 bodies + 70 on one HTTP/2 connection: normal client p50/p99/max ` +
        `${normal.p50.toFixed(1)}/${normal.p99.toFixed(1)}/${normal.max.toFixed(1)} ms; HTTP/2 streams answered ${JSON.stringify([...new Set(answers)])}`,
    );
    assert.ok(normal.p99 < 1_000, `normal requests p99 ${Math.round(normal.p99)} ms`);
    assert.deepEqual([...new Set(answers)], [408]);
    assert.equal(upstream.requests.slice(before).filter((r) => r.path === '/echo-body').length, 0);
    for (const s of stalled) s.destroy();
    session.destroy();
  });
});
