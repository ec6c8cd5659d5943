// A route's filters through a real gateway (issue #13, item 6): header edits of the request and of the answer,
// applied after authorization; a redirect answered without any upstream, after authorization; and a mirror to a
// shadow upstream that is slow, which never slows the real request, and that is bounded.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import type { EchoReply } from '../../../gateway/dev/demo-backend.js';
import { loadConfigFile } from '../../../gateway/config/load.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A plain HTTP upstream that records each request and answers after `delayMs`. */
async function startRecorder(delayMs: number) {
  const seen: Seen[] = [];
  let open = 0;
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    open++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      setTimeout(() => {
        open--;
        res.setHeader('x-powered-by', 'recorder');
        res.end('recorded');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    get open() {
      return open;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve(server.closeAllConnections()))),
  };
}

describe('route filters', () => {
  let gw: TestIngress;
  let client: Pool;
  let main: Awaited<ReturnType<typeof startRecorder>>;
  let shadow: Awaited<ReturnType<typeof startRecorder>>;
  let narrowShadow: Awaited<ReturnType<typeof startRecorder>>;

  before(async () => {
    [main, shadow, narrowShadow] = await Promise.all([startRecorder(0), startRecorder(2_000), startRecorder(2_000)]);
    gw = await startTestIngress((config) => {
      config.upstreams.push(
        { name: 'main', url: main.url },
        { name: 'shadow', url: shadow.url },
        { name: 'narrow-shadow', url: narrowShadow.url, maxRequests: 2, timeoutMs: 10_000 },
      );
      const mirrorTo = (name: string) => [{ type: 'RequestMirror', requestMirror: { backendRef: { name } } }];
      config.routes.push(
        {
          name: 'edited',
          match: { path: { prefix: '/edited' } },
          upstream: 'echo',
          filters: [
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Env', value: 'canary' }], add: [{ name: 'x-tag', value: 'b' }], remove: ['x-drop'] } },
            { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-served-by', value: 'portcullis' }], remove: ['content-type'] } },
          ],
        },
        { name: 'moved', match: { path: { prefix: '/old' } }, filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' }, statusCode: 301 } }] },
        { name: 'elsewhere', match: { path: { exact: '/elsewhere' } }, filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'http', hostname: 'example.com' } }] },
        { name: 'moved-denied', match: { path: { prefix: '/closed' } }, filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplaceFullPath', replaceFullPath: '/' } } }] },
        { name: 'plain', match: { path: { prefix: '/plain' } }, upstream: 'main' },
        { name: 'mirrored', match: { path: { prefix: '/mirrored' } }, upstream: 'main', filters: mirrorTo('shadow') },
        { name: 'narrow', match: { path: { prefix: '/narrow' } }, upstream: 'main', filters: mirrorTo('narrow-shadow') },
      );
      config.policies.push(
        { name: 'filtered', action: 'ALLOW', routes: ['edited', 'moved', 'elsewhere', 'plain', 'mirrored', 'narrow'], rules: [{}] },
        // Policies judge the request the client sent: the X-Env the route sets is not there yet.
        { name: 'no-client-env', action: 'DENY', routes: ['edited'], rules: [{ when: [{ key: 'request.headers[x-env]', values: ['canary'] }] }] },
      );
    });
    client = new Pool(`https://127.0.0.1:${gw.port}`, { connections: 16, connect: { ca: gw.caPem, servername: 'localhost' } });
  });
  after(async () => {
    await client.close();
    await gw.close();
    await Promise.all([main.close(), shadow.close(), narrowShadow.close()]);
  });

  const send = async (path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) => {
    const started = performance.now();
    const res = await client.request({ path, method: options.method ?? 'GET', headers: { host: 'localhost', ...options.headers }, body: options.body ?? null });
    const body = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body, ms: performance.now() - started };
  };

  it('edits the request after authorization and the answer before the client', async () => {
    const reply = await send('/edited/x', { headers: { 'x-drop': 'secret', 'x-tag': 'a', 'x-keep': 'yes' } });
    assert.equal(reply.status, 200);
    const echoed = JSON.parse(reply.body) as EchoReply;
    assert.equal(echoed.headers['x-env'], 'canary');
    assert.equal(echoed.headers['x-tag'], 'a, b');
    assert.equal(echoed.headers['x-drop'], undefined);
    assert.equal(echoed.headers['x-keep'], 'yes');
    assert.equal(reply.headers['x-served-by'], 'portcullis');
    assert.equal(reply.headers['content-type'], undefined);
    const denied = await send('/edited/x', { headers: { 'x-env': 'canary' } });
    assert.equal(denied.status, 403, 'the policy saw the X-Env the client sent');
  });

  it('answers a redirect without any upstream, keeping the rest of the path and the query', async () => {
    const before = main.seen.length;
    const moved = await send('/old/a/b?x=1');
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.location, 'https://localhost/new/a/b?x=1');
    assert.equal((await send('/old')).headers.location, 'https://localhost/new');
    const withPort = await send('/old/a', { headers: { host: `localhost:${gw.port}` } });
    assert.equal(withPort.headers.location, `https://localhost:${gw.port}/new/a`, 'the port the client used');
    const elsewhere = await send('/elsewhere?q=2');
    assert.equal(elsewhere.status, 302);
    assert.equal(elsewhere.headers.location, 'http://example.com/elsewhere?q=2');
    assert.equal(main.seen.length, before);
    const line = gw.logs.findLast((l) => l.event === 'REQUEST' && l.path === '/elsewhere');
    assert.equal(line?.status, 302);
    assert.equal(line?.upstream, undefined);
  });

  it('a redirect route is authorized like any route: denied by default', async () => {
    const denied = await send('/closed/x');
    assert.equal(denied.status, 403);
    assert.equal(denied.headers.location, undefined);
  });

  it('mirrors to a shadow upstream that takes 2 s without slowing the real request', async (t) => {
    const timed = async (path: string) => {
      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        const reply = await send(`${path}/${i}`);
        assert.equal(reply.status, 200);
        times.push(reply.ms);
      }
      return times.sort((x, y) => x - y)[5]!;
    };
    const plain = await timed('/plain');
    const mirrored = await timed('/mirrored');
    t.diagnostic(`median latency: ${plain.toFixed(1)} ms without a mirror, ${mirrored.toFixed(1)} ms with a 2 s mirror`);
    // Generous: the copies take 2 s each; a request that waited for one would take at least that.
    assert.ok(mirrored < plain + 250, `median ${mirrored.toFixed(1)} ms with the mirror, ${plain.toFixed(1)} ms without`);
    // Each copy reaches the shadow with the request id of the real request and the authority marked `-shadow`.
    const copies = shadow.seen.filter((s) => s.url.startsWith('/mirrored/'));
    assert.equal(copies.length, 10);
    const real = new Map(main.seen.filter((s) => s.url.startsWith('/mirrored/')).map((s) => [s.url, s.headers['x-request-id']]));
    for (const copy of copies) {
      assert.equal(copy.headers.host, 'localhost-shadow');
      assert.equal(copy.headers['x-request-id'], real.get(copy.url));
    }
  });

  it('mirrors a buffered body', async () => {
    await send('/mirrored/post', { method: 'POST', body: 'order=42', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const copy = shadow.seen.find((s) => s.url === '/mirrored/post');
    assert.equal(copy?.method, 'POST');
    assert.equal(copy?.body, 'order=42');
  });

  it('copies over the shadow upstream\'s bounds are dropped and counted; the real requests all succeed', async () => {
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => send(`/narrow/${i}`)));
    assert.ok(replies.every((r) => r.status === 200));
    assert.ok(narrowShadow.open <= 2, `${narrowShadow.open} copies open at once`);
    const metrics = await gw.gateway.metrics.registry.metrics();
    const dropped = Number(/portcullis_route_mirror_requests_total\{route="narrow",outcome="dropped"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    assert.equal(dropped, 8, metrics.split('\n').filter((l) => l.includes('mirror')).join('\n'));
    await sleep(2_500);
    const sent = Number(/portcullis_route_mirror_requests_total\{route="narrow",outcome="sent"\} (\d+)/.exec(await gw.gateway.metrics.registry.metrics())?.[1] ?? 0);
    assert.equal(sent, 2);
  });
});

describe('a route header whose value is kept in a file (valueFile)', () => {
  let gw: TestIngress;
  before(async () => {
    gw = await startTestIngress((config, ctx) => {
      ctx.writeFile('upstream-api-key', 'first-key-1c9f\n');
      config.routes.push({
        name: 'keyed',
        match: { path: { prefix: '/keyed' } },
        upstream: 'echo',
        filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Api-Key', valueFile: 'upstream-api-key' }] } }],
      });
      config.policies.push({ name: 'keyed', action: 'ALLOW', routes: ['keyed'], rules: [{}] });
    });
  });
  after(() => gw.close());

  const keySeen = async () => {
    const reply = await request(gw.port, gw.caPem, { path: '/keyed/x', headers: { host: 'localhost', 'x-api-key': 'client-copy' } });
    assert.equal(reply.status, 200, reply.text);
    return reply.json().headers['x-api-key'];
  };

  it('sends the file\'s value (without its line break), picks up a new one on reload, and refuses a file that is no header value', async () => {
    assert.equal(await keySeen(), 'first-key-1c9f');
    gw.writeFile('upstream-api-key', 'second-key-77b2\r\n');
    await gw.gateway.reload(loadConfigFile(gw.configFile).config);
    assert.equal(await keySeen(), 'second-key-77b2');
    // Two lines would split the header: refused at load, with the field's pointer; the running value stays.
    gw.writeFile('upstream-api-key', 'third\nInjected: yes\n');
    assert.throws(() => loadConfigFile(gw.configFile), /\/routes\/\d+\/filters\/0\/requestHeaderModifier\/set\/0\/valueFile.*one header value/s);
    assert.equal(await keySeen(), 'second-key-77b2');
    // The value is the file's, never the config's or the logs'.
    const rendered = JSON.stringify(gw.logs) + JSON.stringify(gw.loaded.config);
    assert.ok(!rendered.includes('first-key-1c9f') && !rendered.includes('second-key-77b2'));
  });
});
