// Smokescreen design (ANCHORS §4.5): DNS rebinding between check and dial. The resolver answers a public address
// the first time and 127.0.0.1 afterwards; the gateway must resolve once and dial the address it checked.
// The connect seam stands in for the Internet: it records every dial and sends the "public" address to a local
// stand-in server, so no traffic leaves 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { ConnectFn } from '../../gateway/egress/stages/dial.js';
import { rawRequest, startHttpUpstream, startProxy, tempDir } from '../integration/egress/harness.js';

const PUBLIC = '93.184.215.14';

test('rebinding: one lookup, the checked address is dialled, the private server sees nothing', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const publicStandIn = await startHttpUpstream('public');
  const privateServer = await startHttpUpstream('private');
  const lookups: string[] = [];
  const dials: string[] = [];
  const answers = [PUBLIC, '127.0.0.1'];
  const connectSeam: ConnectFn = (o) => {
    dials.push(`${o.host}:${o.port}`);
    return o.host === PUBLIC ? connect({ ...o, host: '127.0.0.1', port: publicStandIn.port }) : connect(o);
  };
  const proxy = await startProxy(
    dir,
    {
      sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1'] }],
      allow: [{ name: 'rebind', identities: ['local'], hosts: ['rebind.test'], ports: [privateServer.port] }],
    },
    {
      lookup: async (host) => {
        lookups.push(host);
        return [{ address: answers[Math.min(lookups.length - 1, answers.length - 1)]!, family: 4 }];
      },
      connect: connectSeam,
    },
  );
  try {
    const authority = `rebind.test:${privateServer.port}`;
    const r = await rawRequest(proxy.port, `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello from public');
    assert.deepEqual(lookups, ['rebind.test']);
    assert.deepEqual(dials, [`${PUBLIC}:${privateServer.port}`]);
    assert.equal(privateServer.connections, 0);
    // The upstream still sees the name the client asked for.
    assert.equal(publicStandIn.lastHeaders?.host, authority);

    // The next attempt gets the rebound answer: refused, still nothing reaches the private server.
    const again = await rawRequest(proxy.port, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    assert.equal(again.status, 403);
    assert.equal(again.headers['x-portcullis-code'], 'GW_EGRESS_ADDRESS_BLOCKED');
    assert.equal(privateServer.connections, 0);
  } finally {
    await proxy.close();
    await publicStandIn.close();
    await privateServer.close();
  }
  // Found by outcome, not position: the allowed request's record is written when it ends, which under load can
  // come after the refusal's.
  const records = proxy.records();
  const allowed = records.find((r) => r.allow === true);
  const refused = records.find((r) => r.allow === false);
  assert.equal(allowed?.address, PUBLIC);
  assert.equal(refused?.address, '127.0.0.1');
  assert.equal(refused?.reason, 'loopback');
});

test('a single answer mixing public and private addresses is refused as a whole', async () => {
  const dir = tempDir();
  const privateServer = await startHttpUpstream('private');
  const dials: string[] = [];
  const proxy = await startProxy(
    dir,
    {
      sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1'] }],
      allow: [{ name: 'mixed', identities: ['local'], hosts: ['mixed.test'], ports: [privateServer.port] }],
    },
    {
      lookup: async () => [
        { address: PUBLIC, family: 4 },
        { address: '127.0.0.1', family: 4 },
      ],
      connect: (o) => {
        dials.push(o.host);
        return connect(o);
      },
    },
  );
  try {
    const r = await rawRequest(proxy.port, `CONNECT mixed.test:${privateServer.port} HTTP/1.1\r\nHost: mixed.test\r\n\r\n`);
    assert.equal(r.status, 403);
    assert.deepEqual(dials, []);
    assert.equal(privateServer.connections, 0);
  } finally {
    await proxy.close();
    await privateServer.close();
    dir.remove();
  }
});
