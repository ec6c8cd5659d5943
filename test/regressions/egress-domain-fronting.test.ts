// Domain fronting through a CONNECT tunnel (ANCHORS §4.5, HAProxy `req.ssl_sni` caveats): the allowlist approves
// `secure.test`, then the client's ClientHello asks the server behind that address for `evil.test`. The gateway
// reads the ClientHello before forwarding a single byte and ends the tunnel when the SNI differs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { testPki } from '../helpers/pki.js';
import { connectRequest, eventually, localGrant, rawRequest, startProxy, startTlsUpstream, tempDir } from '../integration/egress/harness.js';

function handshake(socket: import('node:net').Socket, servername: string): Promise<'connected' | 'refused'> {
  return new Promise((resolve) => {
    const tls = tlsConnect({ socket, servername, ca: testPki().ca.certPem });
    tls.on('secureConnect', () => {
      resolve('connected');
      tls.end();
    });
    tls.on('error', () => resolve('refused'));
    tls.on('close', () => resolve('refused'));
  });
}

test('CONNECT secure.test with SNI evil.test: tunnel cut, upstream never sees a ClientHello, alert audited', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const upstream = await startTlsUpstream();
  const proxy = await startProxy(dir, {
    ...localGrant('secure.test', upstream.port),
  });
  try {
    const fronted = await rawRequest(proxy.port, connectRequest(`secure.test:${upstream.port}`));
    assert.equal(fronted.status, 200);
    assert.equal(await handshake(fronted.socket, 'evil.test'), 'refused');
    assert.equal(upstream.secureConnections, 0);

    // Control: the matching SNI completes the handshake through the same proxy.
    const honest = await rawRequest(proxy.port, connectRequest(`secure.test:${upstream.port}`));
    assert.equal(await handshake(honest.socket, 'secure.test'), 'connected');
    await eventually(() => upstream.secureConnections === 1);
  } finally {
    await proxy.close();
    await upstream.close();
  }
  const [fronting, honest] = proxy.records().filter((r) => r.proxyType === 'connect');
  assert.equal(fronting?.allow, false);
  assert.equal(fronting?.reason, 'sni_mismatch');
  assert.equal(fronting?.sni, 'evil.test');
  assert.equal(fronting?.host, 'secure.test');
  assert.equal(fronting?.bytesIn, 0);
  assert.equal(fronting?.alert, true);
  assert.equal(honest?.allow, true);
  assert.equal(honest?.sni, 'secure.test');
});

test('a malformed ClientHello is cut like a fronting attempt, and the record says what was wrong with it', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const upstream = await startTlsUpstream();
  const proxy = await startProxy(dir, localGrant('secure.test', upstream.port));
  try {
    const tunnel = await rawRequest(proxy.port, connectRequest(`secure.test:${upstream.port}`));
    assert.equal(tunnel.status, 200);
    const closed = new Promise((resolve) => tunnel.socket.once('close', resolve));
    // A TLS handshake record whose first message is a ServerHello (type 2), not a ClientHello.
    tunnel.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]));
    await closed;
    assert.equal(upstream.secureConnections, 0, 'the upstream never saw a handshake');
  } finally {
    await proxy.close();
    await upstream.close();
  }
  const [record] = proxy.records();
  assert.equal(record?.reason, 'sni_mismatch');
  assert.equal(record?.alert, true);
  assert.equal(record?.detail, 'first handshake message is not a ClientHello');
});
