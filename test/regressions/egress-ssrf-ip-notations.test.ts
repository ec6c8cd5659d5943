// envoyproxy/envoy#19429 (forward proxy reaches loopback/metadata), smokescreen 7ae7a27 + 8e2eca6 (CGNAT and
// IPv6-embedded IPv4 bypassed the private-range check), Smokescreen README (IP literals bypass hostname rules).
// Every spelling of 127.0.0.1 is sent to a proxy whose allowlist lets any address through, so only the address
// guard stands between the request and an internal server on 127.0.0.1 that counts its connections: zero.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectRequest,
  curl,
  rawRequest,
  startHttpUpstream,
  startProxy,
  tempDir,
  type Proxy,
  type TempDir,
  type Upstream,
} from '../integration/egress/harness.js';

const NOTATIONS = [
  '127.0.0.1',
  '2130706433',
  '0x7f000001',
  '0177.0.0.1',
  '017700000001',
  '127.1',
  '127.0.1',
  '0x7f.1',
  '0x7f.0x0.0x0.0x1',
  '127.0.0.1.',
  '127.127.127.127',
  '0.0.0.0',
  '0',
  '[::1]',
  '[0:0:0:0:0:0:0:1]',
  '[::ffff:127.0.0.1]',
  '[::ffff:7f00:1]',
  '[::127.0.0.1]',
  '[::ffff:0:127.0.0.1]',
  '[64:ff9b::127.0.0.1]',
  '[2002:7f00:1::1]',
  '[fe80::1%25eth0]',
  '[::]',
];

describe('egress SSRF: IP literals in every notation are checked before any DNS', () => {
  let dir: TempDir;
  let internal: Upstream;
  let proxy: Proxy;

  before(async () => {
    dir = tempDir();
    internal = await startHttpUpstream('internal');
    proxy = await startProxy(dir, {
      sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1/32'] }],
      allow: [
        { name: 'any-ip', identities: ['local'], cidrs: ['0.0.0.0/0', '::/0'], ports: [internal.port] },
        { name: 'by-name', identities: ['local'], hosts: ['internal.test', 'metadata.test'], ports: [internal.port, 80] },
      ],
      staticHosts: [
        { host: 'internal.test', addresses: ['127.0.0.1'] },
        { host: 'metadata.test', addresses: ['169.254.169.254'] },
      ],
    });
  });

  after(async () => {
    await proxy.close();
    await internal.close();
    dir.remove();
  });

  for (const host of NOTATIONS) {
    test(`CONNECT ${host}:port → 403, no connection`, async () => {
      const r = await rawRequest(proxy.port, connectRequest(`${host}:${internal.port}`));
      assert.equal(r.status, 403, r.body);
      assert.equal(r.headers['x-portcullis-code'], 'GW_EGRESS_ADDRESS_BLOCKED');
      assert.equal(internal.connections, 0);
    });
    test(`GET http://${host}:port/ → 403, no connection`, async () => {
      const authority = `${host}:${internal.port}`;
      const r = await rawRequest(proxy.port, `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
      assert.equal(r.status, 403, r.body);
      assert.equal(r.headers['x-portcullis-code'], 'GW_EGRESS_ADDRESS_BLOCKED');
      assert.equal(internal.connections, 0);
    });
  }

  test('curl -x with a decimal host → 403', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port}`, '-i', `http://2130706433:${internal.port}/`]);
    assert.match(r.stdout, /^HTTP\/1\.1 403/);
    assert.equal(internal.connections, 0);
  });

  test('a name that maps to loopback or the metadata address is blocked after resolution', async () => {
    const a = await rawRequest(proxy.port, connectRequest(`internal.test:${internal.port}`));
    assert.equal(a.status, 403);
    assert.match(a.body, /"reason":"loopback"/);
    const b = await rawRequest(proxy.port, 'GET http://metadata.test/latest/meta-data/ HTTP/1.1\r\nHost: metadata.test\r\nConnection: close\r\n\r\n');
    assert.equal(b.status, 403);
    assert.match(b.body, /"reason":"metadata"/);
    assert.equal(internal.connections, 0);
  });

  test('percent-encoded and userinfo authorities are malformed, not resolved', async () => {
    for (const host of ['127%2e0.0.1', 'allowed.test@127.0.0.1', '127.0.0.1%00.test']) {
      const r = await rawRequest(proxy.port, connectRequest(`${host}:${internal.port}`));
      assert.equal(r.status, 400, host);
    }
    assert.equal(internal.connections, 0);
  });

  test('every refusal is in the audit file with its address class', async () => {
    await proxy.close();
    const records = proxy.records();
    const blocked = records.filter((r) => r.code === 'GW_EGRESS_ADDRESS_BLOCKED');
    assert.equal(blocked.length, NOTATIONS.length * 2 + 3);
    assert.ok(blocked.every((r) => r.allow === false && typeof r.reason === 'string'));
    assert.ok(blocked.some((r) => r.reason === 'metadata' && r.address === '169.254.169.254'));
  });
});
