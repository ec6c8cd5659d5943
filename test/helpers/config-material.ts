// Real input files for config tests: the certificates, keys, bundles, JWKS and tokens a config names, generated at
// test time (never committed). The fixture folder keeps placeholders under files/; `configFixtures()` is a copy of
// it with those replaced by real material, so every good fixture both validates and starts.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCa, issueCertificate } from '../../certs/issue.js';
import type { CertKeyPem } from '../../certs/types.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));

/** A CA of `trustDomain` and one leaf that is both its SVID and a server certificate for `hostnames`. */
export function meshMaterial(trustDomain: string, hostnames: string[] = ['localhost']): { ca: CertKeyPem; leaf: CertKeyPem } {
  const ca = createCa({ commonName: `${trustDomain} test CA`, trustDomain, keyType: 'ec' });
  const leaf = issueCertificate(ca, { spiffeId: `spiffe://${trustDomain}/ns/gateway/sa/portcullis`, dnsNames: hostnames, keyType: 'ec' });
  return { ca, leaf };
}

/** A public JWKS with one EC P-256 key (usable with the default algorithms) or one RSA key. */
export function publicJwks(type: 'ec' | 'rsa' = 'ec'): string {
  const { publicKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'test', use: 'sig' }] });
}

/** An Ed25519 private key, PEM, as `audit.checkpoints.keyFile` takes it. */
export const auditSigningKey = (): string => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** A token acceptable to `admin.tokenFile`. */
export const adminToken = (): string => randomBytes(24).toString('base64url');

let copy: string | undefined;

/** A private copy of test/fixtures/config with real PEM and JWKS in files/ (trust domain example.org). */
export function configFixtures(): string {
  if (copy) return copy;
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fixtures-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  cpSync(FIXTURES, dir, { recursive: true });
  const { ca, leaf } = meshMaterial('example.org', ['www.example.com', 'legacy.example.com']);
  const rsa = issueCertificate(ca, { dnsNames: ['api.example.com'], keyType: 'rsa' });
  const files: Record<string, string> = {
    'ca-bundle.txt': ca.certPem,
    'svid-cert.txt': leaf.certPem,
    'svid-key.txt': leaf.keyPem,
    'tls-cert.txt': leaf.certPem,
    'tls-key.txt': leaf.keyPem,
    // An RSA certificate beside the ECDSA one (every-field.yaml's list form of a host's certificate).
    'tls-rsa-cert.txt': rsa.certPem,
    'tls-rsa-key.txt': rsa.keyPem,
    'jwks.json': publicJwks(),
    'admin-token.txt': adminToken(),
    // A route header's valueFile (an upstream's API key).
    'api-key.txt': `${adminToken()}\n`,
    // For compile-errors.yaml: a key that is not the certificate's, and a JWKS with only an RSA key.
    'other-key.txt': meshMaterial('example.org').leaf.keyPem,
    'rsa-jwks.json': publicJwks('rsa'),
    'audit-key.txt': auditSigningKey(),
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'files', name), text);
  copy = dir;
  return dir;
}

/** What kind of file a config field names, from its JSON pointer. */
type InputKind = 'cert' | 'key' | 'bundle' | 'jwks' | 'token' | 'policies' | 'auditKey';

export function inputKind(pointer: string): InputKind {
  if (/\/(cert)$/.test(pointer)) return 'cert';
  if (/\/(key)$/.test(pointer)) return 'key';
  if (pointer.endsWith('/jwksFile')) return 'jwks';
  if (pointer.endsWith('/tokenFile') || pointer.endsWith('/valueFile')) return 'token';
  if (pointer === '/audit/checkpoints/keyFile') return 'auditKey';
  if (pointer.startsWith('/policyFiles/')) return 'policies';
  return 'bundle';
}

/**
 * Writes every input file in `inputs` that does not exist yet: certificates and keys from one CA of `trustDomain`
 * (a key next to a certificate is that certificate's), bundles as that CA, a JWKS, a token, an empty policy file.
 */
export function writeMissingInputs(inputs: readonly { pointer: string; file: string }[], trustDomain: string): void {
  const { ca, leaf } = meshMaterial(trustDomain);
  // A file named for RSA gets an RSA pair (a host may serve RSA and ECDSA side by side, one of each key type).
  let rsa: CertKeyPem | undefined;
  const pairFor = (file: string) => (/rsa/i.test(basename(file)) ? (rsa ??= issueCertificate(ca, { dnsNames: ['localhost'], keyType: 'rsa' })) : leaf);
  const content: Record<InputKind, (file: string) => string> = {
    cert: (file) => pairFor(file).certPem,
    key: (file) => pairFor(file).keyPem,
    bundle: () => ca.certPem,
    jwks: () => publicJwks(),
    token: adminToken,
    policies: () => 'version: v1\npolicies: []\n',
    auditKey: auditSigningKey,
  };
  for (const { pointer, file } of inputs) {
    if (existsSync(file)) continue;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content[inputKind(pointer)](file));
  }
}
