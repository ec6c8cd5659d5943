// A reload keeps what is still valid and readiness means what the docs say, on real sockets: cached JWKS keys of an
// unchanged provider survive a reload during the IdP's outage, an unchanged upstream keeps its pool, TLS sessions
// resume across a reload, a reload that cannot bind its port is refused whole, and the gateway is not ready while
// a JWKS has never loaded.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { parse, stringify } from 'yaml';
import { loadConfigFile } from '../../../gateway/config/load.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { until } from '../../helpers/net.js';
import { testPki } from '../../helpers/pki.js';

const reloadFrom = (ing: TestIngress) => ing.gateway.reload(loadConfigFile(ing.configFile).config);

/** Rewrites the config file through `edit` (plain YAML objects). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function editConfig(ing: TestIngress, edit: (config: Record<string, any>) => void): void {
  const config = parse(fs.readFileSync(ing.configFile, 'utf8'));
  edit(config);
  fs.writeFileSync(ing.configFile, stringify(config));
}

/** One request on a new TLS connection, offering `session`: the ticket it got, and whether the session was resumed. */
function connect(port: number, ca: string, session?: Buffer): Promise<{ session?: Buffer; reused: boolean }> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined;
    let reused = false;
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ...(session ? { session } : {}) });
    // TLS 1.3 sends its ticket after the handshake, with the answer.
    socket.on('session', (s: Buffer) => (ticket = s));
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.write('GET /public/resume HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.on('data', () => undefined);
    socket.on('error', reject);
    socket.once('close', () => resolve({ ...(ticket ? { session: ticket } : {}), reused }));
  });
}

describe('a reload keeps what is still valid', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress();
  });
  after(async () => {
    await ing.close();
  });

  test('an unchanged upstream keeps its pool; a rotated SVID gets a new one', async () => {
    const pool = ing.gateway.runtime().upstreams.get('echo');
    editConfig(ing, (c) => c.routes.push({ name: 'more', match: { path: { prefix: '/more' } }, upstream: 'echo' }));
    await reloadFrom(ing);
    assert.equal(ing.gateway.runtime().upstreams.get('echo'), pool, 'same pool after a route change');
    assert.equal((await request(ing.port, ing.caPem)).status, 200);

    const svid = testPki().issue({ spiffeId: `spiffe://${ing.trustDomain}/ns/portcullis/sa/gateway` });
    ing.writeFile('svid-key.pem', svid.keyPem);
    ing.writeFile('svid.pem', svid.certPem);
    await reloadFrom(ing);
    assert.notEqual(ing.gateway.runtime().upstreams.get('echo'), pool, 'a new pool presents the new SVID');
    const echo = (await request(ing.port, ing.caPem)).json();
    assert.equal(echo.peerSerial?.replace(/^0+/, ''), svid.serial.replace(/^0+/, ''));
  });

  test('TLS sessions resume across a reload', async () => {
    const first = await connect(ing.port, ing.caPem);
    assert.equal(first.reused, false);
    editConfig(ing, (c) => c.routes.push({ name: 'resume', match: { path: { prefix: '/resume' } }, upstream: 'echo' }));
    await reloadFrom(ing);
    const second = await connect(ing.port, ing.caPem, first.session);
    assert.equal(second.reused, true, 'the session ticket of the previous runtime is accepted');
  });

  test('a reload during a JWKS outage keeps the cached keys: tokens still pass', async () => {
    const token = await ing.jwks.sign();
    assert.equal((await request(ing.port, ing.caPem, { path: '/api/x', headers: { authorization: `Bearer ${token}` } })).status, 200);
    await ing.jwks.close();
    editConfig(ing, (c) => c.routes.push({ name: 'outage', match: { path: { prefix: '/outage' } }, upstream: 'echo' }));
    await reloadFrom(ing);
    // A token this gateway never verified: its key must come from the kept JWKS, not from a token cache.
    const fresh = await ing.jwks.sign({ sub: 'bob' });
    const reply = await request(ing.port, ing.caPem, { path: '/api/x', headers: { authorization: `Bearer ${fresh}` } });
    assert.equal(reply.status, 200, reply.text);
    assert.equal(reply.json().headers['x-user'], 'bob');
    assert.equal(ing.gateway.ready(), true, 'a JWKS that loaded once keeps the gateway ready');
  });

  test('a port that cannot be bound refuses the reload whole: the listener bound for it is closed again', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const blocked = (blocker.address() as AddressInfo).port;
    const free = net.createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const freePort = (free.address() as AddressInfo).port;
    await new Promise<void>((resolve) => free.close(() => resolve()));
    const rt = ing.gateway.runtime();
    editConfig(ing, (c) => {
      const like = (name: string, port: number) => ({ ...structuredClone(c.listeners[0]), name, port, hosts: [{ ...structuredClone(c.listeners[0].hosts[0]), name: `${name}-host` }] });
      c.listeners.push(like('first', freePort), like('second', blocked));
      c.routes.push({ name: 'never', match: { path: { prefix: '/never' } }, upstream: 'echo' });
    });
    await assert.rejects(reloadFrom(ing), /\/listeners\/2\/port|cannot listen on 127\.0\.0\.1:\d+/);
    blocker.close();
    assert.equal(ing.gateway.runtime(), rt, 'the running runtime stays');
    assert.deepEqual([...ing.gateway.ports.keys()], ['edge']);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: freePort }, () => resolve(false));
      socket.on('error', () => resolve(true));
    });
    assert.equal(refused, true, 'the listener bound for the refused config was closed again');
    assert.equal((await request(ing.port, ing.caPem, { path: '/never/x' })).status, 404, 'routes of the refused config never served');
  });
});

describe('readiness', () => {
  test('not ready while a JWKS has never loaded; ready once it has, without any request', async () => {
    let up = false;
    let real = '';
    const gate = http.createServer((_req, res) => {
      if (!up) return void res.writeHead(503).end();
      void fetch(real).then(async (r) => res.writeHead(200, { 'content-type': 'application/json' }).end(await r.text()));
    });
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
    const ing = await startTestIngress((config) => {
      real = config.jwtProviders[0].jwksUri;
      config.jwtProviders[0].jwksUri = `http://127.0.0.1:${(gate.address() as AddressInfo).port}/jwks`;
      config.jwtProviders[0].jwksCooldownSeconds = 1;
    });
    try {
      assert.equal(ing.gateway.ready(), false, 'listeners are bound but the JWKS never loaded');
      assert.equal(ing.gateway.runtime().jwt.status().test?.state, 'empty');
      up = true;
      await until('readiness', () => (ing.gateway.ready() ? true : undefined), 10_000);
      assert.equal(ing.gateway.runtime().jwt.status().test?.state, 'fresh');
    } finally {
      await ing.close();
      gate.close();
    }
  });
});
