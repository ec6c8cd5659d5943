// A readable summary of a certificate (what `portcullis certs inspect` prints). Pure; never touches keys.
import { requireCertificates } from './pem.js';
import { parseSubjectAltNames, spiffeIdFromCertificate, type SubjectAltName } from './spiffe-id.js';
import { verifyChain, type ChainResult } from './verify.js';

export interface CertificateInfo {
  subject: string;
  issuer: string;
  /** Undefined when Node's SAN text could not be parsed unambiguously. */
  subjectAltNames: SubjectAltName[] | undefined;
  spiffeId: string | undefined;
  isCa: boolean;
  notBefore: Date;
  notAfter: Date;
  /** Negative once expired. */
  timeLeftMs: number;
  serial: string;
  /** e.g. `ec P-256`, `rsa 2048`. */
  keyType: string;
  fingerprint256: string;
  /** Certificates in the PEM text (leaf + intermediates). */
  chainLength: number;
  /** Present when a bundle was given. */
  chain?: { ok: true } | { ok: false; reason: string };
}

const CURVE_NAMES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

export function inspectCertificate(pem: string, bundlePem?: string | string[], now: Date = new Date()): CertificateInfo {
  const certs = requireCertificates(pem, 'certificate');
  const leaf = certs[0]!;
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  const info: CertificateInfo = {
    subject: (leaf.subject ?? '').replace(/\n/g, ', '),
    issuer: (leaf.issuer ?? '').replace(/\n/g, ', '),
    subjectAltNames: parseSubjectAltNames(leaf.subjectAltName ?? ''),
    spiffeId: spiffeIdFromCertificate(leaf),
    isCa: leaf.ca,
    notBefore,
    notAfter,
    timeLeftMs: notAfter.getTime() - now.getTime(),
    serial: leaf.serialNumber,
    keyType: describeKey(leaf.publicKey),
    fingerprint256: leaf.fingerprint256,
    chainLength: certs.length,
  };
  if (bundlePem !== undefined) {
    const result: ChainResult = verifyChain(pem, typeof bundlePem === 'string' ? [bundlePem] : bundlePem, now);
    info.chain = result.ok ? { ok: true } : { ok: false, reason: `${result.reason}: ${result.detail}` };
  }
  return info;
}

function describeKey(key: import('node:crypto').KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') return `ec ${CURVE_NAMES[details.namedCurve ?? ''] ?? details.namedCurve}`;
  if (key.asymmetricKeyType === 'rsa') return `rsa ${details.modulusLength}`;
  return String(key.asymmetricKeyType);
}

/** The `certs inspect` text: one `field: value` per line. */
export function formatInspection(info: CertificateInfo): string {
  const sans =
    info.subjectAltNames === undefined
      ? '(unparsable)'
      : info.subjectAltNames.map((san) => `${san.type}:${JSON.stringify(san.value)}`).join(', ') || '(none)';
  const lines = [
    ['subject', info.subject || '(empty)'],
    ['issuer', info.issuer],
    ['subject alt names', sans],
    ['spiffe id', info.spiffeId ?? '(none)'],
    ['ca', info.isCa ? 'yes' : 'no'],
    ['not before', info.notBefore.toISOString()],
    ['not after', info.notAfter.toISOString()],
    ['time left', info.timeLeftMs > 0 ? formatDuration(info.timeLeftMs) : `expired ${formatDuration(-info.timeLeftMs)} ago`],
    ['serial', info.serial],
    ['key', info.keyType],
    ['sha256 fingerprint', info.fingerprint256],
    ['certificates in file', String(info.chainLength)],
  ];
  if (info.chain !== undefined) lines.push(['chain verifies', info.chain.ok ? 'yes' : `no (${info.chain.reason})`]);
  return lines.map(([k, v]) => `${k}: ${v}`).join('\n') + '\n';
}

function formatDuration(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  return days > 0 ? `${days}d ${hours}h` : `${hours}h ${minutes % 60}m`;
}
