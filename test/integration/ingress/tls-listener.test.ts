// One port, both TLS modes, chosen by SNI: termination with per-host certificates and client-certificate
// policy, passthrough that never decrypts, refusal of unknown names, and Host bound to SNI (421).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startEchoServer, type EchoServer } from '../../../gateway/dev/demo-backend.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';

const run = promisify(execFile);

function handshake(port: number, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options }, () => resolve(socket));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before handshake')));
  });
}

describe('edge listener: SNI routing on one port', () => {
  const pki = testPki();
  let ing: TestIngress;
  let passthroughBackend: EchoServer;
  const passthroughCert = pki.issue({ dnsNames: ['legacy.test'], spiffeId: `spiffe://${pki.trustDomain}/ns/legacy/sa/app` });
  const client = pki.issue({ spiffeId: `spiffe://${pki.trustDomain}/ns/ops/sa/admin` });

  before(async () => {
    passthroughBackend = await startEchoServer({ certPem: passthroughCert.certPem, keyPem: passthroughCert.keyPem, caPem: pki.ca.certPem });
    ing = await startTestIngress((config) => {
      config.listeners[0].hosts.push(
        {
          name: 'secure',
          hostnames: ['secure.test'],
          tls: { mode: 'terminate', certificate: { cert: 'server.pem', key: 'server-key.pem' }, clientAuth: 'required' },
        },
        {
          name: 'maybe',
          hostnames: ['*.wild.test'],
          tls: { mode: 'terminate', certificate: { cert: 'server.pem', key: 'server-key.pem' }, clientAuth: 'optional' },
        },
        { name: 'legacy', hostnames: ['legacy.test'], tls: { mode: 'passthrough', upstream: 'legacy' } },
      );
      config.upstreams.push({ name: 'legacy', url: `tcp://127.0.0.1:${passthroughBackend.port}` });
      config.routes.push({ name: 'ops', match: { hosts: ['secure', 'maybe'], path: { prefix: '/ops' } }, upstream: 'echo' });
      config.policies.push({
        name: 'ops',
        action: 'ALLOW',
        routes: ['ops'],
        rules: [{ from: [{ source: { principals: [`${pki.trustDomain}/ns/ops/sa/admin`] } }] }],
      });
    });
  });
  after(async () => {
    await ing.close();
    await passthroughBackend.close();
  });

  test('an SNI that names no host is refused, never sent to a default', async () => {
    await assert.rejects(handshake(ing.port, { servername: 'unknown.test', ca: ing.caPem }));
    await assert.rejects(handshake(ing.port, { ca: ing.caPem, checkServerIdentity: () => undefined }), 'no SNI at all');
    assert.ok(ing.logs.some((l) => l.event === 'TLS_REFUSED' && l.reason === 'sni_unknown' && l.sni === 'unknown.test'));
  });

  test('plaintext on the TLS port is refused', async () => {
    const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${ing.port}/public/x`]).catch((e) => e);
    assert.equal(String(stdout), '000');
  });

  test('passthrough: the client sees the upstream certificate, not the gateway', async () => {
    const socket = await handshake(ing.port, { servername: 'legacy.test', ca: pki.ca.certPem, cert: client.certPem, key: client.keyPem });
    const cert = socket.getPeerCertificate();
    assert.match(String(cert.subjectaltname), /URI:spiffe:\/\/portcullis\.test\/ns\/legacy\/sa\/app/);
    socket.destroy();
    const { stdout } = await run('curl', [
      '-s', '--cacert', '-', '--resolve', `legacy.test:${ing.port}:127.0.0.1`,
      '--cert-type', 'PEM', '--cert', `${ing.writeFile('client.pem', client.certPem + client.keyPem)}`,
      `https://legacy.test:${ing.port}/through`,
    ].map((a) => (a === '-' ? ing.writeFile('ca-copy.pem', pki.ca.certPem) : a)));
    assert.equal(JSON.parse(stdout).path, '/through');
    assert.equal(passthroughBackend.hits, 1);
  });

  test('Host must match the virtual host of the SNI: another host on the listener gets 421', async () => {
    const res = await request(ing.port, ing.caPem, { path: '/ops/x', headers: { host: 'secure.test' } });
    assert.equal(res.status, 421);
    assert.equal(res.json().code, 'GW_HOST_MISDIRECTED');
    const unknown = await request(ing.port, ing.caPem, { path: '/public/x', headers: { host: 'nowhere.test' } });
    assert.equal(unknown.status, 404);
  });

  test('a host requiring client certificates refuses the handshake without one', async () => {
    await assert.rejects(request(ing.port, ing.caPem, { servername: 'secure.test', headers: { host: 'secure.test' }, path: '/ops/x' }));
    const ok = await request(ing.port, ing.caPem, {
      servername: 'secure.test',
      headers: { host: 'secure.test' },
      path: '/ops/x',
      cert: client.certPem,
      key: client.keyPem,
    });
    assert.equal(ok.status, 200);
  });

  test('optional client certificates: wildcard host, anonymous is denied by policy, a valid SVID is allowed, an expired one refused', async () => {
    const anonymous = await request(ing.port, ing.caPem, { servername: 'a.b.wild.test', headers: { host: 'a.b.wild.test' }, path: '/ops/x' });
    assert.equal(anonymous.status, 403);
    const allowed = await request(ing.port, ing.caPem, {
      servername: 'x.wild.test',
      headers: { host: 'x.wild.test' },
      path: '/ops/x',
      cert: client.certPem,
      key: client.keyPem,
    });
    assert.equal(allowed.status, 200);
    const expired = pki.expired({ spiffeId: `spiffe://${pki.trustDomain}/ns/ops/sa/admin` });
    const rejected = await request(ing.port, ing.caPem, {
      servername: 'x.wild.test',
      headers: { host: 'x.wild.test' },
      path: '/ops/x',
      cert: expired.certPem,
      key: expired.keyPem,
    });
    assert.equal(rejected.status, 403);
    assert.equal(rejected.json().code, 'GW_AUTHN_CLIENT_CERT');
  });

  test('the wildcard does not match its apex', async () => {
    await assert.rejects(handshake(ing.port, { servername: 'wild.test', ca: ing.caPem }));
  });

  test('TLS 1.1 is refused; TLS 1.2 with a weak cipher is refused', async () => {
    await assert.rejects(handshake(ing.port, { servername: 'localhost', ca: ing.caPem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }));
    await assert.rejects(
      handshake(ing.port, { servername: 'localhost', ca: ing.caPem, maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA:DES-CBC3-SHA' }),
    );
    const s = await handshake(ing.port, { servername: 'localhost', ca: ing.caPem, maxVersion: 'TLSv1.2' });
    assert.match(String(s.getCipher().name), /ECDHE.*GCM|CHACHA20/);
    s.destroy();
  });

  test('openssl s_client sees the gateway certificate for a terminated name and ALPN h2', async () => {
    const { stdout } = await run('sh', [
      '-c',
      `echo | openssl s_client -connect 127.0.0.1:${ing.port} -servername localhost -alpn h2 -CAfile ${ing.dir}/ca.pem 2>/dev/null`,
    ]);
    assert.match(stdout, /Verify return code: 0 \(ok\)/);
    assert.match(stdout, /ALPN protocol: h2/);
  });

  test('HTTP/2 requests go through the same pipeline', async () => {
    const session = http2.connect(`https://localhost:${ing.port}`, { ca: ing.caPem, servername: 'localhost', host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/public/h2', ':method': 'GET' });
      let data = '';
      stream.on('data', (c: Buffer) => (data += c));
      stream.on('end', () => resolve(data));
      stream.on('error', reject);
    });
    session.close();
    assert.equal(JSON.parse(body).path, '/public/h2');
  });
});
