// The ClientHellos of a CONNECT tunnel, through the real proxy: one offering Encrypted Client Hello hides its
// destination behind an allowlisted public name and is refused; after a HelloRetryRequest the second ClientHello is
// checked like the first; a hostile SNI never reaches the audit file raw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { createMetrics } from '../../../gateway/core/metrics.js';
import { HRR_RANDOM, changeCipherSpec, clientHello, ech, record, serverHello, sni } from '../../helpers/client-hello.js';
import { testPki } from '../../helpers/pki.js';
import { connectRequest, eventually, localGrant, rawRequest, startProxy, tempDir } from './harness.js';

interface RawUpstream {
  port: number;
  /** Everything received, per connection, in order. */
  received: Buffer[];
  closed: number;
  close(): Promise<void>;
}

/** A TCP upstream that records what it receives; `reply` answers the first bytes of each connection. */
async function rawUpstream(reply?: Buffer): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const upstream: RawUpstream = { port: 0, received: [], closed: 0, close: async () => undefined };
  const server = createServer((socket) => {
    sockets.add(socket);
    const index = upstream.received.push(Buffer.alloc(0)) - 1;
    socket.on('data', (chunk: Buffer) => {
      if (reply && upstream.received[index]!.length === 0) socket.write(reply);
      upstream.received[index] = Buffer.concat([upstream.received[index]!, chunk]);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      upstream.closed++;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  upstream.port = (server.address() as AddressInfo).port;
  upstream.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return upstream;
}

async function scrapeEgress(registry: { metrics(): Promise<string> }): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((l) => l.startsWith('portcullis_egress_attempts_total{'));
}

test('CONNECT to an allowlisted name with an ECH ClientHello: tunnel closed, nothing forwarded, audited and counted as sni_encrypted', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const upstream = await rawUpstream();
  const metrics = createMetrics();
  const proxy = await startProxy(dir, localGrant('secure.test', upstream.port), { metrics });
  const honest = record(clientHello(sni('secure.test')));
  try {
    const tunnel = await rawRequest(proxy.port, connectRequest(`secure.test:${upstream.port}`));
    assert.equal(tunnel.status, 200);
    const closed = once(tunnel.socket, 'close');
    // The outer SNI is the allowlisted public name; the real destination would be in the encrypted inner hello.
    tunnel.socket.write(record(clientHello(sni('secure.test'), ech())));
    await closed;
    await eventually(() => upstream.closed === 1);
    assert.equal(upstream.received[0]!.length, 0, 'the upstream got not a byte');

    // Control: the same hello without ECH goes through the same proxy.
    const control = await rawRequest(proxy.port, connectRequest(`secure.test:${upstream.port}`));
    control.socket.write(honest);
    await eventually(() => upstream.received[1]?.length === honest.length);
    control.socket.destroy();
  } finally {
    await proxy.close();
    await upstream.close();
  }
  const [refused, passed] = proxy.records().filter((r) => r.proxyType === 'connect');
  assert.deepEqual(
    { allow: refused?.allow, reason: refused?.reason, end: refused?.end, sni: refused?.sni, host: refused?.host, bytesIn: refused?.bytesIn, alert: refused?.alert },
    { allow: false, reason: 'sni_encrypted', end: 'sni_encrypted', sni: 'secure.test', host: 'secure.test', bytesIn: 0, alert: true },
  );
  assert.equal(passed?.allow, true);
  assert.deepEqual(await scrapeEgress(metrics.registry), [
    'portcullis_egress_attempts_total{destination="secure.test",decision="deny",code="ok"} 1',
    'portcullis_egress_attempts_total{destination="secure.test",decision="allow",code="ok"} 1',
  ]);
});

test('after a HelloRetryRequest, a second ClientHello naming another host is cut before it reaches the upstream', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const retry = Buffer.concat([record(serverHello(HRR_RANDOM)), changeCipherSpec()]);
  const upstream = await rawUpstream(retry);
  const proxy = await startProxy(dir, localGrant('secure.test', upstream.port));
  const first = record(clientHello(sni('secure.test')));
  try {
    const tunnel = await rawRequest(proxy.port, connectRequest(`secure.test:${upstream.port}`));
    const closed = once(tunnel.socket, 'close');
    tunnel.socket.write(first);
    let answer = Buffer.alloc(0);
    tunnel.socket.on('data', (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
    });
    await eventually(() => answer.length === retry.length);
    tunnel.socket.write(Buffer.concat([changeCipherSpec(), record(clientHello(sni('evil.test')))]));
    await closed;
    await eventually(() => upstream.closed === 1);
    assert.ok(upstream.received[0]!.subarray(0, first.length).equals(first), 'the first hello was forwarded');
    assert.ok(!upstream.received[0]!.includes('evil.test'), 'the second was not');
  } finally {
    await proxy.close();
    await upstream.close();
  }
  const [r] = proxy.records();
  assert.deepEqual(
    { allow: r?.allow, reason: r?.reason, sni: r?.sni, detail: r?.detail, alert: r?.alert },
    { allow: false, reason: 'sni_mismatch', sni: 'evil.test', detail: 'ClientHello after the first', alert: true },
  );
});

test('a real client that gets a HelloRetryRequest completes its handshake through the proxy', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const pki = testPki();
  const leaf = pki.issue({ dnsNames: ['secure.test'] });
  // Only P-384: node:tls clients offer an X25519 key share first, so the server must ask again.
  const server = createTlsServer({ cert: leaf.certPem, key: leaf.keyPem, ecdhCurve: 'P-384' }, (s) => s.end('hello after retry'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const proxy = await startProxy(dir, localGrant('secure.test', port));
  try {
    const tunnel = await rawRequest(proxy.port, connectRequest(`secure.test:${port}`));
    const tls = tlsConnect({ socket: tunnel.socket, servername: 'secure.test', ca: pki.ca.certPem });
    await once(tls, 'secureConnect');
    assert.deepEqual(tls.getEphemeralKeyInfo(), { type: 'ECDH', name: 'secp384r1', size: 384 }, 'the key share came from a second ClientHello');
    let body = '';
    tls.on('data', (chunk: Buffer) => (body += chunk.toString()));
    await once(tls, 'end');
    assert.equal(body, 'hello after retry');
    tls.destroy();
  } finally {
    await proxy.close();
    server.close();
  }
  const [r] = proxy.records();
  assert.deepEqual({ allow: r?.allow, sni: r?.sni, end: r?.end }, { allow: true, sni: 'secure.test', end: 'closed' });
});

test('an SNI carrying CR LF and quotes is refused, and the audit file holds no raw copy of it (CVE-2024-45808)', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  const upstream = await rawUpstream();
  const proxy = await startProxy(dir, localGrant('secure.test', upstream.port));
  try {
    const tunnel = await rawRequest(proxy.port, connectRequest(`secure.test:${upstream.port}`));
    const closed = once(tunnel.socket, 'close');
    tunnel.socket.write(record(clientHello(sni('secure.test\r\n{"event":"FORGED"}'))));
    await closed;
  } finally {
    await proxy.close();
    await upstream.close();
  }
  const lines = readFileSync(proxy.auditFile, 'utf8').split('\n').filter(Boolean);
  assert.equal(lines.length, 1);
  assert.ok(!lines[0]!.includes('FORGED'));
  const [r] = proxy.records();
  assert.deepEqual({ reason: r?.reason, sni: r?.sni, detail: r?.detail }, { reason: 'sni_mismatch', sni: undefined, detail: 'SNI is not a valid host name' });
});
