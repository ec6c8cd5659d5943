// limits.maxConnectionsPerSource: one client address cannot hold every connection (and file descriptor) of the
// gateway. Connections over the limit are closed before any handshake; other addresses are not affected, and a
// freed place serves again. Real sockets from two loopback source addresses (127.0.0.1 and 127.0.0.2).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { until } from '../../helpers/net.js';

const LIMIT = 3;

describe('listener limits.maxConnectionsPerSource', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.listeners[0].limits = { maxConnectionsPerSource: LIMIT };
    });
  });
  after(() => ing.close());

  const open = async (localAddress: string) => {
    const socket = net.connect({ host: '127.0.0.1', port: ing.port, localAddress });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    return socket;
  };

  /** A whole TLS request from `localAddress`, on a fresh connection. */
  const get = (localAddress: string) =>
    new Promise<number>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: ing.port, path: '/public/x', servername: 'localhost', headers: { host: 'localhost' }, ca: ing.caPem, agent: false, localAddress }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });

  test('the connection over the limit is closed unanswered; another source and a freed place are served', async () => {
    const held = await Promise.all(Array.from({ length: LIMIT }, () => open('127.0.0.1')));
    try {
      const extra = await open('127.0.0.1');
      await once(extra, 'close');
      assert.equal(extra.bytesRead, 0);
      await assert.rejects(get('127.0.0.1'), /ECONNRESET|socket hang up|disconnected/);
      assert.equal(await get('127.0.0.2'), 200, 'another address is not affected');
      const refused = ing.logs.filter((l) => l.reason === 'too_many_connections_from_source');
      assert.equal(refused.length, 1, 'a flood of refusals is logged once a second');
      assert.equal(refused[0]?.limit, LIMIT);
    } finally {
      for (const socket of held) socket.destroy();
    }
    assert.equal(await until('a freed place', async () => ((await get('127.0.0.1').catch(() => 0)) === 200 ? 200 : undefined), 5_000), 200);
  });
});

describe('a client that leaves before its ClientHello', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.listeners[0].timeouts = { handshakeMs: 300 };
    });
  });
  after(() => ing.close());

  test('is no hello timeout: nothing is logged or counted for it once the bound passes', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: ing.port });
    await once(socket, 'connect');
    socket.destroy();
    const silent = net.connect({ host: '127.0.0.1', port: ing.port });
    silent.on('error', () => undefined);
    await once(silent, 'close');
    assert.equal(ing.logs.filter((l) => l.reason === 'client_hello_timeout').length, 1, 'only the client that stayed silent');
  });
});
