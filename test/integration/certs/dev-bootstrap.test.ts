import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevPki } from '../../../certs/dev-bootstrap.js';
import { spiffeIdFromCertificate } from '../../../certs/spiffe-id.js';
import { verifyChain } from '../../../certs/verify.js';

const root = mkdtempSync(join(tmpdir(), 'portcullis-devpki-'));
after(() => rmSync(root, { recursive: true, force: true }));
const mode = (p: string) => statSync(p).mode & 0o777;
const opts = { trustDomain: 'portcullis.dev', hostnames: ['localhost'] };

test('first call creates the dev PKI with private modes; later calls reuse it', () => {
  const stateDir = join(root, 'a');
  const pki = ensureDevPki(stateDir, opts);
  assert.equal(mode(pki.dir), 0o700);
  for (const key of [pki.caKey, pki.serverKey, pki.gatewaySvidKey, pki.backendKey, pki.jwtSigningKey]) {
    assert.equal(mode(key), 0o600, key);
  }
  assert.equal(pki.written.length, 9);
  const ca = readFileSync(pki.caCert, 'utf8');
  for (const cert of [pki.serverCert, pki.gatewaySvidCert, pki.backendCert]) {
    assert.equal(verifyChain(readFileSync(cert, 'utf8'), [ca]).ok, true, cert);
  }
  const server = new X509Certificate(readFileSync(pki.serverCert));
  assert.equal(server.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.equal(spiffeIdFromCertificate(server), undefined);
  assert.equal(spiffeIdFromCertificate(new X509Certificate(readFileSync(pki.gatewaySvidCert))), 'spiffe://portcullis.dev/ns/portcullis/sa/gateway');
  const backend = new X509Certificate(readFileSync(pki.backendCert));
  assert.equal(backend.subjectAltName, 'URI:spiffe://portcullis.dev/ns/demo/sa/backend, DNS:localhost, IP Address:127.0.0.1');

  const jwk = JSON.parse(readFileSync(pki.jwtSigningKey, 'utf8')) as Record<string, string>;
  assert.deepEqual(Object.keys(jwk).sort(), ['alg', 'crv', 'd', 'kid', 'kty', 'use', 'x', 'y']);
  assert.equal(jwk.alg, 'ES256');
  assert.equal(createPrivateKey({ key: jwk, format: 'jwk' }).asymmetricKeyDetails?.namedCurve, 'prime256v1');

  const again = ensureDevPki(stateDir, opts);
  assert.deepEqual(again.written, []);
  assert.equal(readFileSync(pki.caCert, 'utf8'), ca);
  assert.deepEqual({ ...again, written: [] }, { ...pki, written: [] });
});

test('re-issues only leaves that expire within an hour, or whose names changed', () => {
  const stateDir = join(root, 'b');
  const first = ensureDevPki(stateDir, opts);
  const svid = readFileSync(first.gatewaySvidCert, 'utf8');
  // 23.5 h later the 24 h SVIDs are inside the renewal margin; the 30-day server certificate is not.
  const clock = { now: () => new Date(Date.now() + 23.5 * 3600e3) };
  const later = ensureDevPki(stateDir, opts, clock);
  assert.deepEqual(later.written.sort(), [first.backendCert, first.backendKey, first.gatewaySvidCert, first.gatewaySvidKey].sort());
  assert.notEqual(readFileSync(first.gatewaySvidCert, 'utf8'), svid);
  assert.equal(mode(first.gatewaySvidKey), 0o600);

  const renamed = ensureDevPki(stateDir, { ...opts, hostnames: ['localhost', 'gw.local'] }, clock);
  assert.deepEqual(renamed.written, [first.serverCert, first.serverKey]);
  assert.match(new X509Certificate(readFileSync(first.serverCert)).subjectAltName ?? '', /DNS:gw.local/);
});

test('a damaged leaf (key swapped) is re-issued', () => {
  const stateDir = join(root, 'c');
  const pki = ensureDevPki(stateDir, opts);
  writeFileSync(pki.backendKey, readFileSync(pki.gatewaySvidKey));
  assert.deepEqual(ensureDevPki(stateDir, opts).written, [pki.backendCert, pki.backendKey]);
});

test('a CA of another trust domain is not silently replaced', () => {
  const stateDir = join(root, 'd');
  ensureDevPki(stateDir, opts);
  assert.throws(() => ensureDevPki(stateDir, { ...opts, trustDomain: 'other.dev' }), /CA of trust domain portcullis.dev, not other.dev; remove .* to start over/);
});
