// How the gateway checks who answered on an upstream TLS connection. OpenSSL has already verified the
// chain against the trusted CAs; with an expected SPIFFE ID the SPIFFE verifier adds the identity (the one
// URI SAN must equal it; DNS names and the CN are ignored, CVE-2022-21656 SAN type confusion), the
// trust-domain isolation of bundles and revocation. Without one, the usual DNS host name check applies.
import tls, { type PeerCertificate } from 'node:tls';
import type { SpiffePeerVerifier } from '../../../certs/verify.js';

/** Error code carried by identity failures, so the proxy maps them to GW_UPSTREAM_IDENTITY (502). */
export const UPSTREAM_IDENTITY_ERROR = 'GW_UPSTREAM_IDENTITY';

export function upstreamIdentityCheck(verify: SpiffePeerVerifier | undefined) {
  return (host: string, cert: PeerCertificate): Error | undefined => {
    if (!verify) return tls.checkServerIdentity(host, cert);
    const decision = verify(cert);
    if (decision.ok) return undefined;
    return Object.assign(new Error(`upstream refused: ${decision.detail}`), { code: UPSTREAM_IDENTITY_ERROR, reason: decision.reason });
  };
}
