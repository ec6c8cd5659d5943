// The documented PKI round trip, end to end: `portcullis certs init` and `certs issue` (the real CLI),
// then a gateway configured with those files terminating TLS for a client and re-originating mutual TLS
// with its issued SVID to a backend holding another issued SVID.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { startGateway, type Gateway } from '../../../gateway/app.js';
import { loadConfigFile } from '../../../gateway/config/load.js';
import { createLogger } from '../../../gateway/core/log.js';
import { startEchoServer, type EchoServer } from '../../../gateway/dev/demo-backend.js';
import { request } from '../../helpers/ingress.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../../..');
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli.ts'), 'certs', ...args], { cwd: ROOT });

describe('certs CLI → gateway round trip', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-pki-'));
  const pki = path.join(dir, 'pki');
  const read = (name: string) => fs.readFileSync(path.join(pki, name), 'utf8');
  let backend: EchoServer;
  let gateway: Gateway;

  before(async () => {
    await cli('init', '--dir', pki, '--trust-domain', 'shop.example', '--key-type', 'ec');
    await cli('issue', '--dir', pki, '--spiffe-id', 'spiffe://shop.example/ns/edge/sa/gateway', '--dns', 'localhost', '--out', path.join(pki, 'gateway'));
    await cli('issue', '--dir', pki, '--spiffe-id', 'spiffe://shop.example/ns/shop/sa/orders', '--ip', '127.0.0.1', '--out', path.join(pki, 'orders'));
    backend = await startEchoServer({ certPem: read('orders.pem'), keyPem: read('orders-key.pem'), caPem: read('ca.pem') });
    const configFile = path.join(dir, 'portcullis.yaml');
    fs.writeFileSync(
      configFile,
      stringify({
        version: 'v1',
        mesh: { trustDomain: 'shop.example', svid: { cert: 'pki/gateway.pem', key: 'pki/gateway-key.pem' }, bundle: 'pki/ca.pem' },
        listeners: [
          {
            name: 'edge',
            address: '127.0.0.1',
            port: 0,
            hosts: [{ name: 'main', hostnames: ['localhost'], tls: { mode: 'terminate', certificate: { cert: 'pki/gateway.pem', key: 'pki/gateway-key.pem' } } }],
          },
        ],
        upstreams: [{ name: 'orders', url: backend.url, tls: { spiffeId: 'spiffe://shop.example/ns/shop/sa/orders' } }],
        routes: [{ name: 'orders', match: { path: { prefix: '/orders' } }, upstream: 'orders' }],
        policies: [{ name: 'orders', action: 'ALLOW', routes: ['orders'], rules: [{}] }],
      }),
    );
    gateway = await startGateway(loadConfigFile(configFile).config, { logger: createLogger('silent') });
  });
  after(async () => {
    await gateway.close(1000);
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('openssl verifies the issued SVIDs against the CA', async () => {
    const { stdout } = await run('openssl', ['verify', '-CAfile', path.join(pki, 'ca.pem'), path.join(pki, 'gateway.pem'), path.join(pki, 'orders.pem')]);
    assert.match(stdout, /gateway\.pem: OK/);
    assert.match(stdout, /orders\.pem: OK/);
  });

  test('a client reaches the backend through the gateway, which presents its issued SVID', async () => {
    const res = await request(gateway.ports.get('edge')!, read('ca.pem'), { path: '/orders/42' });
    assert.equal(res.status, 200);
    assert.equal(res.json().peer, 'spiffe://shop.example/ns/edge/sa/gateway');
  });

  test('certs inspect reports the chain as verified', async () => {
    const { stdout } = await cli('inspect', path.join(pki, 'gateway.pem'), '--bundle', path.join(pki, 'ca.pem'));
    assert.match(stdout, /spiffe:\/\/shop\.example\/ns\/edge\/sa\/gateway/);
    assert.match(stdout, /verif/i);
  });
});
