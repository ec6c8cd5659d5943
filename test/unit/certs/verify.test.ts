import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { createCa, issueCertificate } from '../../../certs/issue.js';
import { spiffeIdFromCertificate } from '../../../certs/spiffe-id.js';
import { compileRevocationList, createSpiffePeerVerifier, verifyChain, verifyPeerSpiffe } from '../../../certs/verify.js';
import type { CertKeyPem } from '../../../certs/types.js';
import { testPki } from '../../helpers/pki.js';

const pki = testPki();
const td = pki.trustDomain;
const id = (path: string, domain = td) => `spiffe://${domain}/${path}`;
const bundles = { [td]: pki.ca.certPem, [pki.otherTrustDomain]: pki.otherCa.certPem };

/**
 * Certificates our issuer refuses to make (several URI SANs, NUL bytes), signed by a test CA through
 * @peculiar/x509's generator so the hostile encodings are real DER, as an attacker's CA-signed request would be.
 */
async function crafted(ca: CertKeyPem, names: x509.JsonGeneralNames): Promise<X509Certificate> {
  x509.cryptoProvider.set(globalThis.crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const der = createPrivateKey(ca.keyPem).export({ type: 'pkcs8', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, alg, false, ['sign']);
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const caCert = new x509.X509Certificate(new X509Certificate(ca.certPem).raw);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '4a01',
    subject: 'CN=crafted',
    issuer: caCert.subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return new X509Certificate(cert.toString('pem'));
}

describe('verifyChain', () => {
  const root = createCa({ commonName: 'Root', trustDomain: 'chain.test' });
  const intermediate = createCa({ commonName: 'Intermediate', trustDomain: 'chain.test', issuer: root });
  const leaf = issueCertificate(intermediate, { spiffeId: 'spiffe://chain.test/w' });

  test('leaf + intermediate chains to the root, among several bundles', () => {
    const r = verifyChain(leaf.certPem + intermediate.certPem, [pki.otherCa.certPem, root.certPem]);
    assert.equal(r.ok, true);
    assert.equal(r.ok && r.chain.length, 3);
  });
  test('without the intermediate: untrusted', () => {
    assert.deepEqual(verifyChain(leaf.certPem, [root.certPem]), { ok: false, reason: 'untrusted', detail: 'no chain to a trusted CA' });
  });
  test('a root that is not in the bundle: untrusted', () => {
    assert.equal(verifyChain(leaf.certPem + intermediate.certPem, [pki.ca.certPem]).ok, false);
  });
  test('expired and not yet valid leaves', () => {
    const expired = pki.expired({ spiffeId: id('old') });
    assert.equal((verifyChain(expired.certPem, [pki.ca.certPem]) as { reason: string }).reason, 'expired');
    const early = new Date(Date.now() - 86400e3);
    assert.equal((verifyChain(leaf.certPem + intermediate.certPem, [root.certPem], early) as { reason: string }).reason, 'not-yet-valid');
  });
  test('an issuer with CA:false is refused even though its signature is right (RFC 5280 §4.2.1.9)', async () => {
    const notCa = pki.issue({ dnsNames: ['leaf.example'], commonName: 'leaf.example' });
    const signedByLeaf = await crafted(notCa, [{ type: 'url', value: id('evil') }]);
    const r = verifyChain(signedByLeaf.toString() + notCa.certPem, [pki.ca.certPem]);
    assert.equal(signedByLeaf.verify(new X509Certificate(notCa.certPem).publicKey), true);
    assert.equal(!r.ok && r.reason, 'issuer-not-ca');
  });
  test('pathlen 0 on the intermediate forbids a CA below it', () => {
    const sub = createCa({ commonName: 'Sub', issuer: intermediate });
    const subLeaf = issueCertificate(sub, { dnsNames: ['x'] });
    const r = verifyChain(subLeaf.certPem + sub.certPem + intermediate.certPem, [root.certPem]);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'path-too-long');
  });
  test('a bundle with no certificate is an error', () => {
    assert.throws(() => verifyChain(leaf.certPem, ['not pem']), /trust bundle: no PEM certificate/);
  });
});

describe('verifyPeerSpiffe', () => {
  const verify = createSpiffePeerVerifier({ bundles });
  const good = pki.issue({ spiffeId: id('ns/shop/sa/api') });
  const cert = (pem: string) => new X509Certificate(pem);

  test('accepts an SVID of a trusted domain, signed by that domain\'s CA', () => {
    assert.deepEqual(verify(cert(good.certPem)), { ok: true, spiffeId: id('ns/shop/sa/api'), trustDomain: td });
    assert.deepEqual(verify(cert(issueCertificate(pki.otherCa, { spiffeId: id('x', pki.otherTrustDomain) }).certPem)).ok, true);
  });

  test('accepts a DetailedPeerCertificate-shaped input with its issuer chain', () => {
    const ca = { raw: cert(pki.ca.certPem).raw } as { raw: Buffer; issuerCertificate?: unknown };
    ca.issuerCertificate = ca;
    const peer = { raw: cert(good.certPem).raw, issuerCertificate: ca };
    assert.equal(verify(peer as never).ok, true);
  });

  const refusals: [string, () => ReturnType<typeof verify>, string][] = [
    ['no certificate', () => verify(undefined), 'no-certificate'],
    ['an empty getPeerCertificate() answer', () => verify({} as never), 'no-certificate'],
    ['an expired SVID', () => verify(cert(pki.expired({ spiffeId: id('old') }).certPem)), 'expired'],
    ['a certificate with DNS/IP/CN only (never identity)', () => verify(cert(pki.issue({ dnsNames: ['api.portcullis.test'], ipAddresses: ['127.0.0.1'], commonName: id('cn') }).certPem)), 'no-spiffe-id'],
    ['a trust domain with no bundle', () => verify(cert(issueCertificate(createCa({ commonName: 'X', trustDomain: 'nobundle.test' }), { spiffeId: id('a', 'nobundle.test') }).certPem)), 'untrusted-trust-domain'],
    // Envoy SPIFFE validator rule: the bundle is chosen by the SAN's trust domain; other-domain CAs cannot mint.
    ['an SVID of our domain minted by the other domain\'s CA', () => verify(cert(issueCertificate(pki.otherCa, { spiffeId: id('ns/shop/sa/api') }).certPem)), 'untrusted'],
    ['another trust domain when only ours is allowed', () => createSpiffePeerVerifier({ bundles, trustDomains: [td] })(cert(issueCertificate(pki.otherCa, { spiffeId: id('x', pki.otherTrustDomain) }).certPem)), 'untrusted-trust-domain'],
    ['a revoked serial', () => createSpiffePeerVerifier({ bundles, revoked: compileRevocationList({ serials: [good.serial.toLowerCase()] }) })(cert(good.certPem)), 'revoked-serial'],
    ['a revoked ID', () => createSpiffePeerVerifier({ bundles, revoked: compileRevocationList({ spiffeIds: [id('ns/shop/sa/api')] }) })(cert(good.certPem)), 'revoked-id'],
    ['a different ID than expected', () => verifyPeerSpiffe(cert(good.certPem), { bundles, expected: [id('ns/shop/sa/web')] }), 'unexpected-id'],
    ['a CA certificate', () => verify(cert(createCa({ commonName: 'Sub', trustDomain: td, issuer: pki.ca }).certPem)), 'no-spiffe-id'],
  ];
  for (const [name, run, reason] of refusals) {
    test(`refuses ${name}`, () => {
      const decision = run();
      assert.equal(decision.ok, false);
      assert.equal(!decision.ok && decision.reason, reason);
    });
  }

  describe('hostile SANs', () => {
    let twoUris: X509Certificate;
    let nulUri: X509Certificate;
    let nulDns: X509Certificate;
    let commaUri: X509Certificate;
    before(async () => {
      twoUris = await crafted(pki.ca, [{ type: 'url', value: id('a') }, { type: 'url', value: id('b') }]);
      nulUri = await crafted(pki.ca, [{ type: 'url', value: `${id('a')}\0.evil` }]);
      nulDns = await crafted(pki.ca, [{ type: 'dns', value: 'a\0.example' }, { type: 'url', value: id('a') }]);
      commaUri = await crafted(pki.ca, [{ type: 'url', value: `${id('a')}, URI:${id('admin')}` }]);
    });
    test('the crafted certificates do chain to the trusted CA (so only the SAN check stands in the way)', () => {
      assert.equal(twoUris.verify(cert(pki.ca.certPem).publicKey), true);
    });
    test('two URI SANs: no identity (CVE-2022-21656 class)', () => {
      assert.equal(spiffeIdFromCertificate(twoUris), undefined);
      assert.equal((verify(twoUris) as { reason: string }).reason, 'no-spiffe-id');
    });
    test('NUL in the URI SAN (CVE-2025-66220)', () => {
      assert.equal(spiffeIdFromCertificate(nulUri), undefined);
      assert.equal((verify(nulUri) as { reason: string }).reason, 'no-spiffe-id');
    });
    test('NUL in any other SAN also voids the identity (CVE-2025-66220)', () => {
      assert.equal(spiffeIdFromCertificate(nulDns), undefined);
    });
    test('a URI SAN containing ", URI:" stays one (invalid) SAN', () => {
      assert.equal(spiffeIdFromCertificate(commaUri), undefined);
    });
  });

  test('bad options throw at creation, not per connection', () => {
    assert.throws(() => createSpiffePeerVerifier({ bundles, trustDomains: ['nobundle.test'] }), /no trust bundle configured for trust domain nobundle.test/);
    assert.throws(() => createSpiffePeerVerifier({ bundles, expected: ['spiffe://nobundle.test/a'] }), /nobundle.test/);
    assert.throws(() => createSpiffePeerVerifier({ bundles, expected: ['not-an-id'] }), /spiffe:\/\//);
    assert.throws(() => createSpiffePeerVerifier({ bundles: { [td]: 'garbage' } }), /no PEM certificate/);
  });
});
