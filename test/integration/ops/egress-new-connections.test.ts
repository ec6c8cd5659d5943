// egress.limits.newConnectionsPerSecond: the egress proxy's per-identity rate of new upstream connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRequest, localGrant, rawRequest, startHttpUpstream, startProxy, tempDir } from '../egress/harness.js';

test('new connections per identity per second: CONNECT and forwarded HTTP share the budget; over it 429 with Retry-After', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const up = await startHttpUpstream();
  const proxy = await startProxy(dir, {
    ...localGrant('up.test', up.port),
    limits: { newConnectionsPerSecond: 2 },
  });
  try {
    const first = await rawRequest(proxy.port, connectRequest(`up.test:${up.port}`));
    const forwarded = await rawRequest(proxy.port, `GET http://up.test:${up.port}/ HTTP/1.1\r\nHost: up.test:${up.port}\r\nConnection: close\r\n\r\n`);
    const third = await rawRequest(proxy.port, connectRequest(`up.test:${up.port}`));
    first.socket.destroy();
    assert.equal(first.status, 200);
    assert.equal(forwarded.status, 200);
    assert.equal(third.status, 429);
    assert.equal(third.headers['x-portcullis-code'], 'GW_RATE_LIMITED');
    assert.equal(third.headers['retry-after'], '1');
    assert.equal(third.headers['ratelimit-limit'], '2');
    assert.equal(up.connections, 2, 'the refused attempt never reached the upstream');
  } finally {
    await proxy.close();
    await up.close();
  }
  assert.ok(proxy.records().some((r) => r.code === 'GW_RATE_LIMITED'));
});
