// PEM text helpers shared by verify, inspect, store and the CLI. Pure.
import { X509Certificate } from 'node:crypto';

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Every certificate in a PEM text, in order (leaf first for a chain file). `X509Certificate` alone reads only the
 * first block of a bundle, which would silently drop CAs or intermediates.
 */
export function certificatesFromPem(pem: string): X509Certificate[] {
  return (pem.match(CERTIFICATE_BLOCK) ?? []).map((block) => new X509Certificate(block));
}

/** Like `certificatesFromPem`, but a text with no certificate is an error. */
export function requireCertificates(pem: string, what: string): X509Certificate[] {
  const certs = certificatesFromPem(pem);
  if (certs.length === 0) throw new Error(`${what}: no PEM certificate found`);
  return certs;
}
