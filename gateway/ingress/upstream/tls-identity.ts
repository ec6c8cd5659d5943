// How the gateway checks who answered on an upstream TLS connection. OpenSSL has already verified the
// chain against the configured bundle; this adds the identity: with an expected SPIFFE ID, the one URI
// SAN must equal it (DNS names and the CN are ignored, CVE-2022-21656 SAN type confusion); without one,
// the usual DNS host name check applies.
import { X509Certificate } from 'node:crypto';
import tls, { type PeerCertificate } from 'node:tls';
import { spiffeIdFromCertificate } from '../../../certs/spiffe-id.js';

/** Error code carried by identity failures, so the proxy maps them to GW_UPSTREAM_IDENTITY (502). */
export const UPSTREAM_IDENTITY_ERROR = 'GW_UPSTREAM_IDENTITY';

export function upstreamIdentityCheck(expectedSpiffeId: string | undefined) {
  return (host: string, cert: PeerCertificate): Error | undefined => {
    if (!expectedSpiffeId) return tls.checkServerIdentity(host, cert);
    const actual = cert.raw ? spiffeIdFromCertificate(new X509Certificate(cert.raw)) : undefined;
    if (actual === expectedSpiffeId) return undefined;
    return Object.assign(new Error(`upstream SPIFFE ID ${actual ?? '(none)'} is not ${expectedSpiffeId}`), {
      code: UPSTREAM_IDENTITY_ERROR,
    });
  };
}
