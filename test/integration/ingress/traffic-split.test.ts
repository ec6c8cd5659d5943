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
      config.policies.push({ name: 'shop', action: 'ALLOW', routes: ['shop'], rules: [{}] });
    });
    client = new Pool(`https://127.0.0.1:${gw.port}`, { connections: 8, connect: { ca: gw.caPem, servername: 'localhost' } });
  });
  after(async () => {
    await client.close();
    await gw.close();
    await Promise.all([stable.kill(), canary.kill(), drained.kill()]);
  });

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await client.request({ path, method: 'GET', headers: { host: 'localhost', ...headers } });
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

  it('a 90/10 split lands within ±3 % over 2,000 requests; a weight of 0 gets none', async () => {
    const counts = await tally('/shop/item', 2000);
    assert.equal((counts.stable ?? 0) + (counts.canary ?? 0), 2000, JSON.stringify(counts));
    const share = (counts.canary ?? 0) / 2000;
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
});
