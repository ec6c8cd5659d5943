// The life of a request between client and upstream under abuse (issue #10): clients that leave, stall,
// stop reading or reset streams; upstreams that hang or die mid-answer. Real gateway, real sockets, real
// upstreams that record what reached them. An error escaping a handler fails the file (node:test reports
// uncaught exceptions), so "the process is alive" is checked by the test still running.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { startLifecycleUpstream, type LifecycleUpstream, type RequestRecord } from '../../helpers/lifecycle-upstream.js';

const run = promisify(execFile);

const TIMEOUTS = { requestMs: 2_000, bodyIdleMs: 500, writeIdleMs: 500 };

describe('request lifecycle', () => {
  let gw: TestIngress;
  let life: LifecycleUpstream;
  let lifeH2: LifecycleUpstream;
  let other: LifecycleUpstream;

  before(async () => {
    [life, lifeH2, other] = await Promise.all([startLifecycleUpstream(), startLifecycleUpstream('h2'), startLifecycleUpstream()]);
    gw = await startTestIngress((config) => {
      config.listeners[0].timeouts = TIMEOUTS;
      config.listeners[0].limits = { maxConcurrentStreams: 64, maxStreamResetsPerSecond: 50 };
      config.upstreams.push(
        { name: 'life', url: life.url, connections: 2, maxPendingRequests: 2, timeoutMs: 1_500 },
        { name: 'life-h2', url: lifeH2.url, protocol: 'h2', connections: 8, timeoutMs: 60_000 },
        { name: 'other', url: other.url },
      );
      config.routes.push(
        { name: 'life', match: { path: { prefix: '/life' } }, upstream: 'life' },
        // The same upstream with a longer timeout, for requests that must hold its connections.
        { name: 'life-long', match: { path: { prefix: '/long' } }, upstream: 'life', timeoutMs: 60_000 },
        { name: 'life-h2', match: { path: { prefix: '/h2' } }, upstream: 'life-h2' },
        { name: 'other', match: { path: { prefix: '/other' } }, upstream: 'other' },
      );
      config.policies.push({ name: 'lifecycle', action: 'ALLOW', routes: ['life', 'life-long', 'life-h2', 'other'], rules: [{}] });
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([life.close(), lifeH2.close(), other.close()]);
  });

  const connect = () =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: gw.port, ca: gw.caPem, servername: 'localhost' }, () => resolve(socket));
      socket.once('error', reject);
    });
  const h2 = () => http2.connect(`https://localhost:${gw.port}`, { ca: gw.caPem, host: '127.0.0.1' } as http2.SecureClientSessionOptions);
  const lastLog = (path: string) => gw.logs.filter((l) => l.event === 'REQUEST' && l.path === path).at(-1);
  const waitFor = async (check: () => boolean, ms = 3_000) => {
    const until = performance.now() + ms;
    while (!check()) {
      if (performance.now() > until) throw new Error('condition not reached in time');
      await sleep(10);
    }
  };
  /** Occupies both of the `life` upstream's connections with requests that never get an answer. */
  const occupyPool = async () => {
    const sockets = await Promise.all([connect(), connect()]);
    for (const s of sockets) s.write('GET /long/hang HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await waitFor(() => life.open >= 2);
    return () => sockets.forEach((s) => s.destroy());
  };

  it('survives 100 clients that send part of a body and leave while the upstream pool is busy', async () => {
    const release = await occupyPool();
    const before = life.requests.length;
    for (let i = 0; i < 100; i++) {
      const s = await connect();
      // Half small bodies (read whole before dispatch), half large ones (streamed, so they queue for the pool).
      const length = i % 2 === 0 ? 1_000 : 900_000;
      s.write(`POST /life/echo-body HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${length}\r\n\r\n`);
      s.write(Buffer.alloc(i % 2 === 0 ? 10 : 100_000, 'a'));
      await sleep(2);
      s.destroy();
    }
    const answer = await request(gw.port, gw.caPem, { path: '/other/fast' });
    assert.equal(answer.status, 200);
    release();
    await waitFor(() => life.open === 0);
    // None of the abandoned bodies reached the upstream: small ones were never complete, large ones were
    // cancelled while they waited for a connection.
    assert.equal(life.requests.slice(before).filter((r) => r.path === '/echo-body').length, 0, JSON.stringify(gw.logs.filter((l) => l.path === '/life/echo-body' && l.code !== 'GW_CLIENT_CANCELLED')));
  });

  it('answers 503 at once when the upstream pool and its bounded queue are full', async () => {
    const release = await occupyPool();
    const waiting = [request(gw.port, gw.caPem, { path: '/life/fast' }), request(gw.port, gw.caPem, { path: '/life/fast' })];
    await sleep(100);
    const started = performance.now();
    const refused = await request(gw.port, gw.caPem, { path: '/life/fast' });
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json().code, 'GW_UPSTREAM_OVERLOADED');
    assert.ok(performance.now() - started < 500);
    release();
    for (const answer of await Promise.all(waiting)) assert.ok([200, 504].includes(answer.status));
  });

  it("gives the upstream's timeoutMs (504), not the default 30 s", async () => {
    const started = performance.now();
    const answer = await request(gw.port, gw.caPem, { path: '/life/hang' });
    const elapsed = performance.now() - started;
    assert.equal(answer.status, 504, answer.text);
    assert.ok(elapsed >= 1_400 && elapsed < 2_500, `504 after ${Math.round(elapsed)} ms`);
  });

  it('cancels the upstream request within 100 ms when an HTTP/1.1 client closes', async () => {
    const s = await connect();
    s.write('GET /life/slow?ms=10000 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const record = await newRequest(life, '/slow');
    await sleep(100);
    const closed = performance.now();
    s.destroy();
    await waitFor(() => record.ended !== undefined);
    const lag = record.ended! - closed;
    console.log(`# HTTP/1.1 close → upstream cancelled after ${lag.toFixed(1)} ms`);
    assert.ok(record.cancelled);
    assert.ok(lag < 100, `upstream saw the cancel after ${lag} ms`);
    await waitFor(() => lastLog('/life/slow')?.code === 'GW_CLIENT_CANCELLED');
    assert.equal(lastLog('/life/slow')!.status, 499);
  });

  it('cancels the upstream request within 100 ms when an HTTP/2 client resets its stream', async () => {
    const client = h2();
    const stream = client.request({ ':path': '/life/slow?ms=10000' });
    stream.on('error', () => {});
    const record = await newRequest(life, '/slow');
    const reset = performance.now();
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => record.ended !== undefined);
    console.log(`# HTTP/2 RST_STREAM → upstream cancelled after ${(record.ended! - reset).toFixed(1)} ms`);
    assert.ok(record.cancelled);
    assert.ok(record.ended! - reset < 100);
    client.close();
  });

  it('passes a cancelled h2 (gRPC-style) stream on to the upstream as a cancelled stream', async () => {
    const client = h2();
    const stream = client.request({ ':path': '/h2/hang', ':method': 'POST', 'content-type': 'application/grpc' });
    stream.on('error', () => {});
    stream.write(Buffer.from([0, 0, 0, 0, 0]));
    const record = await newRequest(lifeH2, '/hang');
    const reset = performance.now();
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => record.ended !== undefined);
    assert.ok(record.cancelled);
    assert.ok(record.ended! - reset < 100);
    client.close();
  });

  it('answers 408 when a body stops arriving, and the upstream never sees the request', async () => {
    const before = life.requests.length;
    const s = await connect();
    s.write('POST /life/echo-body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly ten b');
    const started = performance.now();
    const answer = await readAll(s);
    const elapsed = performance.now() - started;
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.match(answer, /"reason":"body_idle"/);
    assert.match(answer, /connection: close/i);
    assert.ok(elapsed >= 450 && elapsed < 1_500, `408 after ${Math.round(elapsed)} ms`);
    assert.equal(life.requests.length, before);
  });

  it('answers 408 when a body trickles in past the request deadline', async () => {
    const s = await connect();
    s.write('POST /life/echo-body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n');
    const drip = setInterval(() => s.writable && s.write('x'), 100);
    const answer = await readAll(s);
    clearInterval(drip);
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.match(answer, /"reason":"request_deadline"/);
  });

  it('cuts a client that stops reading after writeIdleMs and releases the upstream', async () => {
    const s = await connect();
    s.pause();
    s.write('GET /life/big?bytes=50000000 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const record = await newRequest(life, '/big');
    await waitFor(() => record.ended !== undefined, 5_000);
    assert.ok(record.cancelled);
    await waitFor(() => lastLog('/life/big')?.reason === 'write_timeout');
    s.destroy();
  });

  it('signals an upstream that dies mid-answer as an error: HTTP/1.1 closes before the last chunk', async () => {
    const result = await run('curl', ['-sS', '--cacert', `${gw.dir}/ca.pem`, '--resolve', `localhost:${gw.port}:127.0.0.1`, '--http1.1', `https://localhost:${gw.port}/life/die`]).then(
      () => 0,
      (err: { code: number }) => err.code,
    );
    assert.equal(result, 18, 'curl reports a partial transfer (exit 18), not success');
    await waitFor(() => lastLog('/life/die')?.code === 'GW_UPSTREAM_TRUNCATED');
  });

  it('signals an upstream that dies mid-answer as an error: HTTP/2 resets the stream with INTERNAL_ERROR', async () => {
    const client = h2();
    const stream = client.request({ ':path': '/life/die' });
    stream.on('data', () => {});
    stream.on('error', () => {});
    await new Promise((resolve) => stream.once('close', resolve));
    assert.equal(stream.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
    client.close();
  });

  it('sends GOAWAY to a connection that resets streams faster than allowed (Rapid Reset)', async () => {
    const client = h2();
    client.on('error', () => {});
    let goaway: number | undefined;
    client.once('goaway', (code: number) => (goaway = code));
    const before = other.requests.length;
    let opened = 0;
    // Bursts of streams opened and reset at once, until the gateway has had enough (at most 2,000).
    while (goaway === undefined && !client.destroyed && opened < 2_000) {
      for (let i = 0; i < 100 && !client.destroyed; i++, opened++) {
        const stream = client.request({ ':path': '/other/slow?ms=2000' });
        stream.on('error', () => {});
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
      await sleep(20);
    }
    await waitFor(() => goaway !== undefined);
    assert.equal(goaway, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    await sleep(100);
    const reached = other.requests.length - before;
    console.log(`# Rapid Reset: ${opened} streams opened and reset before GOAWAY, ${reached} reached the upstream`);
    assert.ok(reached < opened);
    assert.equal(other.open, 0, 'every upstream request of a reset stream was cancelled');
    assert.equal((await request(gw.port, gw.caPem, { path: '/other/fast' })).status, 200);
  });
});

/** The next request the upstream sees for `path`. */
async function newRequest(upstream: LifecycleUpstream, path: string): Promise<RequestRecord> {
  const seen = upstream.requests.length;
  const until = performance.now() + 3_000;
  for (;;) {
    const found = upstream.requests.slice(seen).find((r) => r.path === path);
    if (found) return found;
    if (performance.now() > until) throw new Error(`upstream never saw ${path}`);
    await sleep(5);
  }
}

function readAll(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.once('close', () => resolve(text));
  });
}
