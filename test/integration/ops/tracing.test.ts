// OpenTelemetry tracing end to end: real HTTPS clients, the real echo upstream, and a real OTLP/HTTP receiver that
// decodes what the gateway's exporter sends.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import { createTracing } from '../../../gateway/core/tracing.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../../helpers/otlp-receiver.js';
import { connectRequest, curl, localGrant, rawRequest, silentLogger, startHttpUpstream, startProxy, tempDir } from '../egress/harness.js';

// The batch processor exports every 20 ms here instead of every 5 s (the standard variable, read at start).
process.env.OTEL_BSP_SCHEDULE_DELAY = '20';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const SERVER = 2;

/** Each expected attribute, `undefined` meaning absent. */
function assertAttributes(span: ReceivedSpan, expected: Record<string, string | number | undefined>): void {
  for (const [key, value] of Object.entries(expected)) assert.equal(span.attributes[key], value, key);
}

function accessLines(gw: TestIngress): Record<string, unknown>[] {
  return gw.logs.filter((l) => l.event === 'REQUEST');
}

/**
 * Registers the suite's hooks: a receiver (a black hole with `respond: false`) and a gateway whose config gets
 * `tracing(receiverUrl)`, or no `tracing` section when it returns undefined.
 */
function tracedIngress(tracing: (url: string) => Record<string, unknown> | undefined, respond = true): { collector: OtlpReceiver; gw: TestIngress } {
  const ctx = {} as { collector: OtlpReceiver; gw: TestIngress };
  before(async () => {
    ctx.collector = await startOtlpReceiver({ respond });
    const section = tracing(ctx.collector.url);
    ctx.gw = await startTestIngress((config) => {
      if (section) config.tracing = section;
    });
  });
  after(async () => {
    await ctx.gw.close();
    await ctx.collector.close();
  });
  return ctx;
}

describe('tracing on: one server span per request, the gateway span as the upstream parent', () => {
  const ctx = tracedIngress((endpoint) => ({ enabled: true, endpoint, serviceName: 'edge-test' }));

  const spanOf = async (requestId: string): Promise<ReceivedSpan> => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const found = ctx.collector.spans.filter((s) => s.attributes['portcullis.request_id'] === requestId);
      if (found.length > 0) {
        assert.equal(found.length, 1, 'one span per request');
        return found[0]!;
      }
      if (Date.now() > deadline) throw new Error(`no span for request ${requestId}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  test('W3C traceparent: the span is its child, and the upstream sees the gateway span as parent', async () => {
    const traceId = hex(16);
    const clientSpan = hex(8);
    const r = await request(ctx.gw.port, ctx.gw.caPem, {
      path: '/public/hello?x=1',
      headers: { traceparent: `00-${traceId}-${clientSpan}-01`, tracestate: 'vendor=abc', 'x-request-id': 'trace-w3c', 'user-agent': 'tracing-test' },
    });
    assert.equal(r.status, 200);
    const span = await spanOf('trace-w3c');
    assert.equal(span.traceId, traceId);
    assert.equal(span.parentSpanId, clientSpan);
    assert.equal(span.kind, SERVER);
    assert.equal(span.name, 'GET');
    assert.equal(span.serviceName, 'edge-test');
    assert.deepEqual(span.events, ['authenticated', 'authorized', 'forwarding', 'upstream_response']);
    assert.equal(span.statusCode, 0);
    assertAttributes(span, {
      'http.request.method': 'GET',
      'url.path': '/public/hello',
      'url.scheme': 'https',
      'server.address': 'localhost',
      'http.response.status_code': 200,
      'network.protocol.version': '1.1',
      'client.address': '127.0.0.1',
      'user_agent.original': 'tracing-test',
      'portcullis.route': 'public',
      'portcullis.upstream': 'echo',
      'portcullis.decision': 'allow',
      'portcullis.policy': 'public',
      'portcullis.rule': 'rules[0]',
      'error.type': undefined,
    });
    // The upstream's parent is the gateway's span, not the client's; the client's trace state goes along.
    const upstream = r.json().headers;
    assert.equal(upstream.traceparent, `00-${traceId}-${span.spanId}-01`);
    assert.equal(upstream.tracestate, 'vendor=abc');
    assert.equal(upstream.b3, `${traceId}-${span.spanId}-1`);
    const line = accessLines(ctx.gw).find((l) => l.requestId === 'trace-w3c');
    assert.equal(line?.traceId, traceId);
  });

  test('B3 single header: accepted as the parent; the client span does not reach the upstream', async () => {
    const traceId = hex(16);
    const clientSpan = hex(8);
    const r = await request(ctx.gw.port, ctx.gw.caPem, { headers: { b3: `${traceId}-${clientSpan}-1`, 'x-request-id': 'trace-b3-single' } });
    const span = await spanOf('trace-b3-single');
    assert.equal(span.traceId, traceId);
    assert.equal(span.parentSpanId, clientSpan);
    const upstream = r.json().headers;
    assert.equal(upstream.traceparent, `00-${traceId}-${span.spanId}-01`);
    assert.equal(upstream.b3, `${traceId}-${span.spanId}-1`);
  });

  test('B3 multi header: accepted as the parent; the x-b3-* headers are replaced, not passed on', async () => {
    const traceId = hex(16);
    const clientSpan = hex(8);
    const r = await request(ctx.gw.port, ctx.gw.caPem, {
      headers: { 'x-b3-traceid': traceId, 'x-b3-spanid': clientSpan, 'x-b3-sampled': '1', 'x-request-id': 'trace-b3-multi' },
    });
    const span = await spanOf('trace-b3-multi');
    assert.equal(span.traceId, traceId);
    assert.equal(span.parentSpanId, clientSpan);
    const upstream = r.json().headers;
    assert.equal(upstream['x-b3-spanid'], undefined);
    assert.equal(upstream['x-b3-traceid'], undefined);
    assert.equal(upstream.traceparent, `00-${traceId}-${span.spanId}-01`);
  });

  test('no incoming context: a new root trace, in the span, the upstream header and the access line', async () => {
    const r = await request(ctx.gw.port, ctx.gw.caPem, { headers: { 'x-request-id': 'trace-root' } });
    const span = await spanOf('trace-root');
    assert.equal(span.parentSpanId, undefined);
    assert.match(span.traceId, /^[0-9a-f]{32}$/);
    assert.equal(r.json().headers.traceparent, `00-${span.traceId}-${span.spanId}-01`);
    assert.equal(accessLines(ctx.gw).find((l) => l.requestId === 'trace-root')?.traceId, span.traceId);
  });

  test('a malformed traceparent is ignored: a new trace, never the client value', async () => {
    const bad = `00-${'0'.repeat(32)}-${hex(8)}-01`;
    const r = await request(ctx.gw.port, ctx.gw.caPem, { headers: { traceparent: bad, 'x-request-id': 'trace-bad' } });
    const span = await spanOf('trace-bad');
    assert.equal(span.parentSpanId, undefined);
    assert.notEqual(r.json().headers.traceparent, bad);
  });

  test('a denial: decision, policy and rule, status and error code on the span; no later stage event', async () => {
    const traceId = hex(16);
    const r = await request(ctx.gw.port, ctx.gw.caPem, { path: '/admin/users', headers: { traceparent: `00-${traceId}-${hex(8)}-01`, 'x-request-id': 'trace-deny' } });
    assert.equal(r.status, 403);
    const span = await spanOf('trace-deny');
    assert.equal(span.traceId, traceId);
    assert.deepEqual(span.events, ['authenticated']);
    assert.equal(span.statusCode, 0, 'a 4xx is the client error, not the server span error');
    assertAttributes(span, {
      'http.response.status_code': 403,
      'error.type': 'GW_AUTHZ_DENIED',
      'portcullis.decision': 'deny',
      'portcullis.decision.reason': 'denied_by_policy',
      'portcullis.policy': 'admin-deny',
      'portcullis.rule': 'rules[0]',
    });
    assert.equal(accessLines(ctx.gw).find((l) => l.requestId === 'trace-deny')?.traceId, traceId);
  });

  test('HTTP/2: the same span and the same propagation', async () => {
    const traceId = hex(16);
    const session = http2.connect(`https://localhost:${ctx.gw.port}`, { ca: ctx.gw.caPem, host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    try {
      const stream = session.request({ ':path': '/public/h2', traceparent: `00-${traceId}-${hex(8)}-01`, 'x-request-id': 'trace-h2' });
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      const echoed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { headers: Record<string, string> };
      const span = await spanOf('trace-h2');
      assert.equal(span.traceId, traceId);
      assert.equal(span.attributes['network.protocol.version'], '2.0');
      assert.equal(echoed.headers.traceparent, `00-${traceId}-${span.spanId}-01`);
    } finally {
      session.close();
    }
  });

  test('a request refused before routing still has its span (404, no route)', async () => {
    const r = await request(ctx.gw.port, ctx.gw.caPem, { path: '/nowhere', headers: { 'x-request-id': 'trace-404' } });
    assert.equal(r.status, 404);
    const span = await spanOf('trace-404');
    assert.equal(span.attributes['error.type'], 'GW_ROUTE_NOT_FOUND');
    assert.equal(span.attributes['portcullis.route'], undefined);
  });
});

describe('sampling: parent-based ratio', () => {
  const ctx = tracedIngress((endpoint) => ({ enabled: true, endpoint, samplingRatio: 0 }));

  test('ratio 0: a new trace is not recorded, but it is still propagated (unsampled) and logged', async () => {
    const r = await request(ctx.gw.port, ctx.gw.caPem, { headers: { 'x-request-id': 'unsampled' } });
    const traceparent = r.json().headers.traceparent as string;
    assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    assert.equal(accessLines(ctx.gw).find((l) => l.requestId === 'unsampled')?.traceId, traceparent.split('-')[1]);
    // A sampled parent is followed whatever the ratio; its span arriving shows the unsampled one would have too.
    const traceId = hex(16);
    await request(ctx.gw.port, ctx.gw.caPem, { headers: { traceparent: `00-${traceId}-${hex(8)}-01`, 'x-request-id': 'sampled-parent' } });
    const spans = await ctx.collector.waitForSpans(1);
    assert.deepEqual(spans.map((s) => s.attributes['portcullis.request_id']), ['sampled-parent']);
    assert.equal(spans[0]!.traceId, traceId);
  });

  test('an unsampled parent is followed too: nothing recorded, flags 00 passed on', async () => {
    const traceId = hex(16);
    const r = await request(ctx.gw.port, ctx.gw.caPem, { headers: { traceparent: `00-${traceId}-${hex(8)}-00`, 'x-request-id': 'unsampled-parent' } });
    assert.match(r.json().headers.traceparent as string, new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(!ctx.collector.spans.some((s) => s.traceId === traceId));
  });
});

describe('sampling: a ratio between 0 and 1 applies to new traces', () => {
  const ctx = tracedIngress((endpoint) => ({ enabled: true, endpoint, samplingRatio: 0.5 }));

  test('ratio 0.5 over 200 new traces: about half recorded, every one propagated with its own ids in both formats', async () => {
    const sent = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      const r = await request(ctx.gw.port, ctx.gw.caPem, { headers: { 'x-request-id': `ratio-${i}` } });
      const headers = r.json().headers as Record<string, string>;
      const [, traceId, spanId, flags] = headers.traceparent!.split('-');
      assert.equal(headers.b3, `${traceId}-${spanId}-${flags === '01' ? '1' : '0'}`);
      sent.set(traceId!, flags!);
    }
    assert.equal(sent.size, 200, 'a new trace id per request');
    const sampled = [...sent.values()].filter((f) => f === '01').length;
    // Binomial(200, 0.5): outside 60..140 has a probability below 1e-8.
    assert.ok(sampled > 60 && sampled < 140, `${sampled} of 200 sampled`);
    const spans = await ctx.collector.waitForSpans(sampled);
    assert.deepEqual(new Set(spans.map((s) => s.traceId)), new Set([...sent].filter(([, f]) => f === '01').map(([id]) => id)));
  });
});

describe('an unreachable collector never slows requests', () => {
  const ctx = tracedIngress((endpoint) => ({ enabled: true, endpoint }), false);

  test('40 requests while every export hangs: each answered fast, the exports were attempted', async () => {
    const slowest = { ms: 0 };
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      const r = await request(ctx.gw.port, ctx.gw.caPem, { headers: { traceparent: `00-${hex(16)}-${hex(8)}-01` } });
      assert.equal(r.status, 200);
      slowest.ms = Math.max(slowest.ms, performance.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(ctx.collector.requests > 0, 'the exporter did try the collector');
    // A hanging export (its timeout is 10 s) is never waited for by a request.
    assert.ok(slowest.ms < 1_000, `slowest request ${slowest.ms} ms`);
  });
});

describe('tracing off (the default)', () => {
  const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  // OTEL_* variables configure tracing; they never turn it on.
  const ctx = tracedIngress((endpoint) => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint.replace('/v1/traces', '');
    return undefined;
  });
  after(() => {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
  });

  test('trace headers pass through unchanged, no trace id is logged, no span is exported', async () => {
    const traceparent = `00-${hex(16)}-${hex(8)}-01`;
    const b3 = `${hex(16)}-${hex(8)}-1`;
    const r = await request(ctx.gw.port, ctx.gw.caPem, { headers: { traceparent, tracestate: 'a=b', b3, 'x-request-id': 'off' } });
    const upstream = r.json().headers;
    assert.equal(upstream.traceparent, traceparent);
    assert.equal(upstream.tracestate, 'a=b');
    assert.equal(upstream.b3, b3);
    const line = accessLines(ctx.gw).find((l) => l.requestId === 'off');
    assert.ok(line && !('traceId' in line));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(ctx.collector.requests, 0);
    assert.equal(ctx.gw.gateway.runtime().tracing.enabled, false);
  });

  test('a reload that turns tracing on applies to the next request', async () => {
    await ctx.gw.gateway.reload({ ...ctx.gw.loaded.config, tracing: { enabled: true, endpoint: ctx.collector.url } });
    const traceId = hex(16);
    const r = await request(ctx.gw.port, ctx.gw.caPem, { headers: { traceparent: `00-${traceId}-${hex(8)}-01`, 'x-request-id': 'after-reload' } });
    const [span] = await ctx.collector.waitForSpans(1);
    assert.equal(span!.attributes['portcullis.request_id'], 'after-reload');
    assert.equal(r.json().headers.traceparent, `00-${traceId}-${span!.spanId}-01`);
    // A reload that leaves `tracing` as it is keeps the running tracer (its queue, its exporter).
    const running = ctx.gw.gateway.runtime().tracing;
    await ctx.gw.gateway.reload({ ...ctx.gw.loaded.config, tracing: { enabled: true, endpoint: ctx.collector.url } });
    assert.equal(ctx.gw.gateway.runtime().tracing, running);
  });
});

describe('egress attempts are traced', () => {
  test('an allowed request and a denied CONNECT: one span each, the trace id in each audit record', async () => {
    const collector = await startOtlpReceiver();
    const tracing = await createTracing({ enabled: true, endpoint: collector.url }, silentLogger);
    const dir = tempDir();
    const upstream = await startHttpUpstream('allowed');
    const proxy = await startProxy(dir, localGrant('allowed.test', upstream.port), { tracing: () => tracing });
    try {
      const traceId = hex(16);
      const clientSpan = hex(8);
      const authority = `allowed.test:${upstream.port}`;
      const allowed = await rawRequest(proxy.port, `GET http://${authority}/x HTTP/1.1\r\nHost: ${authority}\r\ntraceparent: 00-${traceId}-${clientSpan}-01\r\nConnection: close\r\n\r\n`);
      assert.equal(allowed.status, 200);
      allowed.socket.destroy();
      const denied = await rawRequest(proxy.port, connectRequest('denied.test:443'));
      assert.equal(denied.status, 403);
      const spans = await collector.waitForSpans(2);
      const get = spans.find((s) => s.name === 'GET')!;
      assert.equal(get.traceId, traceId);
      assert.equal(get.parentSpanId, clientSpan);
      assert.equal(get.kind, SERVER);
      assert.equal(get.attributes['server.address'], 'allowed.test');
      assert.equal(get.attributes['server.port'], upstream.port);
      assert.equal(get.attributes['http.response.status_code'], 200);
      assert.equal(get.attributes['portcullis.decision'], 'allow');
      assert.equal(get.attributes['portcullis.principal'], 'local');
      assert.equal(get.attributes['portcullis.egress.proxy_type'], 'http');
      assert.ok(get.endNanos > get.startNanos);
      const connect = spans.find((s) => s.name === 'CONNECT')!;
      assert.equal(connect.parentSpanId, undefined);
      assert.equal(connect.attributes['portcullis.decision'], 'deny');
      assert.equal(connect.attributes['error.type'], 'GW_EGRESS_DENIED');
      await proxy.close();
      const records = proxy.records();
      assert.equal(records.length, 2);
      assert.equal(records.find((r) => r.host === 'allowed.test')?.traceId, traceId);
      assert.equal(records.find((r) => r.host === 'denied.test')?.traceId, connect.traceId);
    } finally {
      await tracing.shutdown();
      await upstream.close();
      await collector.close();
      dir.remove();
    }
  });
});

/** The trace section of docs/operations.md: its JSON blocks (the spans, then the access line) and its upstream sentence. */
const TRACING_DOC = (() => {
  const doc = fs.readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
  return doc.slice(doc.indexOf('## Tracing'), doc.indexOf('## The admin plane'));
})();

/** What differs from run to run (ids the gateway makes, the upstream's port, times), replaced by its name. */
function stable(value: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(value);
  for (const key of ['spanId', 'requestId', 'time', 'latencyMs']) if (key in out) out[key] = key;
  // curl's version: the doc shows the one .ci/run installs (Debian 12's), other machines may have another.
  if (typeof out.userAgent === 'string') out.userAgent = out.userAgent.replace(/^curl\/.*/, 'curl');
  const attributes = out.attributes as Record<string, unknown> | undefined;
  if (attributes) {
    attributes['portcullis.request_id'] = 'request_id';
    if ('portcullis.upstream.address' in attributes) attributes['portcullis.upstream.address'] = 'address';
    attributes['user_agent.original'] = String(attributes['user_agent.original']).replace(/^curl\/.*/, 'curl');
  }
  return out;
}

describe('the trace shown in docs/operations.md', () => {
  const ctx = tracedIngress((endpoint) => ({ enabled: true, endpoint, serviceName: 'edge-gateway' }));

  test('is what the receiver decodes for the same two curl requests, and the access line is the gateway’s', async () => {
    const [spansBlock, lineBlock] = [...TRACING_DOC.matchAll(/^```json\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
    const documented = JSON.parse(`[${spansBlock!.replace(/\}\n\{/g, '},{')}]`) as Record<string, unknown>[];
    const traceId = documented[0]!.traceId as string;
    const parent = documented[0]!.parentSpanId as string;
    const ca = `${ctx.gw.dir}/docs-ca.pem`;
    fs.writeFileSync(ca, ctx.gw.caPem);
    const bodies: string[] = [];
    for (const path of ['/public/hello', '/admin/users']) {
      const r = await curl(['--cacert', ca, '--resolve', `localhost:${ctx.gw.port}:127.0.0.1`, '-H', `traceparent: 00-${traceId}-${parent}-01`, `https://localhost:${ctx.gw.port}${path}`]);
      assert.equal(r.code, 0, r.stderr);
      bodies.push(r.stdout);
    }
    const spans = await ctx.collector.waitForSpans(2);
    const received = ['/public/hello', '/admin/users'].map((p) => spans.find((s) => s.attributes['url.path'] === p)!);
    const shown = received.map(({ traceId: t, spanId, parentSpanId, name, kind, serviceName, attributes, events, statusCode }) =>
      stable({ traceId: t, spanId, parentSpanId, name, kind, serviceName, attributes, events, statusCode }),
    );
    assert.deepEqual(shown, documented.map(stable));

    // The upstream's parent is the gateway span, in both headers, as the doc says.
    const upstream = (JSON.parse(bodies[0]!) as { headers: Record<string, string> }).headers;
    const spanId = received[0]!.spanId;
    assert.equal(upstream.traceparent, `00-${traceId}-${spanId}-01`);
    assert.equal(upstream.b3, `${traceId}-${spanId}-1`);
    // And the doc says so of its own first span.
    const shownId = documented[0]!.spanId as string;
    assert.ok(TRACING_DOC.includes(`received \`traceparent: 00-${traceId}-${shownId}-01\` and\n\`b3: ${traceId}-${shownId}-1\``));

    const line = ctx.gw.logs.find((l) => l.event === 'REQUEST' && l.path === '/admin/users')!;
    assert.deepEqual(stable(line), stable(JSON.parse(lineBlock!) as Record<string, unknown>));
  });
});
