// The admin plane over real sockets on 127.0.0.1: open health/readiness/metrics, the secured /config and /reload
// with a bearer token and with mutual TLS (SPIFFE ID allowlist), and their absence when neither is configured.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdminServer, type AdminServer } from '../../../gateway/admin/server.js';
import type { Config } from '../../../gateway/config/schema.js';
import { ReloadRefused } from '../../../gateway/core/reloadable.js';
import type { ReloadResult } from '../../../gateway/reload.js';
import { REDACTED } from '../../../gateway/admin/redact.js';
import { issueCertificate } from '../../../certs/issue.js';
import { createLogger } from '../../../gateway/core/log.js';
import { createMetrics } from '../../../gateway/core/metrics.js';
import { until } from '../../helpers/net.js';
import { testPki } from '../../helpers/pki.js';

const TOKEN = 'admin-token-0123456789abcdef';
const logger = createLogger('silent');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface Call {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  tls?: { ca: string; cert?: string; key?: string };
}

function call(port: number, path: string, { method = 'GET', headers = {}, body, tls }: Call = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, method, headers, agent: false as const };
    const req = tls
      ? httpsRequest({ ...options, ca: tls.ca, cert: tls.cert, key: tls.key, servername: 'localhost' })
      : httpRequest(options);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const runningConfig = {
  version: 'v1',
  redis: { url: 'redis://:s3cret-pass@redis.internal:6379/0' },
  jwtProviders: [
    { name: 'inline', issuer: 'https://idp', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'xx', y: 'yy', d: 'PRIVATE-D' }] } },
    { name: 'text', issuer: 'https://idp2', jwks: JSON.stringify({ keys: [{ kty: 'RSA', n: 'nn', e: 'AQAB', d: 'PRIVATE-RSA', p: 'P', q: 'Q' }] }) },
  ],
  admin: { tokenFile: '/etc/portcullis/admin-token' },
  mesh: { svid: { cert: '/certs/svid.pem', key: '/certs/svid-key.pem' } },
};

describe('admin plane with a bearer token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-'));
  const tokenFile = join(dir, 'token');
  let ready = false;
  let nextReload: ReloadResult = { ok: true };
  let reloads = 0;
  let admin: AdminServer;
  let port: number;
  const metrics = createMetrics();

  before(async () => {
    writeFileSync(tokenFile, `${TOKEN}\n`);
    admin = createAdminServer(
      { port: 0, tokenFile },
      {
        logger,
        registry: metrics.registry,
        ready: () => ready,
        reload: async () => {
          reloads++;
          return nextReload;
        },
        config: () => runningConfig,
      },
    );
    ({ port } = await admin.listen());
  });
  after(async () => {
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('health, readiness and metrics are open', async () => {
    assert.equal((await call(port, '/healthz')).status, 200);
    const notReady = await call(port, '/readyz');
    assert.equal(notReady.status, 503);
    assert.equal(JSON.parse(notReady.body).code, 'GW_UNAVAILABLE');
    ready = true;
    assert.equal((await call(port, '/readyz')).status, 200);
    metrics.rateLimitHit('api');
    const scrape = await call(port, '/metrics');
    assert.equal(scrape.status, 200);
    assert.match(String(scrape.headers['content-type']), /^text\/plain/);
    assert.match(scrape.body, /portcullis_rate_limit_hits_total\{limit="api"\} 1/);
    assert.match(scrape.body, /process_cpu_user_seconds_total/);
  });

  test('/config and /reload without credentials or with a wrong token: 401 with a Bearer challenge', async () => {
    for (const [path, method] of [['/config', 'GET'], ['/reload', 'POST']] as const) {
      const none = await call(port, path, { method });
      assert.equal(none.status, 401);
      assert.equal(JSON.parse(none.body).code, 'GW_AUTHN_INVALID_TOKEN');
      assert.equal(none.headers['www-authenticate'], 'Bearer realm="portcullis-admin"');
      for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, TOKEN]) {
        assert.equal((await call(port, path, { method, headers: { authorization } })).status, 401, authorization);
      }
    }
    assert.equal(reloads, 0);
  });

  test('/config with the token: the running config with secrets redacted', async () => {
    const reply = await call(port, '/config', { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['cache-control'], 'no-store');
    assert.doesNotMatch(reply.body, /s3cret-pass|PRIVATE-D|PRIVATE-RSA/);
    const shown = JSON.parse(reply.body);
    assert.equal(shown.redis.url, `redis://${REDACTED}@redis.internal:6379/0`);
    assert.equal(shown.jwtProviders[0].jwks.keys[0].d, REDACTED);
    assert.equal(shown.jwtProviders[0].jwks.keys[0].x, 'xx', 'public members stay');
    const textKey = JSON.parse(shown.jwtProviders[1].jwks).keys[0];
    assert.deepEqual([textKey.d, textKey.p, textKey.q, textKey.n], [REDACTED, REDACTED, REDACTED, 'nn']);
    assert.equal(shown.admin.tokenFile, '/etc/portcullis/admin-token', 'paths stay');
    assert.equal(shown.mesh.svid.key, '/certs/svid-key.pem');
  });

  test('/reload with the token: 200 with the result, 400 with the issues', async () => {
    const ok = await call(port, '/reload', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { ok: true });
    nextReload = { ok: false, issues: [{ file: 'gateway.yaml', path: '/routes/0/upstream', message: 'no upstream named "x"' }] };
    const bad = await call(port, '/reload', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(bad.status, 400);
    assert.deepEqual(JSON.parse(bad.body), nextReload);
    assert.equal(reloads, 2);
  });

  test('wrong methods, unknown paths and bodies on /reload are refused', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const get = await call(port, '/reload', { headers: auth });
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST');
    const post = await call(port, '/healthz', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal((await call(port, '/healthz', { method: 'HEAD' })).status, 200);
    assert.equal((await call(port, '/nope')).status, 404);
    assert.equal((await call(port, '/config/../config')).status, 404);
    const big = await call(port, '/reload', { method: 'POST', headers: auth, body: 'x'.repeat(10_000) });
    assert.equal(big.status, 413);
    assert.equal(reloads, 2);
  });

  // CVE-2018-5702 (Transmission's RPC on loopback): a page the operator visits rebinds its name to the plane.
  test('DNS rebinding: IP literals and localhost are answered, any other Host gets 421', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (const host of [`localhost:${port}`, `LocalHost.:${port}`, `127.0.0.1:${port}`, '127.0.0.1', `[::1]:${port}`, `10.1.2.3:${port}`]) {
      assert.equal((await call(port, '/metrics', { headers: { host } })).status, 200, host);
      assert.equal((await call(port, '/config', { headers: { host, ...auth } })).status, 200, host);
    }
    for (const host of ['rebind.attacker.example', `localhost.attacker.example:${port}`, `[localhost]:${port}`, 'fe80::1', '127.0.0.1.attacker.example']) {
      for (const [path, headers] of [['/metrics', {}], ['/healthz', {}], ['/readyz', {}], ['/config', auth], ['/nope', {}]] as const) {
        const reply = await call(port, path, { headers: { ...headers, host } });
        assert.equal(reply.status, 421, `${host} ${path}`);
        assert.deepEqual({ ...JSON.parse(reply.body), requestId: undefined }, { error: 'misdirected request: host not served here', code: 'GW_HOST_MISDIRECTED', reason: 'admin_host_not_allowed', requestId: undefined });
      }
    }
    const refused = await call(port, '/reload', { method: 'POST', headers: { ...auth, host: 'rebind.attacker.example' } });
    assert.equal(refused.status, 421);
    assert.equal(reloads, 2, 'a refused Host reloads nothing');
  });

  test('HTTP/1.0 without Host names no origin and is answered', async () => {
    const head = await new Promise<string>((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1', () => socket.end('GET /healthz HTTP/1.0\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(head, /^HTTP\/1\.[01] 200 /);
  });

  test('the Bearer scheme is matched without case (RFC 9110 §11.1)', async () => {
    for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
      assert.equal((await call(port, '/config', { headers: { authorization: `${scheme} ${TOKEN}` } })).status, 200, scheme);
      assert.equal((await call(port, '/config', { headers: { authorization: `${scheme} ${TOKEN}x` } })).status, 401, scheme);
    }
  });
});

describe('admin plane without credentials configured', () => {
  test('/config and /reload do not exist; health stays', async () => {
    let reloaded = false;
    const admin = createAdminServer(
      { port: 0 },
      {
        logger,
        registry: createMetrics().registry,
        ready: () => true,
        reload: async () => {
          reloaded = true;
          return { ok: true };
        },
        config: () => runningConfig,
      },
    );
    const { port } = await admin.listen();
    try {
      assert.equal((await call(port, '/healthz')).status, 200);
      assert.equal((await call(port, '/config')).status, 404);
      assert.equal((await call(port, '/reload', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
      assert.equal(reloaded, false);
    } finally {
      await admin.close();
    }
  });

  test('a short token file is refused at creation', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-'));
    try {
      writeFileSync(join(dir, 'token'), 'short\n');
      const deps = { logger, registry: createMetrics().registry, ready: () => true, reload: async () => ({ ok: true as const }), config: () => ({}) };
      assert.throws(() => createAdminServer({ port: 0, tokenFile: join(dir, 'token') }, deps), /at least 16 characters/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('admin plane over mutual TLS', () => {
  const pki = testPki();
  const operator = `spiffe://${pki.trustDomain}/ns/ops/sa/operator`;
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-tls-'));
  const server = pki.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const allowed = pki.issue({ spiffeId: operator });
  const other = pki.issue({ spiffeId: `spiffe://${pki.trustDomain}/ns/apps/sa/web` });
  let admin: AdminServer;
  let port: number;
  const caOnly = { ca: pki.ca.certPem };

  before(async () => {
    writeFileSync(join(dir, 'cert.pem'), server.certPem);
    writeFileSync(join(dir, 'key.pem'), server.keyPem);
    writeFileSync(join(dir, 'ca.pem'), pki.ca.certPem);
    admin = createAdminServer(
      {
        port: 0,
        tls: { certificate: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }, clientCa: join(dir, 'ca.pem'), allowedSpiffeIds: [operator] },
      },
      { logger, registry: createMetrics().registry, ready: () => true, reload: async () => ({ ok: true }), config: () => runningConfig },
    );
    ({ port } = await admin.listen());
  });
  after(async () => {
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an allowed SPIFFE ID may read the config and reload', async () => {
    const tls = { ...caOnly, cert: allowed.certPem, key: allowed.keyPem };
    const config = await call(port, '/config', { tls });
    assert.equal(config.status, 200);
    assert.doesNotMatch(config.body, /s3cret-pass/);
    assert.equal((await call(port, '/reload', { method: 'POST', tls })).status, 200);
  });

  test('another SPIFFE ID of the trust domain: 403', async () => {
    const reply = await call(port, '/config', { tls: { ...caOnly, cert: other.certPem, key: other.keyPem } });
    assert.equal(reply.status, 403);
    assert.equal(JSON.parse(reply.body).reason, 'spiffe_id_not_allowed');
  });

  test('no client certificate: 401; a certificate from another CA: refused', async () => {
    const none = await call(port, '/config', { tls: caOnly });
    assert.equal(none.status, 401);
    const foreignLeaf = issueCertificate(pki.otherCa, { spiffeId: operator });
    const untrusted = await call(port, '/config', { tls: { ...caOnly, cert: foreignLeaf.certPem, key: foreignLeaf.keyPem } });
    assert.equal(untrusted.status, 403);
    assert.equal(JSON.parse(untrusted.body).code, 'GW_AUTHN_CLIENT_CERT');
  });

  test('health and metrics need no client certificate', async () => {
    assert.equal((await call(port, '/healthz', { tls: caOnly })).status, 200);
    assert.equal((await call(port, '/metrics', { tls: caOnly })).status, 200);
  });
});

describe('admin plane reload', () => {
  const pki = testPki();
  const operator = `spiffe://${pki.trustDomain}/ns/ops/sa/operator`;
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-reload-'));
  const file = (name: string) => join(dir, name);
  const client = pki.issue({ spiffeId: operator });
  const adminConfig = (port: number) => ({
    port,
    address: '127.0.0.1',
    tokenFile: file('token'),
    tls: { certificate: { cert: file('cert.pem'), key: file('key.pem') }, clientCa: file('ca.pem'), allowedSpiffeIds: [operator] },
  });
  const config = (port: number) => ({ version: 'v1', admin: adminConfig(port) }) as unknown as Config;
  const servedSerial = (port: number) =>
    new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem }, () => {
        resolve(socket.getPeerCertificate().serialNumber.replace(/^0+/, ''));
        socket.destroy();
      });
      socket.on('error', reject);
    });
  const issueServer = () => {
    const cert = pki.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    writeFileSync(file('cert.pem'), cert.certPem);
    writeFileSync(file('key.pem'), cert.keyPem);
    return cert.serial.replace(/^0+/, '');
  };
  let admin: AdminServer;
  let port: number;

  before(async () => {
    writeFileSync(file('ca.pem'), pki.ca.certPem);
    writeFileSync(file('token'), TOKEN);
    issueServer();
    admin = createAdminServer(adminConfig(0), { logger, registry: createMetrics().registry, ready: () => true, reload: async () => ({ ok: true }), config: () => ({}) });
    ({ port } = await admin.listen());
  });
  after(async () => {
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a rotated certificate and token take effect on the same socket', async () => {
    const serial = issueServer();
    writeFileSync(file('token'), `${TOKEN}-rotated`);
    (await admin.prepare(config(0))).commit();
    assert.equal(await servedSerial(port), serial, 'the next handshake gets the new certificate');
    const tls = { ca: pki.ca.certPem };
    assert.equal((await call(port, '/config', { tls, headers: { authorization: `Bearer ${TOKEN}-rotated` } })).status, 200);
    assert.equal((await call(port, '/config', { tls, headers: { authorization: `Bearer ${TOKEN}` } })).status, 401);
    assert.equal((await call(port, '/config', { tls: { ...tls, cert: client.certPem, key: client.keyPem } })).status, 200);
  });

  test('a key that does not match its certificate is refused before anything changes', async () => {
    const serial = await servedSerial(port);
    writeFileSync(file('key.pem'), pki.issue({ dnsNames: ['localhost'] }).keyPem);
    await assert.rejects(admin.prepare(config(0)), (err: Error) => err instanceof ReloadRefused && err.path === '/admin');
    assert.equal(await servedSerial(port), serial);
    issueServer();
  });
});

describe('admin plane connection limits', () => {
  let admin: AdminServer;
  let port: number;
  before(async () => {
    admin = createAdminServer({ port: 0 }, { logger, registry: createMetrics().registry, ready: () => true, reload: async () => ({ ok: true }), config: () => runningConfig });
    ({ port } = await admin.listen());
  });
  after(() => admin.close());

  const open = () =>
    new Promise<Socket>((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1', () => resolve(socket));
      socket.on('error', reject);
    });

  /** Writes `text` and resolves with everything read until the plane closes the connection. */
  const untilClosed = (socket: Socket, text: string) =>
    new Promise<string>((resolve) => {
      let read = '';
      socket.on('data', (c: Buffer) => (read += c.toString()));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(read));
      socket.write(text);
    });

  test('at most 64 connections: the next is closed unanswered, and freed places serve again', async () => {
    const held = await Promise.all(Array.from({ length: 64 }, open));
    try {
      const extra = await open();
      const answer = await untilClosed(extra, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      assert.equal(answer, '');
    } finally {
      for (const socket of held) socket.destroy();
    }
    await until('a free place', async () => ((await call(port, '/healthz').catch(() => undefined))?.status === 200 ? true : undefined), 5_000);
  });

  test('a request head that never completes is cut after the 10 s headers timeout, checked every second', { timeout: 20_000 }, async () => {
    const socket = await open();
    const started = Date.now();
    const answer = await untilClosed(socket, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
    const took = Date.now() - started;
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.ok(took >= 9_500 && took < 12_500, `cut after ${took} ms`);
  });
});
