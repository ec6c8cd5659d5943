// Certificate chain and SPIFFE peer verification. Signatures are checked by Node's OpenSSL only
// (X509Certificate.verify / checkIssued): node-forge never verifies anything here, after its signature-forgery
// advisories (CVE-2022-24771, CVE-2022-24772, CVE-2025-12816).
import { X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { requireCertificates } from './pem.js';
import { parseSpiffeId, spiffeIdFromCertificate } from './spiffe-id.js';

export type ChainRefusal = 'expired' | 'not-yet-valid' | 'issuer-not-ca' | 'path-too-long' | 'untrusted';
export type ChainResult = { ok: true; chain: X509Certificate[] } | { ok: false; reason: ChainRefusal; detail: string };

/** Deeper than any mesh PKI (root → intermediate → leaf); bounds the search on hostile input. */
const MAX_DEPTH = 5;

/**
 * Verifies that `leafPem` (a leaf, optionally followed by untrusted intermediates) chains to a CA in one of the
 * bundles: every signature, validity window at `now`, CA:true and pathLenConstraint on every issuer.
 * Node exposes per-link primitives (checkIssued: name, AKI/SKI and keyCertSign; verify: the signature) but no
 * synchronous chain verifier outside a TLS handshake, so the path search is ours.
 */
export function verifyChain(leafPem: string, bundlePem: string[], now: Date = new Date()): ChainResult {
  const [leaf, ...intermediates] = requireCertificates(leafPem, 'certificate');
  const anchors = bundlePem.flatMap((pem) => requireCertificates(pem, 'trust bundle'));
  return chainFrom(leaf!, intermediates, anchors, now);
}

function chainFrom(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  now: Date,
): ChainResult {
  const window = validity(leaf, now);
  if (window !== undefined) return window;
  let nearMiss: ChainResult | undefined;
  const search = (path: X509Certificate[]): X509Certificate[] | undefined => {
    const child = path[path.length - 1]!;
    for (const anchor of anchors) {
      const refusal = issuerRefusal(child, anchor, path.length - 1, now);
      if (refusal === undefined) return [...path, anchor];
      if (refusal !== 'not-issuer') nearMiss ??= refusal;
    }
    if (path.length >= MAX_DEPTH) return undefined;
    for (const candidate of intermediates) {
      if (path.some((c) => c.fingerprint256 === candidate.fingerprint256)) continue;
      const refusal = issuerRefusal(child, candidate, path.length - 1, now);
      if (refusal === 'not-issuer') continue;
      if (refusal !== undefined) {
        nearMiss ??= refusal;
        continue;
      }
      const found = search([...path, candidate]);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const chain = search([leaf]);
  if (chain !== undefined) return { ok: true, chain };
  return nearMiss ?? { ok: false, reason: 'untrusted', detail: 'no chain to a trusted CA' };
}

function validity(cert: X509Certificate, now: Date): ChainResult | undefined {
  if (now.getTime() < Date.parse(cert.validFrom)) {
    return { ok: false, reason: 'not-yet-valid', detail: `${cert.subject || cert.serialNumber} valid from ${cert.validFrom}` };
  }
  if (now.getTime() > Date.parse(cert.validTo)) {
    return { ok: false, reason: 'expired', detail: `${cert.subject || cert.serialNumber} expired ${cert.validTo}` };
  }
  return undefined;
}

/**
 * Whether `issuer` may have issued `child`, below which `intermediatesBelow` CA certificates already sit.
 * 'not-issuer' when names, key identifiers or the signature do not match (keep searching); a ChainResult when it
 * did sign `child` but may not be used (expired, not a CA, path length exceeded).
 */
function issuerRefusal(
  child: X509Certificate,
  issuer: X509Certificate,
  intermediatesBelow: number,
  now: Date,
): ChainResult | 'not-issuer' | undefined {
  if (!child.checkIssued(issuer)) {
    // checkIssued also fails when the signer's keyUsage lacks keyCertSign; name that case rather than "untrusted".
    if (child.issuer === issuer.subject && child.verify(issuer.publicKey)) {
      return { ok: false, reason: 'issuer-not-ca', detail: `${issuer.subject} may not sign certificates` };
    }
    return 'not-issuer';
  }
  if (!child.verify(issuer.publicKey)) return 'not-issuer';
  // RFC 5280 §4.2.1.9: only a CA:TRUE certificate may sign others; a leaf signing leaves is the classic
  // basicConstraints bypass (CVE-2002-0862 class).
  if (!issuer.ca) return { ok: false, reason: 'issuer-not-ca', detail: `${issuer.subject} is not a CA` };
  // Any pathLenConstraint (≥ 0) allows a leaf right below; only deeper chains need the extension read.
  const pathLength = intermediatesBelow > 0 ? pathLengthOf(issuer) : undefined;
  if (pathLength !== undefined && intermediatesBelow > pathLength) {
    return { ok: false, reason: 'path-too-long', detail: `${issuer.subject} allows ${pathLength} intermediates` };
  }
  return validity(issuer, now);
}

/**
 * The issuer's pathLenConstraint. Node's X509Certificate does not expose it, so @peculiar/x509 parses it; that
 * module (and its ASN.1 stack) costs ~15 MB of memory, loaded only when a chain has an intermediate.
 */
function pathLengthOf(issuer: X509Certificate): number | undefined {
  const x509 = createRequire(import.meta.url)('@peculiar/x509') as typeof import('@peculiar/x509');
  return new x509.X509Certificate(issuer.raw).getExtension(x509.BasicConstraintsExtension)?.pathLength;
}

export type PeerRefusal =
  | 'no-certificate'
  | 'no-spiffe-id'
  | 'ca-certificate'
  | 'untrusted-trust-domain'
  | 'unexpected-id'
  | 'revoked-serial'
  | 'revoked-id'
  | ChainRefusal;

export type PeerDecision =
  | { ok: true; spiffeId: string; trustDomain: string }
  | { ok: false; reason: PeerRefusal; detail: string; spiffeId?: string };

export interface PeerSpiffeOptions {
  /**
   * Trust domain → its CA bundle (one PEM text or several). The bundle used is the one of the trust domain in the
   * peer's SPIFFE ID, never another: an SVID for spiffe://a signed by b's CA is refused (Envoy SPIFFE validator
   * rule, "trust bundles are isolated"). A trust domain with no bundle is refused.
   */
  bundles: Readonly<Record<string, string | readonly string[]>>;
  /** Exact SPIFFE IDs accepted. */
  expected?: readonly string[];
  /** Trust domains accepted (default: every domain with a bundle). */
  trustDomains?: readonly string[];
  /** Leaf certificates refused even when everything else holds (`compileRevocationList`). */
  revoked?: RevocationList;
}

export type PeerCertificateInput = PeerCertificate | DetailedPeerCertificate | X509Certificate | undefined | null;
export type SpiffePeerVerifier = (cert: PeerCertificateInput, now?: Date) => PeerDecision;

/**
 * Compiles the options once (bundles parsed, IDs validated; bad options throw here) and returns the per-connection
 * check. Identity comes from the URI SAN only, never the CN, a DNS or an IP SAN (CVE-2022-21656: SAN type confusion).
 */
export function createSpiffePeerVerifier(opts: PeerSpiffeOptions): SpiffePeerVerifier {
  const anchors = new Map<string, X509Certificate[]>();
  for (const [domain, pem] of Object.entries(opts.bundles)) {
    const texts = typeof pem === 'string' ? [pem] : pem;
    anchors.set(domain, texts.flatMap((text) => requireCertificates(text, `trust bundle of ${domain}`)));
  }
  const expected = opts.expected === undefined ? undefined : new Set(opts.expected.map(checkedId));
  const domains = new Set(opts.trustDomains ?? anchors.keys());
  for (const domain of [...domains, ...[...(expected ?? [])].map((id) => parseSpiffeId(id).trustDomain)]) {
    if (!anchors.has(domain)) throw new Error(`no trust bundle configured for trust domain ${domain}`);
  }
  const revoked = opts.revoked ?? compileRevocationList(undefined);

  return (input, now = new Date()) => {
    const peer = peerChain(input);
    if (peer === undefined) return { ok: false, reason: 'no-certificate', detail: 'peer presented no certificate' };
    const [leaf, ...intermediates] = peer;
    const spiffeId = spiffeIdFromCertificate(leaf!);
    if (spiffeId === undefined) {
      return { ok: false, reason: 'no-spiffe-id', detail: 'certificate has no single valid SPIFFE ID URI SAN' };
    }
    const refuse = (reason: PeerRefusal, detail: string): PeerDecision => ({ ok: false, reason, detail, spiffeId });
    const { trustDomain, path } = parseSpiffeId(spiffeId);
    // X509-SVID §2: a leaf SVID names a workload (non-empty path) and is never a CA.
    if (path === '') return refuse('no-spiffe-id', 'SPIFFE ID names only a trust domain');
    if (leaf!.ca) return refuse('ca-certificate', 'a CA certificate is not an X.509-SVID');
    const bundle = anchors.get(trustDomain);
    if (bundle === undefined || !domains.has(trustDomain)) {
      return refuse('untrusted-trust-domain', `trust domain ${trustDomain} is not trusted`);
    }
    if (expected !== undefined && !expected.has(spiffeId)) return refuse('unexpected-id', `${spiffeId} is not expected`);
    const chain = chainFrom(leaf!, intermediates, bundle, now);
    if (!chain.ok) return refuse(chain.reason, chain.detail);
    const revocation = revocationOf(leaf!, revoked, spiffeId);
    if (revocation !== undefined) return refuse(revocation.reason, revocation.detail);
    return { ok: true, spiffeId, trustDomain };
  };
}

/** `mesh.revoked`, compiled once per config: serials normalized, so a handshake costs two Set lookups. */
export interface RevocationList {
  readonly serials: ReadonlySet<string>;
  readonly spiffeIds: ReadonlySet<string>;
}

/** Serials are hex as `X509Certificate.serialNumber` prints them (case, colons and leading zeros ignored). */
export function compileRevocationList(revoked: { serials?: readonly string[]; spiffeIds?: readonly string[] } | undefined): RevocationList {
  return Object.freeze({ serials: new Set((revoked?.serials ?? []).map(normalizeSerial)), spiffeIds: new Set(revoked?.spiffeIds ?? []) });
}

/**
 * Why `leaf` is revoked (by its serial, or by `spiffeId`, the leaf's SPIFFE ID when it has one), or undefined. The one
 * revocation check of every mutual-TLS path: ingress client certificates, upstream servers, the admin plane, egress.
 * Chain and identity checks are the caller's; this one only answers for a certificate already verified.
 */
export function revocationOf(
  leaf: X509Certificate,
  list: RevocationList,
  spiffeId: string | undefined,
): { reason: 'revoked-serial' | 'revoked-id'; detail: string } | undefined {
  if (list.serials.has(normalizeSerial(leaf.serialNumber))) return { reason: 'revoked-serial', detail: `serial ${leaf.serialNumber} is revoked` };
  if (spiffeId !== undefined && list.spiffeIds.has(spiffeId)) return { reason: 'revoked-id', detail: `${spiffeId} is revoked` };
  return undefined;
}

/** One-shot form of `createSpiffePeerVerifier`; prefer the factory on a hot path. */
export function verifyPeerSpiffe(cert: PeerCertificateInput, opts: PeerSpiffeOptions, now?: Date): PeerDecision {
  return createSpiffePeerVerifier(opts)(cert, now);
}

function checkedId(id: string): string {
  parseSpiffeId(id);
  return id;
}

function normalizeSerial(serial: string): string {
  return serial.replace(/:/g, '').toUpperCase().replace(/^0+(?=.)/, '');
}

/** Leaf first, then whatever issuers the peer sent (as `getPeerCertificate(true)` or `getPeerX509Certificate()` link them). */
function peerChain(input: PeerCertificateInput): X509Certificate[] | undefined {
  if (input == null) return undefined;
  if (input instanceof X509Certificate) {
    const chain = [input];
    for (let c = input.issuerCertificate; c !== undefined && chain.length <= MAX_DEPTH; c = c.issuerCertificate) {
      if (chain.some((seen) => seen.fingerprint256 === c!.fingerprint256)) break;
      chain.push(c);
    }
    return chain;
  }
  // getPeerCertificate() answers {} when the peer sent nothing.
  if (!(input.raw instanceof Buffer) || input.raw.length === 0) return undefined;
  const chain = [new X509Certificate(input.raw)];
  let c = 'issuerCertificate' in input ? input.issuerCertificate : undefined;
  while (c !== undefined && c.raw instanceof Buffer && chain.length <= MAX_DEPTH) {
    const cert = new X509Certificate(c.raw);
    if (chain.some((seen) => seen.fingerprint256 === cert.fingerprint256)) break;
    chain.push(cert);
    c = c.issuerCertificate;
  }
  return chain;
}
