// Issued certificates checked from the outside: the real `openssl` binary reads and verifies them.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caTrustDomain, createCa, issueCertificate } from '../../../certs/issue.js';
import type { KeyType } from '../../../certs/types.js';
import { testPki } from '../../helpers/pki.js';

const work = mkdtempSync(join(tmpdir(), 'portcullis-issue-'));
after(() => rmSync(work, { recursive: true, force: true }));

function opensslText(pem: string): string {
  return execFileSync('openssl', ['x509', '-text', '-noout'], { input: pem, encoding: 'utf8' });
}

let fileCounter = 0;
function file(pem: string): string {
  const p = join(work, `f${fileCounter++}.pem`);
  writeFileSync(p, pem);
  return p;
}

function opensslVerify(leafPem: string, caPem: string, untrustedPem?: string): { ok: boolean; output: string } {
  const args = ['verify', '-CAfile', file(caPem), ...(untrustedPem ? ['-untrusted', file(untrustedPem)] : []), file(leafPem)];
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: r.status === 0, output: r.stdout + r.stderr };
}

/** The lines of one extension in `openssl x509 -text` output. */
function extension(text: string, name: string): string {
  const m = new RegExp(`X509v3 ${name}:( critical)? *\\n\\s+(.*)`).exec(text);
  assert.ok(m, `extension ${name} missing in\n${text}`);
  return `${m[1] ? 'critical ' : ''}${m[2]}`;
}

const keyTypes: KeyType[] = ['ec', 'rsa'];

describe('X.509-SVIDs', () => {
  for (const caKeyType of keyTypes) {
    for (const keyType of keyTypes) {
      test(`${keyType} SVID from an ${caKeyType} CA follows the X509-SVID profile and verifies with openssl`, () => {
        const ca = createCa({ commonName: 'Root', trustDomain: 'example.test', keyType: caKeyType });
        const svid = issueCertificate(ca, {
          spiffeId: 'spiffe://example.test/ns/shop/sa/api',
          dnsNames: ['localhost'],
          ipAddresses: ['127.0.0.1'],
          keyType,
        });
        const text = opensslText(svid.certPem);
        assert.equal(extension(text, 'Basic Constraints'), 'critical CA:FALSE');
        assert.equal(
          extension(text, 'Key Usage'),
          keyType === 'rsa' ? 'critical Digital Signature, Key Encipherment' : 'critical Digital Signature',
        );
        assert.equal(extension(text, 'Extended Key Usage'), 'TLS Web Server Authentication, TLS Web Client Authentication');
        const sans = extension(text, 'Subject Alternative Name');
        assert.equal(sans, 'URI:spiffe://example.test/ns/shop/sa/api, DNS:localhost, IP Address:127.0.0.1');
        assert.equal(sans.match(/URI:/g)?.length, 1, 'exactly one URI SAN');
        assert.match(extension(text, 'Subject Key Identifier'), /^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
        const caSki = extension(opensslText(ca.certPem), 'Subject Key Identifier');
        assert.equal(extension(text, 'Authority Key Identifier').replace(/^keyid:/, ''), caSki);
        assert.match(text, keyType === 'rsa' ? /Public-Key: \(2048 bit\)/ : /ASN1 OID: prime256v1/);
        assert.match(text, caKeyType === 'rsa' ? /Signature Algorithm: sha256WithRSAEncryption/ : /Signature Algorithm: ecdsa-with-SHA256/);
        assert.deepEqual(opensslVerify(svid.certPem, ca.certPem), { ok: true, output: `${join(work, `f${fileCounter - 1}.pem`)}: OK\n` });
      });
    }
  }

  test('default TTL is 24 h and the serial is random, positive and at least 64 bits', () => {
    const { ca } = testPki();
    const a = issueCertificate(ca, { spiffeId: 'spiffe://portcullis.test/a' });
    const b = issueCertificate(ca, { spiffeId: 'spiffe://portcullis.test/a' });
    const x = new X509Certificate(a.certPem);
    const lifetime = Date.parse(x.validTo) - Date.parse(x.validFrom);
    assert.ok(lifetime >= 24 * 3600e3 && lifetime <= 24 * 3600e3 + 61_000, `lifetime ${lifetime}`);
    assert.equal(a.notAfter.getTime(), Date.parse(x.validTo));
    assert.equal(a.serial, x.serialNumber);
    assert.notEqual(a.serial, b.serial);
    assert.ok(BigInt(`0x${a.serial}`) >= 2n ** 64n);
    assert.match(opensslText(a.certPem), /Serial Number:\s*\n\s*[0-7][0-9a-f]:/, 'high bit clear: positive');
  });

  test('with no subject name the SAN extension is critical (RFC 5280 §4.2.1.6)', () => {
    const { ca } = testPki();
    const text = opensslText(issueCertificate(ca, { spiffeId: 'spiffe://portcullis.test/a' }).certPem);
    assert.match(text, /Subject: ?\n/);
    assert.match(extension(text, 'Subject Alternative Name'), /^critical URI:/);
  });

  test('a server certificate carries DNS and IP SANs, IPv6 included', () => {
    const { ca } = testPki();
    const cert = issueCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], keyType: 'rsa' });
    assert.equal(
      extension(opensslText(cert.certPem), 'Subject Alternative Name'),
      'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    assert.match(opensslText(cert.certPem), /Subject: CN ?= ?localhost/);
  });

  const refusals: [string, () => unknown, RegExp][] = [
    ['an invalid SPIFFE ID', () => issueCertificate(testPki().ca, { spiffeId: 'spiffe://portcullis.test/a/../b' }), /"\." or "\.\."/],
    ['a TTL past the CA', () => issueCertificate(testPki().ca, { spiffeId: 'spiffe://portcullis.test/a', ttlMs: 20 * 365 * 86400e3 }), /past the issuing CA's notAfter/],
    ['a negative TTL', () => issueCertificate(testPki().ca, { spiffeId: 'spiffe://portcullis.test/a', ttlMs: -1 }), /positive/],
    ['no name at all', () => issueCertificate(testPki().ca, {}), /needs a SPIFFE ID/],
    ['a bad IP', () => issueCertificate(testPki().ca, { ipAddresses: ['300.1.1.1'] }), /not an IP address/],
    ['a DNS name with NUL', () => issueCertificate(testPki().ca, { dnsNames: ['a\0.example'] }), /not a DNS name/],
    ['a leaf as issuer', () => issueCertificate(testPki().issue({ spiffeId: 'spiffe://portcullis.test/a' }), { dnsNames: ['x'] }), /not a CA/],
    ['a mismatched CA key', () => issueCertificate({ certPem: testPki().ca.certPem, keyPem: testPki().otherCa.keyPem }, { dnsNames: ['x'] }), /does not match/],
  ];
  for (const [name, fn, message] of refusals) test(`refuses ${name}`, () => assert.throws(fn, message));
});

describe('CAs', () => {
  for (const keyType of keyTypes) {
    test(`${keyType} root + intermediate: pathlen 0, keyCertSign + cRLSign, chain verifies with -untrusted`, () => {
      const root = createCa({ commonName: 'Root', trustDomain: 'example.test', keyType });
      const intermediate = createCa({ commonName: 'Intermediate', trustDomain: 'example.test', keyType, issuer: root });
      const leaf = issueCertificate(intermediate, { spiffeId: 'spiffe://example.test/w', keyType });

      const rootText = opensslText(root.certPem);
      assert.equal(extension(rootText, 'Basic Constraints'), 'critical CA:TRUE');
      assert.equal(extension(rootText, 'Key Usage'), 'critical Certificate Sign, CRL Sign');
      assert.equal(extension(rootText, 'Subject Alternative Name'), 'URI:spiffe://example.test');
      const interText = opensslText(intermediate.certPem);
      assert.equal(extension(interText, 'Basic Constraints'), 'critical CA:TRUE, pathlen:0');
      assert.equal(extension(interText, 'Key Usage'), 'critical Certificate Sign, CRL Sign');
      assert.equal(caTrustDomain(intermediate.certPem), 'example.test');

      assert.equal(opensslVerify(leaf.certPem, root.certPem, intermediate.certPem).ok, true);
      assert.equal(opensslVerify(leaf.certPem, root.certPem).ok, false, 'the intermediate is needed');
      // pathlen 0: a CA under the intermediate is refused by OpenSSL.
      const sub = createCa({ commonName: 'Sub', issuer: intermediate, keyType });
      const subLeaf = issueCertificate(sub, { dnsNames: ['x'], keyType });
      const r = opensslVerify(subLeaf.certPem, root.certPem, intermediate.certPem + sub.certPem);
      assert.equal(r.ok, false);
      assert.match(r.output, /path length constraint exceeded/);
    });
  }

  test('an intermediate may not outlive its root', () => {
    const root = createCa({ commonName: 'Root', ttlMs: 86400e3 });
    assert.throws(() => createCa({ commonName: 'I', issuer: root, ttlMs: 2 * 86400e3 }), /past the issuing CA's notAfter/);
  });

  test('a CA without trust domain has no URI SAN', () => {
    const root = createCa({ commonName: 'Plain' });
    assert.equal(new X509Certificate(root.certPem).subjectAltName, undefined);
    assert.equal(caTrustDomain(root.certPem), undefined);
  });

  test('keys are PKCS#8 PEM', () => {
    for (const keyType of keyTypes) {
      assert.match(createCa({ commonName: 'K', keyType }).keyPem, /^-{5}BEGIN PRIVATE\sKEY-{5}\n/);
    }
  });
});
