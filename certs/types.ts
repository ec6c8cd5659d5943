/** A certificate (PEM, possibly followed by its chain) and its PKCS#8 PEM private key. */
export interface CertKeyPem {
  certPem: string;
  keyPem: string;
}

/** `rsa` = RSA 2048, `ec` = ECDSA P-256. */
export type KeyType = 'rsa' | 'ec';

export const KEY_TYPES: readonly KeyType[] = ['rsa', 'ec'];

export interface IssuedCertificate extends CertKeyPem {
  /** Upper-case hex, as `crypto.X509Certificate.serialNumber` prints it (the form revocation lists use). */
  serial: string;
  notAfter: Date;
}
