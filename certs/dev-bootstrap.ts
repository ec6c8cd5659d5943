// The development PKI under <stateDir>/pki/: created on first run, reused afterwards, leaves re-issued when they
// are about to expire, no longer chain to the CA or name different hosts. Never for production: the CA key sits
// next to the certificates it signs.
import { X509Certificate, createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import ipaddr from 'ipaddr.js';
import { caTrustDomain, createCa, issueCertificate, type IssueOptions } from './issue.js';
import { renewalTime } from './rotation.js';
import { parseSubjectAltNames, parseTrustDomain } from './spiffe-id.js';
import {
  PKI_FILES,
  certFile,
  ensurePrivateDir,
  keyFile,
  leafFileNames,
  readCertKeyPair,
  writeFiles,
} from './store.js';
import type { CertKeyPem } from './types.js';
import { verifyChain } from './verify.js';

export interface DevPkiOptions {
  trustDomain: string;
  /** DNS names (or IP literals) the gateway serves; 127.0.0.1 and ::1 are always added. */
  hostnames: string[];
}

export interface DevPkiDeps {
  now?: () => Date;
}

/** Absolute paths of the development PKI files. */
export interface DevPki {
  dir: string;
  trustDomain: string;
  /** Root CA; also the mesh trust bundle. */
  caCert: string;
  caKey: string;
  /** TLS server certificate of the gateway's listeners. */
  serverCert: string;
  serverKey: string;
  /** The gateway's X.509-SVID, presented to upstreams. */
  gatewaySvidCert: string;
  gatewaySvidKey: string;
  /** SVID of the demo backend (`spiffe://<td>/ns/demo/sa/backend`, DNS localhost, IP 127.0.0.1). */
  backendCert: string;
  backendKey: string;
  /** ES256 private JWK with a `kid`, for the dev token issuer. */
  jwtSigningKey: string;
  /** Files this call (re)wrote; empty when everything was reused. */
  written: string[];
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** A leaf is re-issued when it would expire within this margin. */
const RENEW_MARGIN_MS = HOUR;
const LEAF_TTL_MS = DAY;
// Browsers and curl users keep the dev server certificate across many runs; SVIDs stay short-lived as in a mesh.
const SERVER_TTL_MS = 30 * DAY;
const JWT_KEY_FILE = 'jwt-signing-key.json';

/** issueCertificate backdates only when it reads the clock itself; we pass the injected one, so backdate here. */
function backdated(now: Date): Date {
  return new Date(now.getTime() - 60_000);
}

export function ensureDevPki(stateDir: string, opts: DevPkiOptions, deps: DevPkiDeps = {}): DevPki {
  const trustDomain = parseTrustDomain(opts.trustDomain);
  if (opts.hostnames.length === 0) throw new Error('ensureDevPki: at least one hostname is required');
  const now = (deps.now ?? (() => new Date()))();
  const dir = path.resolve(stateDir, 'pki');
  ensurePrivateDir(dir);
  const at = (name: string) => path.join(dir, name);
  const written: string[] = [];

  const ca = loadOrCreateCa(at(PKI_FILES.caCert), at(PKI_FILES.caKey), trustDomain, now, written);
  const leaf = (prefix: string, issue: IssueOptions) => {
    const names = leafFileNames(at(prefix));
    ensureLeaf(ca, names.cert, names.key, issue, now, written);
    return names;
  };
  const hostIps = opts.hostnames.filter((h) => isIP(h) !== 0);
  const server = leaf('gateway', {
    commonName: opts.hostnames[0],
    dnsNames: opts.hostnames.filter((h) => isIP(h) === 0),
    ipAddresses: [...new Set([...hostIps, '127.0.0.1', '::1'])],
    ttlMs: SERVER_TTL_MS,
  });
  const svid = leaf('gateway-svid', { spiffeId: `spiffe://${trustDomain}/ns/portcullis/sa/gateway`, ttlMs: LEAF_TTL_MS });
  const backend = leaf('demo-backend', {
    spiffeId: `spiffe://${trustDomain}/ns/demo/sa/backend`,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    ttlMs: LEAF_TTL_MS,
  });
  const jwtSigningKey = at(JWT_KEY_FILE);
  if (!existsSync(jwtSigningKey)) {
    writeFiles([keyFile(jwtSigningKey, JSON.stringify(newJwtSigningKey(), null, 2) + '\n')]);
    written.push(jwtSigningKey);
  }
  return {
    dir,
    trustDomain,
    caCert: at(PKI_FILES.caCert),
    caKey: at(PKI_FILES.caKey),
    serverCert: server.cert,
    serverKey: server.key,
    gatewaySvidCert: svid.cert,
    gatewaySvidKey: svid.key,
    backendCert: backend.cert,
    backendKey: backend.key,
    jwtSigningKey,
    written,
  };
}

function loadOrCreateCa(certPath: string, keyPath: string, trustDomain: string, now: Date, written: string[]): CertKeyPem {
  if (existsSync(certPath) || existsSync(keyPath)) {
    const ca = readCertKeyPair(certPath, keyPath);
    const existing = caTrustDomain(ca.certPem);
    // Replacing a CA silently would invalidate every certificate and bundle copied out of this directory.
    if (existing !== trustDomain) {
      throw new Error(
        `${certPath} is the CA of trust domain ${existing ?? '(none)'}, not ${trustDomain}; remove ${path.dirname(certPath)} to start over`,
      );
    }
    const check = verifyChain(ca.certPem, [ca.certPem], new Date(now.getTime() + RENEW_MARGIN_MS));
    if (!check.ok) throw new Error(`${certPath}: ${check.detail}; remove ${path.dirname(certPath)} to start over`);
    return ca;
  }
  // ECDSA P-256 for the development PKI: instant to generate and the cheapest handshakes.
  const ca = createCa({ commonName: `Portcullis Development Root CA (${trustDomain})`, trustDomain, notBefore: backdated(now), keyType: 'ec' });
  writeFiles([certFile(certPath, ca.certPem), keyFile(keyPath, ca.keyPem)]);
  written.push(certPath, keyPath);
  return ca;
}

function ensureLeaf(
  ca: CertKeyPem,
  certPath: string,
  keyPath: string,
  issue: IssueOptions,
  now: Date,
  written: string[],
): void {
  if (reusable(ca, certPath, keyPath, issue, now)) return;
  const leaf = issueCertificate(ca, { keyType: 'ec', ...issue, notBefore: backdated(now) });
  writeFiles([certFile(certPath, leaf.certPem), keyFile(keyPath, leaf.keyPem)], { overwrite: true });
  written.push(certPath, keyPath);
}

/** Valid for more than the renewal margin, signed by this CA, with this key and exactly the wanted names. */
function reusable(ca: CertKeyPem, certPath: string, keyPath: string, issue: IssueOptions, now: Date): boolean {
  if (!existsSync(certPath) || !existsSync(keyPath)) return false;
  let leaf: CertKeyPem;
  try {
    leaf = readCertKeyPair(certPath, keyPath);
  } catch {
    return false;
  }
  if (!verifyChain(leaf.certPem, [ca.certPem], now).ok) return false;
  // Renewed at half-life, as Istio's agent does (SECRET_GRACE_PERIOD_RATIO 0.5): a gateway left running
  // swaps in the new files through its watcher long before the old ones expire.
  const x509 = new X509Certificate(leaf.certPem);
  if (now >= renewalTime(new Date(x509.validFrom), new Date(x509.validTo), { jitter: 0 })) return false;
  const want = [
    ...(issue.spiffeId === undefined ? [] : [`URI:${issue.spiffeId}`]),
    ...(issue.dnsNames ?? []).map((n) => `DNS:${n}`),
    ...(issue.ipAddresses ?? []).map((ip) => `IP Address:${ipaddr.parse(ip).toNormalizedString()}`),
  ].sort();
  const sans = parseSubjectAltNames(new X509Certificate(leaf.certPem).subjectAltName ?? '');
  const have = (sans ?? [])
    .map((s) => `${s.type}:${s.type === 'IP Address' ? ipaddr.parse(s.value).toNormalizedString() : s.value}`)
    .sort();
  return JSON.stringify(want) === JSON.stringify(have);
}

/**
 * A fresh ES256 private JWK. The `kid` is its RFC 7638 thumbprint (SHA-256 over the required members in
 * lexicographic order), computed here because jose's calculateJwkThumbprint is async and this bootstrap is not.
 */
function newJwtSigningKey(): Record<string, string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y, d } = privateKey.export({ format: 'jwk' });
  const kid = createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  return { kty: kty!, crv: crv!, x: x!, y: y!, d: d!, kid, alg: 'ES256', use: 'sig' };
}
