// The response direction of the ingress proxy drops hop-by-hop fields, including those the upstream's own
// `Connection` header names (RFC 9110 §7.6.1), exactly as the request direction and the egress proxy do.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';

describe('ingress response headers', () => {
  let ing: TestIngress;
  let upstream: http.Server;

  before(async () => {
    upstream = http.createServer((_req, res) => {
      res.writeHead(200, { connection: 'keep-alive, X-Upstream-Secret', 'x-upstream-secret': 'internal', 'keep-alive': 'timeout=5', 'x-kept': 'yes' });
      res.end('ok');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    ing = await startTestIngress((config) => {
      config.upstreams.push({ name: 'plain', url });
      config.routes.unshift({ name: 'plain', match: { path: { prefix: '/public/plain' } }, upstream: 'plain' });
      config.policies.push({ name: 'plain', action: 'ALLOW', routes: ['plain'], rules: [{}] });
    });
  });
  after(async () => {
    await ing.close();
    upstream.close();
  });

  test('fields named in the upstream Connection header do not reach the client', async () => {
    const res = await request(ing.port, ing.caPem, { path: '/public/plain' });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'ok');
    assert.equal(res.headers['x-kept'], 'yes');
    assert.equal(res.headers['x-upstream-secret'], undefined);
    assert.equal(res.headers['keep-alive'], undefined);
  });
});
