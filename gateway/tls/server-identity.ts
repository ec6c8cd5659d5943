// Who answered on a TLS connection the gateway dialled, when it is checked by name: an ingress upstream without
// `tls.spiffeId`, or an egress origination. OpenSSL has already verified the chain against the trusted CAs; the
// name is the configured one, never the name the connection happened to be made with (undici would take that from
// the request's Host, the client's choice); then `mesh.revoked`, the check the SPIFFE verifier makes itself.
// Both run once per handshake, so revocation costs per connection, not per request.
import { X509Certificate } from 'node:crypto';
import tls, { type PeerCertificate } from 'node:tls';
import { spiffeIdFromCertificate } from '../../certs/spiffe-id.js';
import { revocationOf, type RevocationList } from '../../certs/verify.js';

/** Error code carried by identity failures, so the proxies map them to GW_UPSTREAM_IDENTITY (502). */
export const UPSTREAM_IDENTITY_ERROR = 'GW_UPSTREAM_IDENTITY';

/** `name`: the configured server name (an IP literal is matched against the IP SANs). */
export function checkServerName(name: string, cert: PeerCertificate, revoked: RevocationList | undefined): Error | undefined {
  return tls.checkServerIdentity(name, cert) ?? revokedError(cert, revoked);
}

function revokedError(cert: PeerCertificate, revoked: RevocationList | undefined): Error | undefined {
  if (!revoked || (revoked.serials.size === 0 && revoked.spiffeIds.size === 0)) return undefined;
  const leaf = new X509Certificate(cert.raw);
  const revocation = revocationOf(leaf, revoked, spiffeIdFromCertificate(leaf));
  return revocation && identityError(revocation);
}

/** An identity refusal as an Error with `code` and `reason` (`revoked-serial`, `revoked-id`, `id-mismatch`, …). */
export function identityError(refusal: { reason: string; detail: string }): Error {
  return Object.assign(new Error(`upstream refused: ${refusal.detail}`), { code: UPSTREAM_IDENTITY_ERROR, reason: refusal.reason });
}
