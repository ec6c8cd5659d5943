// Traffic splits and request matches (issue #13, item 6) through a real gateway: weighted backendRefs over upstream
// processes, a reload that changes the weights, and routes chosen by headers and query parameters.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import type { Config } from '../../../gateway/config/schema.js';
import { startEndpointProcess, type EndpointProcess } from '../../helpers/endpoint-process.js';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';

describe('traffic split', () => {
  let gw: TestIngress;
  let client: Pool;
  let stable: EndpointProcess;
  let canary: EndpointProcess;
  let drained: EndpointProcess;

  before(async () => {
    [stable, canary, drained] = (await Promise.all(['stable', 'canary', 'drained'].map((id) => startEndpointProcess(id)))) as [EndpointProcess, EndpointProcess, EndpointProcess];
    gw = await startTestIngress((config) => {
      for (const e of [stable, canary, drained]) config.upstreams.push({ name: e.id, url: `http://${e.address}` });
      config.routes.push({
        name: 'shop',
        match: { path: { prefix: '/shop' } },
        backendRefs: [
          { name: 'stable', weight: 90 },
          { name: 'canary', weight: 10 },
          { name: 'drained', weight: 0 },
        ],
      });
      // First match wins: the header and query routes come before the catch-all of /app.
      config.routes.push(
        { name: 'by-header', match: { path: { prefix: '/app' }, headers: [{ name: 'X-Version', value: 'v2' }] }, upstream: 'canary' },
        { name: 'by-query', match: { path: { prefix: '/app' }, queryParams: [{ name: 'track', value: 'beta' }] }, upstream: 'canary' },
        { name: 'by-regex', match: { path: { prefix: '/app' }, headers: [{ name: 'x-client', type: 'RegularExpression', value: '(a+)+$' }] }, upstream: 'drained' },
        { name: 'app', match: { path: { prefix: '/app' } }, upstream: 'stable' },
      );
      config.policies.push({ name: 'shop', action: 'ALLOW', routes: ['shop', 'by-header', 'by-query', 'by-regex', 'app'], rules: [{}] });
    });
    client = new Pool(`https://127.0.0.1:${gw.port}`, { connections: 8, connect: { ca: gw.caPem, servername: 'localhost' } });
  });
  after(async () => {
    await client.close();
    await gw.close();
    await Promise.all([stable.kill(), canary.kill(), drained.kill()]);
  });

  /** `headers` as a list of name, value, name, value, … sends a header as many times as it is listed. */
  const get = async (path: string, headers: Record<string, string> | string[] = {}) => {
    const res = await client.request({ path, method: 'GET', headers: Array.isArray(headers) ? ['host', 'localhost', ...headers] : { host: 'localhost', ...headers } });
    return { status: res.statusCode, body: await res.body.text() };
  };
  /** `n` requests, 16 at a time; how many each backend answered. */
  const tally = async (path: string, n: number) => {
    const counts: Record<string, number> = {};
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next++ < n) {
          const reply = await get(path);
          const key = reply.status === 200 ? reply.body : String(reply.status);
          counts[key] = (counts[key] ?? 0) + 1;
        }
      }),
    );
    return counts;
  };

  it('a 90/10 split lands within ±3 % over 2,000 requests; a weight of 0 gets none', async (t) => {
    const counts = await tally('/shop/item', 2000);
    assert.equal((counts.stable ?? 0) + (counts.canary ?? 0), 2000, JSON.stringify(counts));
    const share = (counts.canary ?? 0) / 2000;
    t.diagnostic(`90/10 split over 2,000 requests: ${JSON.stringify(counts)}`);
    assert.ok(share >= 0.07 && share <= 0.13, `canary got ${(share * 100).toFixed(1)} % (${JSON.stringify(counts)})`);
    assert.equal(counts.drained, undefined);
  });

  it('the access log names the route, which policies saw, and the upstream each request went to', async () => {
    await tally('/shop/logged', 50);
    const lines = gw.logs.filter((l) => l.event === 'REQUEST' && String(l.path).startsWith('/shop/logged'));
    assert.equal(lines.length, 50);
    assert.ok(lines.every((l) => l.route === 'shop' && (l.upstream === 'stable' || l.upstream === 'canary') && l.decision !== undefined));
  });

  it('a reload that changes the weights applies whole: every request after it follows the new weights', async () => {
    const config = gw.gateway.runtime().config;
    const reweighted = (weights: Record<string, number>): Config => ({
      ...config,
      routes: config.routes.map((r) => (r.name === 'shop' ? { ...r, backendRefs: Object.entries(weights).map(([name, weight]) => ({ name, weight })) } : r)),
    });
    await gw.gateway.reload(reweighted({ stable: 0, canary: 1, drained: 0 }));
    assert.deepEqual(await tally('/shop/after', 200), { canary: 200 });
    await gw.gateway.reload(reweighted({ stable: 1, canary: 0, drained: 0 }));
    assert.deepEqual(await tally('/shop/after', 200), { stable: 200 });
  });

  const backendOf = async (path: string, headers: Record<string, string> | string[] = {}) => {
    const reply = await get(path, headers);
    return reply.status === 200 ? reply.body : String(reply.status);
  };

  it('a header condition matches one exact value, its name in any case, its value not', async () => {
    assert.equal(await backendOf('/app/x', { 'x-version': 'v2' }), 'canary');
    assert.equal(await backendOf('/app/x', ['X-VERSION', 'v2']), 'canary');
    assert.equal(await backendOf('/app/x', { 'x-version': 'V2' }), 'stable');
    assert.equal(await backendOf('/app/x', { 'x-version': 'v2 ' }), 'canary', 'the client library trims, as every HTTP parser does');
    assert.equal(await backendOf('/app/x', { 'x-version': 'v20' }), 'stable');
    assert.equal(await backendOf('/app/x'), 'stable');
  });

  it('a repeated header never matches, whatever its copies say', async () => {
    assert.equal(await backendOf('/app/x', ['x-version', 'v2', 'x-version', 'v2']), 'stable');
    assert.equal(await backendOf('/app/x', ['x-version', 'v1', 'X-Version', 'v2']), 'stable');
    assert.equal(await backendOf('/app/x', { 'x-version': 'v2, v2' }), 'stable', 'a joined list is one value that is not v2');
  });

  it('a query condition reads the query as the JWT stage does; a repeated parameter never matches', async () => {
    assert.equal(await backendOf('/app/x?track=beta'), 'canary');
    assert.equal(await backendOf('/app/x?a=1&track=beta'), 'canary');
    assert.equal(await backendOf('/app/x?tr%61ck=b%65ta'), 'canary', 'percent-decoded, as the backend reads it');
    assert.equal(await backendOf('/app/x?track=Beta'), 'stable');
    assert.equal(await backendOf('/app/x?track=beta&track=beta'), 'stable');
    assert.equal(await backendOf('/app/x?track=alpha&track=beta'), 'stable');
    assert.equal(await backendOf('/app/x?track=beta&track'), 'stable');
    assert.equal(await backendOf('/app/x?trackx=beta'), 'stable');
  });

  it('a regular expression matches the whole value in linear time: a ReDoS pattern answers at once', async () => {
    assert.equal(await backendOf('/app/x', { 'x-client': 'aaaa' }), 'drained');
    assert.equal(await backendOf('/app/x', { 'x-client': 'aaab' }), 'stable');
    const started = performance.now();
    assert.equal(await backendOf('/app/x', { 'x-client': `${'a'.repeat(8000)}!` }), 'stable');
    // A backtracking engine takes longer than the age of the universe on this input; RE2 a few milliseconds.
    assert.ok(performance.now() - started < 1_000, `took ${performance.now() - started} ms`);
  });
});
