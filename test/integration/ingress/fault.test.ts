// Fault injection through a real gateway: aborts never reach the upstream and carry the route's status (HTTP and
// gRPC), a fractional share lands near its percentage, delays are measured and end when the client leaves or the
// route's timeout runs out, and a request a policy refuses is never touched.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';

describe('fault injection', () => {
  let gw: TestIngress;
  let client: Pool;

  before(async () => {
    gw = await startTestIngress((config) => {
      const fault = (name: string, fault: object, extra: object = {}) => ({ name, match: { path: { prefix: `/${name}` } }, upstream: 'echo', fault, ...extra });
      config.routes.unshift(
        fault('abort-all', { abort: { percent: 100, httpStatus: 503 } }),
        fault('abort-half', { abort: { percent: 50, httpStatus: 502 } }),
        fault('abort-grpc', { abort: { percent: 100, httpStatus: 503, grpcStatus: 'RESOURCE_EXHAUSTED' } }),
        fault('delay', { delay: { percent: 100, fixedDelayMs: 300 } }),
        fault('delay-past-timeout', { delay: { percent: 100, fixedDelayMs: 60_000 } }, { timeoutMs: 200 }),
        fault('delay-abort', { delay: { percent: 100, fixedDelayMs: 50 }, abort: { percent: 100, httpStatus: 500 } }),
        fault('never', { delay: { percent: 0, fixedDelayMs: 60_000 }, abort: { percent: 0, httpStatus: 500 } }),
        fault('denied', { abort: { percent: 100, httpStatus: 503 } }),
      );
      const open = ['abort-all', 'abort-half', 'abort-grpc', 'delay', 'delay-past-timeout', 'delay-abort', 'never'];
      config.policies.push({ name: 'faults', action: 'ALLOW', routes: open, rules: [{}] });
    });
    client = new Pool(`https://127.0.0.1:${gw.port}`, { connections: 8, connect: { ca: gw.caPem, servername: 'localhost' } });
  });
  after(async () => {
    await client.close();
    await gw.close();
  });

  const get = async (path: string, signal?: AbortSignal) => {
    const res = await client.request({ path, method: 'GET', headers: { host: 'localhost' }, ...(signal ? { signal } : {}) });
    return { status: res.statusCode, body: await res.body.text() };
  };
  const lineOf = (requestId: string) => gw.logs.find((l) => l.requestId === requestId);
  const lineFor = (path: string) => gw.logs.find((l) => l.path === path);

  it('a 100 % abort answers the route\'s status with GW_FAULT_INJECTED, never reaches the upstream, and is marked in the access log', async () => {
    const hits = gw.upstream.hits;
    for (let i = 0; i < 5; i++) {
      const reply = await get('/abort-all/x');
      assert.equal(reply.status, 503);
      const body = JSON.parse(reply.body) as { code: string; reason: string; requestId: string };
      assert.equal(body.code, 'GW_FAULT_INJECTED');
      assert.equal(lineOf(body.requestId)?.fault, 'abort');
    }
    assert.equal(gw.upstream.hits, hits, 'no aborted request reached the upstream');
  });

  it('a 50 % abort lands within 35–65 % over 400 requests; the others are forwarded', async () => {
    const hits = gw.upstream.hits;
    const replies = await Promise.all(Array.from({ length: 400 }, () => get('/abort-half/x')));
    const aborted = replies.filter((r) => r.status === 502).length;
    const forwarded = replies.filter((r) => r.status === 200).length;
    console.log(`# fault abort at 50 %: ${aborted} of 400 aborted`);
    assert.equal(aborted + forwarded, 400);
    assert.ok(aborted >= 140 && aborted <= 260, `aborted ${aborted} of 400`);
    assert.equal(gw.upstream.hits - hits, forwarded);
  });

  it('a route whose percentages are 0 never delays or aborts', async () => {
    const started = performance.now();
    const reply = await get('/never/x');
    assert.equal(reply.status, 200);
    assert.ok(performance.now() - started < 30_000);
    assert.equal(lineFor('/never/x')?.status, 200);
    assert.equal(lineFor('/never/x')?.fault, undefined);
  });

  it('a delay holds the request that long before it is forwarded', async () => {
    const started = performance.now();
    const reply = await get('/delay/x');
    const took = performance.now() - started;
    console.log(`# fault delay of 300 ms: answered after ${Math.round(took)} ms`);
    assert.equal(reply.status, 200);
    assert.ok(took >= 290, `took ${Math.round(took)} ms`);
    assert.equal(lineFor('/delay/x')?.fault, 'delay');
  });

  it('a delay longer than the route timeout ends in 504 at the timeout, without reaching the upstream', async () => {
    const hits = gw.upstream.hits;
    const started = performance.now();
    const reply = await get('/delay-past-timeout/x');
    const took = performance.now() - started;
    assert.equal(reply.status, 504);
    assert.equal(JSON.parse(reply.body).reason, 'fault_delay');
    assert.ok(took >= 190 && took < 10_000, `took ${Math.round(took)} ms`);
    assert.equal(gw.upstream.hits, hits);
  });

  it('a client that leaves during a delay ends it: logged as cancelled, nothing forwarded', async () => {
    const hits = gw.upstream.hits;
    const before = gw.logs.length;
    await assert.rejects(get('/delay-past-timeout/cancelled', AbortSignal.timeout(50)));
    const deadline = performance.now() + 10_000;
    let line: Record<string, unknown> | undefined;
    while (!(line = gw.logs.slice(before).find((l) => l.path === '/delay-past-timeout/cancelled')) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(line?.code, 'GW_CLIENT_CANCELLED');
    assert.ok((line?.latencyMs as number) < 190, `ended after ${String(line?.latencyMs)} ms, not at the 200 ms timeout`);
    assert.equal(gw.upstream.hits, hits);
  });

  it('a delay and an abort both drawn: delayed, then aborted', async () => {
    const reply = await get('/delay-abort/x');
    assert.equal(reply.status, 500);
    assert.equal(lineOf(JSON.parse(reply.body).requestId)?.fault, 'delay+abort');
  });

  it('a request the policy refuses is refused, not faulted', async () => {
    const reply = await get('/denied/x');
    assert.equal(reply.status, 403);
    assert.equal(lineOf(JSON.parse(reply.body).requestId)?.fault, undefined);
  });

  it('gRPC: an abort is a trailers-only answer with the configured grpc-status', async () => {
    const session = http2.connect(`https://127.0.0.1:${gw.port}`, { ca: gw.caPem, servername: 'localhost' });
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/abort-grpc/pkg.Svc/M', 'content-type': 'application/grpc', te: 'trailers' });
      stream.end();
      const [headers, flags] = await new Promise<[http2.IncomingHttpHeaders, number]>((resolve) => stream.once('response', (h, f) => resolve([h, f])));
      assert.equal(headers[':status'], 200);
      assert.equal(headers['grpc-status'], '8');
      assert.equal(headers['grpc-message'], 'fault injected: abort');
      assert.ok(flags & http2.constants.NGHTTP2_FLAG_END_STREAM);
      stream.resume();
    } finally {
      session.close();
    }
  });
});
