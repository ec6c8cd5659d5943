// How the gateway checks who answered on an upstream TLS connection. OpenSSL has already verified the
// chain against the trusted CAs; with an expected SPIFFE ID the SPIFFE verifier adds the identity (the one
// URI SAN must equal it; DNS names and the CN are ignored, CVE-2022-21656 SAN type confusion), the
// trust-domain isolation of bundles and revocation. Without one, the upstream's configured name and
// `mesh.revoked` (tls/server-identity.ts).
import type { PeerCertificate } from 'node:tls';
import type { RevocationList, SpiffePeerVerifier } from '../../../certs/verify.js';
import { checkServerName, identityError } from '../../tls/server-identity.js';

/** `name`: `tls.serverName`, else the upstream URL's host (an IP literal is matched against the IP SANs). */
export function upstreamIdentityCheck(verify: SpiffePeerVerifier | undefined, name: string, revoked?: RevocationList) {
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    if (!verify) return checkServerName(name, cert, revoked);
    const decision = verify(cert);
    return decision.ok ? undefined : identityError(decision);
  };
}
