// Workloads authenticate to the egress gateway with their X.509-SVID over an HTTPS proxy listener; the SPIFFE ID
// is the identity the allowlist sees.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyAgent, request } from 'undici';
import { issueCertificate } from '../../../certs/issue.js';
import { testPki } from '../../helpers/pki.js';
import { createEgressServer } from '../../../gateway/egress/server.js';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { curl, silentLogger, startHttpUpstream, startProxy, startTlsUpstream, tempDir, type Proxy, type TempDir, type Upstream } from './harness.js';

const BILLING = 'spiffe://portcullis.test/ns/billing/sa/api';

describe('HTTPS proxy listener with client certificates', () => {
  let dir: TempDir;
  let up: Upstream;
  let proxy: Proxy;
  const files: Record<string, string> = {};

  before(async () => {
    const pki = testPki();
    dir = tempDir();
    const serverCert = pki.issue({ ipAddresses: ['127.0.0.1'] });
    const client = pki.issue({ spiffeId: BILLING });
    const other = pki.issue({ spiffeId: 'spiffe://portcullis.test/ns/other/sa/x' });
    // Same path, other trust domain's CA: only the client CA decides, never the SPIFFE ID text.
    const foreign = issueCertificate(pki.otherCa, { spiffeId: 'spiffe://other.test/ns/billing/sa/api' });
    files.ca = dir.file('ca.pem', pki.ca.certPem);
    files.serverCert = dir.file('server.pem', serverCert.certPem);
    files.serverKey = dir.file('server-key.pem', serverCert.keyPem);
    files.clientCert = dir.file('client.pem', client.certPem);
    files.clientKey = dir.file('client-key.pem', client.keyPem);
    files.otherCert = dir.file('other.pem', other.certPem);
    files.otherKey = dir.file('other-key.pem', other.keyPem);
    files.foreignCert = dir.file('foreign.pem', foreign.certPem);
    files.foreignKey = dir.file('foreign-key.pem', foreign.keyPem);
    up = await startHttpUpstream('billing-partner');
    proxy = await startProxy(dir, {
      listener: { tls: { certificate: { cert: files.serverCert, key: files.serverKey }, clientCa: files.ca } },
      allow: [{ name: 'billing', identities: ['spiffe://portcullis.test/ns/billing/*'], hosts: ['partner.test'], ports: [up.port] }],
      staticHosts: [{ host: 'partner.test', addresses: ['127.0.0.1'] }],
      addressGuard: { allowAddresses: ['127.0.0.1'] },
    });
  });

  after(async () => {
    await proxy.close();
    await up.close();
    dir.remove();
  });

  const viaProxy = (cert: string, key: string) => [
    '--proxy', `https://127.0.0.1:${proxy.port}`, '--proxy-cacert', files.ca!, '--proxy-cert', cert, '--proxy-key', key,
  ];

  test('curl --proxy https:// with the billing SVID reaches the partner', async () => {
    const r = await curl([...viaProxy(files.clientCert!, files.clientKey!), `http://partner.test:${up.port}/pay`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from billing-partner');
  });

  test('another workload of the same trust domain is denied (403)', async () => {
    const r = await curl([...viaProxy(files.otherCert!, files.otherKey!), '-i', `http://partner.test:${up.port}/pay`]);
    assert.match(r.stdout, /^HTTP\/1\.1 403/);
    assert.match(r.stdout, /x-portcullis-code: GW_EGRESS_DENIED/i);
  });

  test('a certificate from another CA does not complete the handshake', async () => {
    const before = up.connections;
    const r = await curl([...viaProxy(files.foreignCert!, files.foreignKey!), `http://partner.test:${up.port}/pay`]);
    assert.notEqual(r.code, 0);
    assert.equal(up.connections, before);
  });

  test('undici ProxyAgent with proxyTls client certificate', async () => {
    const pki = testPki();
    const client = pki.issue({ spiffeId: BILLING });
    const dispatcher = new ProxyAgent({
      uri: `https://127.0.0.1:${proxy.port}`,
      proxyTls: { ca: pki.ca.certPem, cert: client.certPem, key: client.keyPem },
    });
    try {
      const res = await request(`http://partner.test:${up.port}/undici`, { dispatcher });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'hello from billing-partner');
    } finally {
      await dispatcher.close();
    }
  });

  test('the audit record names the SPIFFE ID', async () => {
    await proxy.close();
    const records = proxy.records();
    assert.ok(records.some((r) => r.identity === BILLING && r.identityKind === 'spiffe' && r.allow === true));
    assert.ok(records.some((r) => r.identity === 'spiffe://portcullis.test/ns/other/sa/x' && r.allow === false));
  });
});

test('clientAuth optional: a caller without a certificate is anonymous and gets 407', async () => {
  const pki = testPki();
  const dir = tempDir();
  const serverCert = pki.issue({ ipAddresses: ['127.0.0.1'] });
  const ca = dir.file('ca.pem', pki.ca.certPem);
  const server = createEgressServer(
    {
      listener: {
        port: 0,
        tls: { certificate: { cert: dir.file('s.pem', serverCert.certPem), key: dir.file('s-key.pem', serverCert.keyPem) }, clientAuth: 'optional', clientCa: ca },
      },
      allow: [{ name: 'billing', identities: [BILLING], hosts: ['partner.test'] }],
    },
    { logger: silentLogger },
  );
  const { port } = await server.listen();
  try {
    const r = await curl(['--proxy', `https://127.0.0.1:${port}`, '--proxy-cacert', ca, '-i', 'http://partner.test/']);
    assert.match(r.stdout, /^HTTP\/1\.1 407/);
    assert.match(r.stdout, /proxy-authenticate: SPIFFE realm="portcullis-egress"/i);
  } finally {
    await server.close();
    dir.remove();
  }
});

test('a TLS listener without a client CA fails at creation', () => {
  const pki = testPki();
  const dir = tempDir();
  const cert = pki.issue({ ipAddresses: ['127.0.0.1'] });
  try {
    assert.throws(
      () =>
        createEgressServer(
          { listener: { port: 0, tls: { certificate: { cert: dir.file('c.pem', cert.certPem), key: dir.file('k.pem', cert.keyPem) } } }, allow: [] },
          { logger: silentLogger },
        ),
      /clientCa or the mesh trust bundle/,
    );
  } finally {
    dir.remove();
  }
});

test('the listener serves its own certificate for the Service name: curl with HTTPS_PROXY=https://… works, and a reload rotates it', async () => {
  const pki = testPki();
  const dir = tempDir();
  const upstream = await startTlsUpstream();
  const first = pki.issue({ dnsNames: ['egress.test'] });
  const client = pki.issue({ spiffeId: BILLING });
  const ca = dir.file('ca.pem', pki.ca.certPem);
  const cert = dir.file('egress.pem', first.certPem);
  const key = dir.file('egress-key.pem', first.keyPem);
  const clientCert = dir.file('client.pem', client.certPem);
  const clientKey = dir.file('client-key.pem', client.keyPem);
  const config = {
    listener: { port: 0, address: '127.0.0.1', tls: { certificate: { cert, key }, clientCa: ca } },
    allow: [{ name: 'billing', identities: [BILLING], hosts: ['secure.test'], ports: [upstream.port] }],
    staticHosts: [{ host: 'secure.test', addresses: ['127.0.0.1'] }],
    addressGuard: { allowAddresses: ['127.0.0.1'] },
  };
  const server = createEgressServer(config, { logger: silentLogger });
  const { port } = await server.listen();
  /** The serial number of the certificate a new handshake with the proxy gets. */
  const servedSerial = () =>
    new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'egress.test', ca: pki.ca.certPem, cert: client.certPem, key: client.keyPem }, () => {
        resolve(socket.getPeerX509Certificate()!.serialNumber);
        socket.destroy();
      });
      socket.once('error', reject);
    });
  try {
    const { stdout } = await promisify(execFile)(
      'curl',
      ['-sS', '--max-time', '10', '--resolve', `egress.test:${port}:127.0.0.1`, '--proxy-cacert', ca, '--proxy-cert', clientCert, '--proxy-key', clientKey,
        '--cacert', ca, `https://secure.test:${upstream.port}/`],
      { env: { ...process.env, HTTPS_PROXY: `https://egress.test:${port}` } },
    );
    assert.match(stdout, /^tls hello/);

    assert.equal(await servedSerial(), new X509Certificate(first.certPem).serialNumber);
    const second = pki.issue({ dnsNames: ['egress.test'] });
    for (const [file, pem] of [[cert, second.certPem], [key, second.keyPem]] as const) {
      writeFileSync(`${file}.tmp`, pem);
      renameSync(`${file}.tmp`, file);
    }
    server.apply(server.build(config, {}));
    assert.equal(await servedSerial(), new X509Certificate(second.certPem).serialNumber);
  } finally {
    await server.close();
    await upstream.close();
    dir.remove();
  }
});
