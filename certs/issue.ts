// Building and signing mesh certificates: CAs and X.509-SVIDs. Pure: no file I/O.
//
// Library split (team rule): node-forge builds and signs RSA certificates. node-forge has no ECDSA, so any
// certificate with an EC key on either side (EC subject or EC issuer) is built with @peculiar/x509's extension
// and name encoders plus its ASN.1 schema (@peculiar/asn1-x509) and signed with node:crypto.sign. We do not use
// X509CertificateGenerator: it signs through WebCrypto, which is asynchronous, and this API is synchronous so
// tests and start-up code can build a PKI without awaiting. Keys always come from node:crypto (native, fast).
// Nothing here verifies a signature; verification lives in verify.ts and uses Node's OpenSSL only.
import {
  X509Certificate,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import * as x509 from '@peculiar/x509';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import { parseSpiffeId, parseTrustDomain, trustDomainOfCa } from './spiffe-id.js';
import type { CertKeyPem, IssuedCertificate, KeyType } from './types.js';

export type { CertKeyPem, IssuedCertificate, KeyType } from './types.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** X509-SVID: short-lived by design; Istio's SECRET_TTL default. */
/** RSA 2048 by default, signed by node-forge; ECDSA P-256 on request (faster handshakes). */
export const DEFAULT_KEY_TYPE: KeyType = 'rsa';
export const DEFAULT_LEAF_TTL_MS = DAY;
export const DEFAULT_ROOT_TTL_MS = 10 * 365 * DAY;
export const DEFAULT_INTERMEDIATE_TTL_MS = 365 * DAY;
/** Backdating absorbs clock skew between the issuer and the peers that will check notBefore. */
const BACKDATE_MS = 60_000;

export interface CreateCaOptions {
  commonName: string;
  /** Adds the URI SAN `spiffe://<trustDomain>` (SPIFFE trust bundle convention). */
  trustDomain?: string;
  ttlMs?: number;
  notBefore?: Date;
  keyType?: KeyType;
  /** Signing CA: makes an intermediate (pathlen 0) instead of a self-signed root. */
  issuer?: CertKeyPem;
}

export interface IssueOptions {
  /** Makes the certificate an X.509-SVID with this ID as its only URI SAN. */
  spiffeId?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  commonName?: string;
  /** Default 24 h, cut to the CA's notAfter; an explicit TTL past the CA's notAfter throws. */
  ttlMs?: number;
  notBefore?: Date;
  keyType?: KeyType;
}

/** What a certificate says, independent of the library that encodes it. */
interface Profile {
  commonName: string | undefined;
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** undefined for an end-entity certificate. */
  ca: { pathLen: number | undefined } | undefined;
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  subjectKey: KeyObject;
}

interface Signer {
  key: KeyObject;
  /** Undefined when the certificate signs itself. */
  cert: X509Certificate | undefined;
  keyId: Buffer;
}

export function createCa(opts: CreateCaOptions): CertKeyPem {
  if (!opts.commonName) throw new Error('CA commonName is required');
  const uris = opts.trustDomain === undefined ? [] : [`spiffe://${parseTrustDomain(opts.trustDomain)}`];
  const keys = generateKeys(opts.keyType ?? DEFAULT_KEY_TYPE);
  const issuer = opts.issuer === undefined ? undefined : loadSigner(opts.issuer);
  const profile = makeProfile(
    opts,
    opts.issuer === undefined ? DEFAULT_ROOT_TTL_MS : DEFAULT_INTERMEDIATE_TTL_MS,
    issuer?.cert,
    keys.publicKey,
  );
  const certPem = encode(
    {
      ...profile,
      commonName: opts.commonName,
      // RFC 5280 §4.2.1.9: pathLenConstraint 0 lets an intermediate sign leaves only.
      ca: { pathLen: issuer === undefined ? undefined : 0 },
      uris,
      dnsNames: [],
      ipAddresses: [],
    },
    issuer ?? { key: keys.privateKey, cert: undefined, keyId: keyIdentifier(keys.publicKey) },
  );
  return { certPem, keyPem: pkcs8(keys.privateKey) };
}

export function issueCertificate(ca: CertKeyPem, opts: IssueOptions): IssuedCertificate {
  const dnsNames = opts.dnsNames ?? [];
  const ipAddresses = opts.ipAddresses ?? [];
  for (const ip of ipAddresses) if (isIP(ip) === 0) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
  for (const name of dnsNames) {
    // A NUL or separator inside a DNS SAN is how names get smuggled past matchers (CVE-2025-66220).
    if (!/^[A-Za-z0-9*._-]+$/.test(name)) throw new Error(`not a DNS name: ${JSON.stringify(name)}`);
  }
  if (opts.spiffeId !== undefined) parseSpiffeId(opts.spiffeId);
  const uris = opts.spiffeId === undefined ? [] : [opts.spiffeId];
  if (uris.length + dnsNames.length + ipAddresses.length === 0 && !opts.commonName) {
    throw new Error('a certificate needs a SPIFFE ID, a DNS name, an IP address or a common name');
  }
  const signer = loadSigner(ca);
  const keys = generateKeys(opts.keyType ?? DEFAULT_KEY_TYPE);
  const profile: Profile = {
    ...makeProfile(opts, DEFAULT_LEAF_TTL_MS, signer.cert, keys.publicKey),
    commonName: opts.commonName ?? dnsNames[0],
    ca: undefined,
    uris,
    dnsNames,
    ipAddresses,
  };
  const certPem = encode(profile, signer);
  return {
    certPem,
    keyPem: pkcs8(keys.privateKey),
    serial: new X509Certificate(certPem).serialNumber,
    notAfter: profile.notAfter,
  };
}

/** The trust domain a CA certificate (PEM) vouches for, from its `spiffe://<td>` URI SAN. */
export function caTrustDomain(caCertPem: string): string | undefined {
  return trustDomainOfCa(new X509Certificate(caCertPem));
}

function makeProfile(
  opts: { ttlMs?: number; notBefore?: Date },
  defaultTtlMs: number,
  issuerCert: X509Certificate | undefined,
  subjectKey: KeyObject,
): Omit<Profile, 'commonName' | 'ca' | 'uris' | 'dnsNames' | 'ipAddresses'> {
  const ttlMs = opts.ttlMs ?? defaultTtlMs;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new Error(`ttlMs must be a positive number, got ${ttlMs}`);
  const start = opts.notBefore?.getTime() ?? Date.now();
  const notBefore = new Date(opts.notBefore === undefined ? start - BACKDATE_MS : start);
  // X.509 times have one-second resolution; truncate so the returned notAfter equals the encoded one.
  let notAfter = new Date(Math.floor((start + ttlMs) / 1000) * 1000);
  notBefore.setUTCMilliseconds(0);
  if (issuerCert !== undefined) {
    const caNotAfter = new Date(issuerCert.validTo);
    // A default lifetime ends with the issuer's; an explicit one that cannot be honoured is the caller's error.
    if (opts.ttlMs === undefined && notAfter > caNotAfter) notAfter = caNotAfter;
    if (notAfter > caNotAfter) {
      throw new Error(
        `requested notAfter ${notAfter.toISOString()} is past the issuing CA's notAfter ${caNotAfter.toISOString()}`,
      );
    }
  }
  return { serial: randomSerial(), notBefore, notAfter, subjectKey };
}

function loadSigner(ca: CertKeyPem): Signer {
  const cert = new X509Certificate(ca.certPem);
  const key = createPrivateKey(ca.keyPem);
  if (!cert.ca) throw new Error('issuer certificate is not a CA (basicConstraints CA:false)');
  if (!cert.checkPrivateKey(key)) throw new Error("issuer key does not match the issuer certificate");
  // Reuse the CA's own subjectKeyIdentifier for our authorityKeyIdentifier: OpenSSL refuses an issuer whose SKI
  // differs from the child's AKI, and a CA made elsewhere may derive its SKI differently.
  const ski = new x509.X509Certificate(cert.raw).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  return { key, cert, keyId: ski === undefined ? keyIdentifier(cert.publicKey) : Buffer.from(ski, 'hex') };
}

function generateKeys(keyType: KeyType): { publicKey: KeyObject; privateKey: KeyObject } {
  switch (keyType) {
    case 'rsa':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'ec':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    default:
      throw new Error(`unknown key type ${JSON.stringify(keyType)} (expected rsa or ec)`);
  }
}

function pkcs8(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** X509-SVID §4: serials are unique per CA; 126 random bits, positive and with no leading zero octet (DER). */
function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  return serial;
}

function spki(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING (what node-forge and OpenSSL compute). */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const info = AsnConvert.parse(spki(publicKey), asn.SubjectPublicKeyInfo);
  return createHash('sha1').update(Buffer.from(info.subjectPublicKey)).digest();
}

function encode(profile: Profile, signer: Signer): string {
  const rsaOnly = profile.subjectKey.asymmetricKeyType === 'rsa' && signer.key.asymmetricKeyType === 'rsa';
  return rsaOnly ? encodeWithForge(profile, signer) : encodeWithPeculiar(profile, signer);
}

function keyUsageFlags(profile: Profile): x509.KeyUsageFlags {
  if (profile.ca) return x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;
  // X509-SVID §4.3: digitalSignature; keyEncipherment too for RSA key exchange.
  return profile.subjectKey.asymmetricKeyType === 'rsa'
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
}

/** RFC 5280 §4.2.1.6: with an empty subject the SAN extension carries the identity and MUST be critical. */
function sanCritical(profile: Profile): boolean {
  return profile.commonName === undefined;
}

function encodeWithForge(profile: Profile, signer: Signer): string {
  const pki = forge.pki;
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(profile.subjectKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = profile.serial.toString('hex');
  cert.validity.notBefore = profile.notBefore;
  cert.validity.notAfter = profile.notAfter;
  const subject = profile.commonName === undefined ? [] : [{ name: 'commonName', value: profile.commonName }];
  cert.setSubject(subject);
  cert.setIssuer(signer.cert === undefined ? subject : pki.certificateFromPem(signer.cert.toString()).subject.attributes);
  const flags = keyUsageFlags(profile);
  const extensions: object[] = [
    profile.ca
      ? { name: 'basicConstraints', critical: true, cA: true, ...pathLen(profile.ca.pathLen) }
      : { name: 'basicConstraints', critical: true, cA: false },
    {
      name: 'keyUsage',
      critical: true,
      digitalSignature: Boolean(flags & x509.KeyUsageFlags.digitalSignature),
      keyEncipherment: Boolean(flags & x509.KeyUsageFlags.keyEncipherment),
      keyCertSign: Boolean(flags & x509.KeyUsageFlags.keyCertSign),
      cRLSign: Boolean(flags & x509.KeyUsageFlags.cRLSign),
    },
    ...(profile.ca ? [] : [{ name: 'extKeyUsage', serverAuth: true, clientAuth: true }]),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: signer.keyId.toString('binary') },
  ];
  const altNames = [
    ...profile.uris.map((value) => ({ type: 6, value })),
    ...profile.dnsNames.map((value) => ({ type: 2, value })),
    ...profile.ipAddresses.map((ip) => ({ type: 7, ip })),
  ];
  if (altNames.length > 0) extensions.push({ name: 'subjectAltName', critical: sanCritical(profile), altNames });
  cert.setExtensions(extensions);
  cert.sign(pki.privateKeyFromPem(pkcs8(signer.key)) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return pki.certificateToPem(cert);
}

function pathLen(value: number | undefined): { pathLenConstraint?: number } {
  return value === undefined ? {} : { pathLenConstraint: value };
}

// AlgorithmIdentifiers of the signature node:crypto.sign('sha256', …) produces for each key type: RFC 4055 §5
// (sha256WithRSAEncryption, parameters NULL) and RFC 5758 §3.2 (ecdsa-with-SHA256, parameters absent).
const DER_NULL = new Uint8Array([0x05, 0x00]).buffer;
const SIGNATURE_ALGORITHMS: Record<string, () => asn.AlgorithmIdentifier> = {
  rsa: () => new asn.AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.11', parameters: DER_NULL }),
  ec: () => new asn.AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }),
};

function encodeWithPeculiar(profile: Profile, signer: Signer): string {
  const algorithm = SIGNATURE_ALGORITHMS[signer.key.asymmetricKeyType ?? '']?.();
  if (algorithm === undefined) throw new Error(`unsupported issuer key type ${signer.key.asymmetricKeyType}`);
  const subject =
    profile.commonName === undefined
      ? new asn.Name()
      : AsnConvert.parse(new x509.Name([{ CN: [profile.commonName] }]).toArrayBuffer(), asn.Name);
  const issuer =
    signer.cert === undefined ? subject : AsnConvert.parse(signer.cert.raw, asn.Certificate).tbsCertificate.subject;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(profile.ca !== undefined, profile.ca?.pathLen, true),
    new x509.KeyUsagesExtension(keyUsageFlags(profile), true),
    ...(profile.ca
      ? []
      : [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth])]),
    new x509.SubjectKeyIdentifierExtension(keyIdentifier(profile.subjectKey).toString('hex')),
    new x509.AuthorityKeyIdentifierExtension(signer.keyId.toString('hex')),
  ];
  const altNames: x509.JsonGeneralNames = [
    ...profile.uris.map((value) => ({ type: 'url' as const, value })),
    ...profile.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...profile.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames, sanCritical(profile)));
  const tbsCertificate = new asn.TBSCertificate({
    version: asn.Version.v3,
    serialNumber: new Uint8Array(profile.serial).buffer,
    signature: algorithm,
    issuer,
    validity: new asn.Validity({ notBefore: profile.notBefore, notAfter: profile.notAfter }),
    subject,
    subjectPublicKeyInfo: AsnConvert.parse(spki(profile.subjectKey), asn.SubjectPublicKeyInfo),
    extensions: new asn.Extensions(extensions.map((e) => AsnConvert.parse(e.rawData, asn.Extension))),
  });
  // node:crypto.sign emits ECDSA signatures as DER Ecdsa-Sig-Value, the encoding X.509 expects (RFC 5480 §2.2).
  const signature = sign('sha256', Buffer.from(AsnConvert.serialize(tbsCertificate)), signer.key);
  const certificate = new asn.Certificate({
    tbsCertificate,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  });
  return x509.PemConverter.encode(AsnConvert.serialize(certificate), 'CERTIFICATE') + '\n';
}
