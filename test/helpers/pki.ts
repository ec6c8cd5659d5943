// The test PKI: generated at run time (never committed), once per test process.
import { createCa, issueCertificate, type IssueOptions } from '../../certs/issue.js';
import type { CertKeyPem, IssuedCertificate } from '../../certs/types.js';

export interface TestPki {
  /** Root CA of `trustDomain` (ECDSA P-256, URI SAN `spiffe://<trustDomain>`). */
  ca: CertKeyPem;
  /** Root CA of `otherTrustDomain`: trusted by nobody who trusts `ca`. */
  otherCa: CertKeyPem;
  trustDomain: string;
  otherTrustDomain: string;
  /** A certificate signed by `ca`, e.g. `issue({ spiffeId: \`spiffe://${trustDomain}/ns/a/sa/b\` })`. */
  issue(opts: IssueOptions): IssuedCertificate;
  /** Like `issue`, but its validity ended a day ago. */
  expired(opts: IssueOptions): IssuedCertificate;
}

const DAY = 86_400_000;
let cached: TestPki | undefined;

export function testPki(): TestPki {
  cached ??= build();
  return cached;
}

function build(): TestPki {
  const trustDomain = 'portcullis.test';
  const otherTrustDomain = 'other.test';
  // Backdated so the expired leaf's validity window still lies inside its CA's.
  const notBefore = new Date(Date.now() - 30 * DAY);
  // ECDSA throughout: key generation is instant, so hundreds of test certificates cost nothing.
  const ca = createCa({ commonName: 'Portcullis Test Root CA', trustDomain, notBefore, ttlMs: 3650 * DAY, keyType: 'ec' });
  const otherCa = createCa({ commonName: 'Other Test Root CA', trustDomain: otherTrustDomain, notBefore, ttlMs: 3650 * DAY, keyType: 'ec' });
  return {
    ca,
    otherCa,
    trustDomain,
    otherTrustDomain,
    issue: (opts) => issueCertificate(ca, { keyType: 'ec', ...opts }),
    expired: (opts) => issueCertificate(ca, { keyType: 'ec', ...opts, notBefore: new Date(Date.now() - 2 * DAY), ttlMs: DAY }),
  };
}
