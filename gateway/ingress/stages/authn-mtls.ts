// The mTLS half of authentication: the SPIFFE ID of the client certificate OpenSSL verified during the
// handshake. Extracted once per connection (a connection's peer never changes) and cached on it.
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { spiffeIdFromCertificate } from '../../../certs/spiffe-id.js';
import { GatewayError } from '../../core/errors.js';

/** `undefined` = no certificate presented; a string = the verified peer's SPIFFE ID ('' when it has none). */
type PeerIdentity = string | undefined;

const byConnection = new WeakMap<object, PeerIdentity>();

/**
 * @param connection the TLS socket (HTTP/1.1) or HTTP/2 session the request arrived on: the cache key.
 * @throws GW_AUTHN_CLIENT_CERT when a certificate was presented but did not verify ('optional' hosts).
 */
export function peerSpiffeId(connection: object, socket: TLSSocket): string | undefined {
  let identity = byConnection.get(connection);
  if (identity === undefined && !byConnection.has(connection)) {
    identity = readPeer(socket);
    byConnection.set(connection, identity);
  }
  return identity || undefined;
}

function readPeer(socket: TLSSocket): PeerIdentity {
  const cert = socket.getPeerCertificate?.();
  if (!cert || !cert.raw) return undefined;
  // A certificate was sent: on an 'optional' host an invalid one is refused, not downgraded to anonymous
  // (Istio's OPTIONAL_MUTUAL verifies a certificate whenever one is presented).
  if (!socket.authorized) throw new GatewayError('GW_AUTHN_CLIENT_CERT', String(socket.authorizationError ?? 'unverified'));
  return spiffeIdFromCertificate(new X509Certificate(cert.raw)) ?? '';
}
