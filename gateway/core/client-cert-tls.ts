// Server TLS for the listeners that ask clients for certificates (admin plane, egress proxy), built one way.
import { readFileSync } from 'node:fs';
import type { ServerOptions } from 'node:https';

export interface ClientCertTls {
  certificate: { cert: string; key: string };
  clientCa?: string;
}

/**
 * Client certificates are verified against `clientCa`, or the mesh trust bundle when unset. `requireCertificate`
 * false still asks for one, for listeners whose endpoints decide per request.
 */
export function clientCertTlsOptions(where: string, tls: ClientCertTls, meshBundlePem: string | undefined, requireCertificate: boolean): ServerOptions {
  const ca = tls.clientCa !== undefined ? readFileSync(tls.clientCa, 'utf8') : meshBundlePem;
  if (ca === undefined) throw new Error(`${where}: clientCa or the mesh trust bundle is required`);
  return {
    cert: readFileSync(tls.certificate.cert),
    key: readFileSync(tls.certificate.key),
    ca,
    requestCert: true,
    rejectUnauthorized: requireCertificate,
    minVersion: 'TLSv1.2',
  };
}
