// How the gateway checks who answered on an upstream TLS connection. OpenSSL has already verified the
// chain against the trusted CAs; with an expected SPIFFE ID the SPIFFE verifier adds the identity (the one
// URI SAN must equal it; DNS names and the CN are ignored, CVE-2022-21656 SAN type confusion), the
// trust-domain isolation of bundles and revocation. Without one, the usual DNS host name check applies, to the
// upstream's configured name: never the name the connection happened to be made with, which undici would take
// from the request's Host (the client's choice); then `mesh.revoked`, the check the SPIFFE verifier makes itself.
// checkServerIdentity runs once per handshake, so revocation costs per connection, not per request.
import { X509Certificate } from 'node:crypto';
import tls, { type PeerCertificate } from 'node:tls';
import { spiffeIdFromCertificate } from '../../../certs/spiffe-id.js';
import { revocationOf, type RevocationList, type SpiffePeerVerifier } from '../../../certs/verify.js';

/** Error code carried by identity failures, so the proxy maps them to GW_UPSTREAM_IDENTITY (502). */
export const UPSTREAM_IDENTITY_ERROR = 'GW_UPSTREAM_IDENTITY';

/** `name`: `tls.serverName`, else the upstream URL's host (an IP literal is matched against the IP SANs). */
export function upstreamIdentityCheck(verify: SpiffePeerVerifier | undefined, name: string, revoked?: RevocationList) {
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    if (!verify) return tls.checkServerIdentity(name, cert) ?? revokedError(cert, revoked);
    const decision = verify(cert);
    return decision.ok ? undefined : identityError(decision);
  };
}

function revokedError(cert: PeerCertificate, revoked: RevocationList | undefined): Error | undefined {
  if (!revoked) return undefined;
  const leaf = new X509Certificate(cert.raw);
  const revocation = revocationOf(leaf, revoked, spiffeIdFromCertificate(leaf));
  return revocation && identityError(revocation);
}

function identityError(refusal: { reason: string; detail: string }): Error {
  return Object.assign(new Error(`upstream refused: ${refusal.detail}`), { code: UPSTREAM_IDENTITY_ERROR, reason: refusal.reason });
}
