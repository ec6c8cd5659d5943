// `mesh.revoked` on every mutual-TLS path, with one config: ingress hosts with their own `clientCa` (required and
// optional), upstreams verified with their own `tls.ca` or by DNS/IP name, the admin plane's client certificates
// and the egress proxy's SVIDs. Each path refuses the revoked certificate in its own way and accepts a certificate
// from the same CA that is not listed; a reload that lists it refuses it on the next handshake.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { createCa, issueCertificate } from '../../../certs/issue.js';
import type { CertKeyPem } from '../../../certs/types.js';
import { createAdminServer, type AdminServer } from '../../../gateway/admin/server.js';
import { loadConfigFile } from '../../../gateway/config/load.js';
import type { Config } from '../../../gateway/config/schema.js';
import { createMetrics } from '../../../gateway/core/metrics.js';
import { createReloader, type Reloader } from '../../../gateway/reload.js';
import { startEchoServer, type EchoServer } from '../../../gateway/dev/demo-backend.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';
import { startHttpUpstream, type Upstream } from '../egress/harness.js';

const pki = testPki();
const OPS = `spiffe://${pki.trustDomain}/ns/ops/sa/admin`;
const FIRED = `spiffe://${pki.trustDomain}/ns/ops/sa/fired`;
const BILLING = `spiffe://${pki.trustDomain}/ns/billing/sa/api`;
const PRIVATE_BACKEND = `spiffe://${pki.trustDomain}/ns/private/sa/backend`;

/** A CA outside the mesh bundle: hosts and upstreams name it with their own `clientCa` / `tls.ca`. */
const privateCa = createCa({ commonName: 'Private Test CA', keyType: 'ec' });
const fromPrivate = (opts: Parameters<typeof issueCertificate>[1]) => issueCertificate(privateCa, { keyType: 'ec', ...opts });

const clients = { good: fromPrivate({ commonName: 'client' }), revoked: fromPrivate({ commonName: 'client' }) };
const svids = { good: pki.issue({ spiffeId: BILLING }), revoked: pki.issue({ spiffeId: BILLING }) };
const admins = { good: pki.issue({ spiffeId: OPS }), revoked: pki.issue({ spiffeId: FIRED }) };
const backends = {
  'ca-good': fromPrivate({ spiffeId: PRIVATE_BACKEND, ipAddresses: ['127.0.0.1'] }),
  'ca-revoked': fromPrivate({ spiffeId: PRIVATE_BACKEND, ipAddresses: ['127.0.0.1'] }),
  'dns-good': pki.issue({ ipAddresses: ['127.0.0.1'] }),
  'dns-revoked': pki.issue({ ipAddresses: ['127.0.0.1'] }),
};
type Backend = keyof typeof backends;

describe('mesh.revoked on every mutual-TLS path', () => {
  const servers = {} as Record<Backend, EchoServer>;
  let partner: Upstream;
  let ing: TestIngress;
  let admin: AdminServer;
  let adminPort: number;
  let egressPort: number;
  let reloader: Reloader;

  before(async () => {
    for (const [name, cert] of Object.entries(backends) as [Backend, CertKeyPem][]) {
      servers[name] = await startEchoServer({ certPem: cert.certPem, keyPem: cert.keyPem, caPem: pki.ca.certPem });
    }
    partner = await startHttpUpstream('partner');
    ing = await startTestIngress((config, { writeFile }) => {
      const clientCa = writeFile('private-ca.pem', privateCa.certPem);
      config.mesh.revoked = {
        serials: [clients.revoked.serial, svids.revoked.serial, backends['ca-revoked'].serial, backends['dns-revoked'].serial],
        spiffeIds: [FIRED],
      };
      for (const clientAuth of ['required', 'optional']) {
        config.listeners[0].hosts.push({
          name: clientAuth,
          hostnames: [`${clientAuth}.wild.test`],
          tls: { mode: 'terminate', certificate: { cert: 'server.pem', key: 'server-key.pem' }, clientAuth, clientCa },
        });
      }
      config.routes.push({ name: 'private', match: { hosts: ['required', 'optional'] }, upstream: 'echo' });
      for (const name of Object.keys(backends) as Backend[]) {
        const upstreamTls = name.startsWith('ca') ? { ca: clientCa, spiffeId: PRIVATE_BACKEND } : {};
        config.upstreams.push({ name, url: servers[name].url, tls: upstreamTls });
        config.routes.push({ name, match: { path: { prefix: `/${name}` } }, upstream: name });
      }
      config.policies.push({ name: 'revocation', action: 'ALLOW', routes: ['private', ...Object.keys(backends)], rules: [{}] });
      config.egress = {
        listener: { address: '127.0.0.1', port: 0, tls: { certificate: { cert: 'server.pem', key: 'server-key.pem' } } },
        allow: [{ name: 'billing', identities: [BILLING], hosts: ['partner.test'], ports: [partner.port] }],
        staticHosts: [{ host: 'partner.test', addresses: ['127.0.0.1'] }],
        addressGuard: { allowAddresses: ['127.0.0.1'] },
      };
    });
    egressPort = ing.gateway.ports.get('egress')!;
    reloader = createReloader({ load: () => loadConfigFile(ing.configFile), parts: [ing.gateway], initial: ing.loaded, logger: ing.logger, watchIntervalMs: 0 });
    // As `portcullis run` starts it: the mesh bundle as client CA, and the mesh's revocations.
    admin = createAdminServer(adminConfig(), {
      logger: ing.logger,
      registry: createMetrics().registry,
      ready: () => true,
      reload: async () => ({ ok: true }),
      config: () => ({ version: 'v1' }),
      meshBundlePem: pki.ca.certPem,
      meshRevoked: ing.loaded.config.mesh!.revoked,
    });
    ({ port: adminPort } = await admin.listen());
  });
  after(async () => {
    reloader.close();
    await admin.close();
    await ing.close();
    await Promise.all([...Object.values(servers).map((s) => s.close()), partner.close()]);
  });

  const adminConfig = () => ({
    address: '127.0.0.1',
    port: 0,
    tls: { certificate: { cert: path.join(ing.dir, 'server.pem'), key: path.join(ing.dir, 'server-key.pem') }, allowedSpiffeIds: [OPS, FIRED] },
  });

  const viaHost = (host: 'required' | 'optional', cert: CertKeyPem) =>
    request(ing.port, ing.caPem, { servername: `${host}.wild.test`, headers: { host: `${host}.wild.test` }, path: '/x', cert: cert.certPem, key: cert.keyPem });

  /** Adds `serials` to `mesh.revoked` in the config file and reloads as SIGHUP would. */
  const revokeAndReload = async (serials: string[]): Promise<Config> => {
    const config = parse(fs.readFileSync(ing.configFile, 'utf8')) as Config;
    config.mesh!.revoked!.serials!.push(...serials);
    fs.writeFileSync(ing.configFile, stringify(config));
    assert.equal((await reloader.reload('sighup')).ok, true);
    return loadConfigFile(ing.configFile).config;
  };

  test('ingress host with its own clientCa, required: a revoked certificate ends the connection', async () => {
    assert.equal((await viaHost('required', clients.good)).status, 200);
    await assert.rejects(viaHost('required', clients.revoked));
    assert.ok(ing.logs.some((l) => l.event === 'TLS_REFUSED' && l.vhost === 'required' && l.reason === 'revoked-serial'));
  });

  test('ingress host with its own clientCa, optional: a revoked certificate is answered 403', async () => {
    assert.equal((await viaHost('optional', clients.good)).status, 200);
    const res = await viaHost('optional', clients.revoked);
    assert.equal(res.status, 403);
    assert.equal(res.json().code, 'GW_AUTHN_CLIENT_CERT');
    assert.equal(res.json().reason, 'revoked-serial');
  });

  test('upstreams with their own tls.ca and by DNS/IP name: a revoked server certificate is a 502', async () => {
    for (const [good, revoked] of [['ca-good', 'ca-revoked'], ['dns-good', 'dns-revoked']] as const) {
      assert.equal((await request(ing.port, ing.caPem, { path: `/${good}` })).status, 200, good);
      const res = await request(ing.port, ing.caPem, { path: `/${revoked}` });
      assert.equal(res.status, 502, revoked);
      assert.equal(res.json().code, 'GW_UPSTREAM_IDENTITY');
      assert.equal(res.json().reason, 'revoked-serial');
      assert.equal(servers[revoked].hits, 0);
    }
  });

  test('admin plane: a revoked client certificate gets 403, even with an allowed SPIFFE ID', async () => {
    assert.equal((await adminGet(adminPort, admins.good)).status, 200);
    const res = await adminGet(adminPort, admins.revoked);
    assert.equal(res.status, 403);
    assert.equal(JSON.parse(res.body).code, 'GW_AUTHN_CLIENT_CERT');
    assert.equal(JSON.parse(res.body).reason, 'client_certificate_revoked');
  });

  test('egress: a revoked SVID is no identity (407), audited with its reason', async () => {
    const target = `partner.test:${partner.port}`;
    assert.match(await viaEgress(egressPort, svids.good, target), /^HTTP\/1\.1 200[^]*hello from partner$/);
    const refused = await viaEgress(egressPort, svids.revoked, target);
    assert.match(refused, /^HTTP\/1\.1 407/);
    assert.match(refused, /"code":"GW_EGRESS_NO_IDENTITY","reason":"client_certificate_revoked"/);
    assert.ok(ing.logs.some((l) => l.reason === 'client_certificate_revoked' && l.allow === false));
    assert.equal(partner.connections, 1);
  });

  test('a reload that revokes more applies to the next handshakes on every path', async () => {
    const next = await revokeAndReload([clients.good.serial, svids.good.serial, backends['dns-good'].serial, admins.good.serial]);
    assert.equal((await viaHost('optional', clients.good)).json().reason, 'revoked-serial');
    assert.equal((await request(ing.port, ing.caPem, { path: '/dns-good' })).json().reason, 'revoked-serial');
    assert.match(await viaEgress(egressPort, svids.good, `partner.test:${partner.port}`), /^HTTP\/1\.1 407/);
    const change = await admin.prepare({ ...next, admin: adminConfig() });
    change.commit();
    assert.equal((await adminGet(adminPort, admins.good)).status, 403);
  });
});

function adminGet(port: number, cert: CertKeyPem): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: '/config', servername: 'localhost', ca: pki.ca.certPem, cert: cert.certPem, key: cert.keyPem, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
  });
}

/** One absolute-form request through the egress TLS listener with `cert`; the whole raw answer. */
function viaEgress(port: number, cert: CertKeyPem, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem, cert: cert.certPem, key: cert.keyPem }, () => {
      socket.write(`GET http://${target}/ HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
    socket.on('error', reject);
  });
}
