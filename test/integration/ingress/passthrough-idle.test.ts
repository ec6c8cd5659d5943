// A passthrough connection is spliced, never decrypted: the gateway sees only bytes. One that carries none either way
// for the listener's `timeouts.idleMs` is closed, so an idle client cannot hold a connection (and an upstream one)
// for ever; one that keeps talking stays open however long it lives.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startEchoServer, type EchoServer } from '../../../gateway/dev/demo-backend.js';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';

const IDLE_MS = 400;

describe('passthrough: idle connections are closed', () => {
  const pki = testPki();
  const backendCert = pki.issue({ dnsNames: ['legacy.test'] });
  // The demo backend demands a client certificate: the TLS is end to end, the gateway only splices it.
  const client = pki.issue({ spiffeId: `spiffe://${pki.trustDomain}/ns/legacy/sa/client` });
  let backend: EchoServer;
  let ing: TestIngress;

  before(async () => {
    backend = await startEchoServer({ certPem: backendCert.certPem, keyPem: backendCert.keyPem, caPem: pki.ca.certPem });
    ing = await startTestIngress((config) => {
      config.listeners[0].timeouts = { idleMs: IDLE_MS };
      config.listeners[0].hosts.push({ name: 'legacy', hostnames: ['legacy.test'], tls: { mode: 'passthrough', upstream: 'legacy' } });
      config.upstreams.push({ name: 'legacy', url: `tcp://127.0.0.1:${backend.port}` });
    });
  });
  after(async () => {
    await ing.close();
    await backend.close();
  });

  const open = async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: ing.port, servername: 'legacy.test', ca: pki.ca.certPem, cert: client.certPem, key: client.keyPem, ALPNProtocols: ['http/1.1'] });
    await once(socket, 'secureConnect');
    return socket;
  };

  test('a spliced connection that goes quiet is closed after idleMs, and the close is logged', async () => {
    const socket = await open();
    const started = Date.now();
    await once(socket, 'close');
    const lived = Date.now() - started;
    assert.ok(lived >= IDLE_MS - 50 && lived < IDLE_MS + 2_000, `closed after ${lived} ms`);
    assert.ok(ing.logs.some((l) => l.event === 'PASSTHROUGH_CLOSED' && l.vhost === 'legacy' && l.error === 'idle timeout'));
  });

  test('one that keeps exchanging requests outlives idleMs', async () => {
    const socket = await open();
    let closed = false;
    socket.once('close', () => (closed = true));
    for (let i = 0; i < 6; i++) {
      socket.write('GET /alive HTTP/1.1\r\nHost: legacy.test\r\n\r\n');
      const [reply] = (await once(socket, 'data')) as [Buffer];
      assert.match(reply.toString('latin1'), /^HTTP\/1\.1 200/);
      await sleep(IDLE_MS / 2);
    }
    assert.equal(closed, false, 'still open after three times idleMs of traffic');
    socket.destroy();
  });
});
