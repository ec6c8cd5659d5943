// Mutual TLS identity rules of the mesh: trust bundles isolated per trust domain, revocation on every
// handshake (inbound client certificates and upstream servers), identity only from the SPIFFE URI SAN.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { issueCertificate } from '../../../certs/issue.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';

describe('mesh identity on mutual TLS', () => {
  const pki = testPki();
  const ops = `spiffe://${pki.trustDomain}/ns/ops/sa/admin`;
  const partner = `spiffe://${pki.otherTrustDomain}/ns/partner/sa/client`;
  const good = pki.issue({ spiffeId: ops });
  const revokedSerial = pki.issue({ spiffeId: ops });
  const revokedId = pki.issue({ spiffeId: `spiffe://${pki.trustDomain}/ns/ops/sa/fired` });
  const partnerCert = issueCertificate(pki.otherCa, { spiffeId: partner });
  // A certificate for OUR trust domain minted by the partner's CA: OpenSSL accepts the chain (the partner
  // CA is trusted), only the bundle-per-domain rule refuses it.
  const forged = issueCertificate(pki.otherCa, { spiffeId: ops });
  let ing: TestIngress;

  before(async () => {
    ing = await startTestIngress((config, { writeFile }) => {
      config.mesh.federatedBundles = [{ trustDomain: pki.otherTrustDomain, bundle: writeFile('other-ca.pem', pki.otherCa.certPem) }];
      config.mesh.revoked = { serials: [revokedSerial.serial], spiffeIds: [`spiffe://${pki.trustDomain}/ns/ops/sa/fired`] };
      config.listeners[0].hosts.push({
        name: 'secure',
        hostnames: ['secure.test'],
        tls: { mode: 'terminate', certificate: { cert: 'server.pem', key: 'server-key.pem' }, clientAuth: 'optional' },
      });
      config.routes.push({ name: 'ops', match: { hosts: ['secure'] }, upstream: 'echo' });
      config.policies.push({
        name: 'ops',
        action: 'ALLOW',
        routes: ['ops'],
        rules: [{ from: [{ source: { principals: [ops, partner] } }] }],
      });
    });
  });
  after(() => ing.close());

  const call = (cert: { certPem: string; keyPem: string }) =>
    request(ing.port, ing.caPem, { servername: 'secure.test', headers: { host: 'secure.test' }, path: '/x', cert: cert.certPem, key: cert.keyPem });

  test('a valid SVID of our trust domain is identified by its SPIFFE ID', async () => {
    const res = await call(good);
    assert.equal(res.status, 200);
  });

  test('a federated trust domain is accepted with its own bundle', async () => {
    assert.equal((await call(partnerCert)).status, 200);
  });

  test("an SVID for our domain signed by the partner's CA is refused (bundles are isolated)", async () => {
    const res = await call(forged);
    assert.equal(res.status, 403);
    assert.equal(res.json().code, 'GW_AUTHN_CLIENT_CERT');
    assert.match(String(res.json().reason), /untrusted/);
  });

  test('a revoked serial and a revoked SPIFFE ID are refused at the handshake', async () => {
    const bySerial = await call(revokedSerial);
    assert.equal(bySerial.status, 403);
    assert.equal(bySerial.json().reason, 'revoked-serial');
    const byId = await call(revokedId);
    assert.equal(byId.json().reason, 'revoked-id');
    assert.ok(ing.logs.some((l) => l.event === 'TLS_REFUSED' && l.reason === 'revoked-serial'));
  });

  test('no request from a refused peer reaches the upstream', () => {
    assert.equal(ing.upstream.hits, 2);
  });
});

describe('revoked upstream', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.mesh.revoked = { spiffeIds: [config.upstreams[0].tls.spiffeId] };
    });
  });
  after(() => ing.close());

  test('an upstream whose SPIFFE ID is revoked is refused with 502', async () => {
    const res = await request(ing.port, ing.caPem, { path: '/public/x' });
    assert.equal(res.status, 502);
    assert.equal(res.json().code, 'GW_UPSTREAM_IDENTITY');
    assert.equal(res.json().reason, 'revoked-id');
    assert.equal(ing.upstream.hits, 0);
  });
});
