// The mTLS half of authentication. The client certificate is judged once, when the handshake completes
// (OpenSSL has verified the chain; the SPIFFE verifier adds trust-domain isolation and revocation), and
// the verdict is kept on the socket: a connection's peer never changes, so requests only read it.
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { spiffeIdFromCertificate } from '../../../certs/spiffe-id.js';
import { revocationOf, type RevocationList, type SpiffePeerVerifier } from '../../../certs/verify.js';
import { GatewayError } from '../../core/errors.js';

/** `{ id }` a verified peer; `{ refused }` a certificate that was presented but not accepted. */
export type PeerVerdict = { id: string } | { refused: string };

const VERDICT = Symbol('portcullis.peerVerdict');
type Judged = TLSSocket & { [VERDICT]?: PeerVerdict };

/**
 * Runs at 'secureConnection' (resumed sessions too, so a reload's revocations reach them); returns the verdict
 * (undefined when no certificate was presented). Without a SPIFFE verifier (a host's own `clientCa`), `revoked`
 * is the only check beyond OpenSSL's chain.
 */
export function judgePeer(socket: TLSSocket, verify: SpiffePeerVerifier | undefined, revoked?: RevocationList): PeerVerdict | undefined {
  const cert = socket.getPeerCertificate(true);
  if (!cert || !cert.raw) return undefined;
  let verdict: PeerVerdict;
  if (!socket.authorized) verdict = { refused: String(socket.authorizationError ?? 'unverified') };
  else if (verify) {
    const decision = verify(cert);
    verdict = decision.ok ? { id: decision.spiffeId } : { refused: decision.reason };
  } else {
    const leaf = new X509Certificate(cert.raw);
    const id = spiffeIdFromCertificate(leaf);
    const revocation = revoked && revocationOf(leaf, revoked, id);
    verdict = revocation ? { refused: revocation.reason } : { id: id ?? '' };
  }
  (socket as Judged)[VERDICT] = verdict;
  return verdict;
}

/**
 * The request's peer identity. A certificate that was presented but refused is answered 403 rather than
 * downgraded to anonymous (Istio's OPTIONAL_MUTUAL verifies a certificate whenever one is presented).
 */
export function peerSpiffeId(socket: TLSSocket): string | undefined {
  const verdict = (socket as Judged)[VERDICT];
  if (!verdict) return undefined;
  if ('refused' in verdict) throw new GatewayError('GW_AUTHN_CLIENT_CERT', verdict.refused);
  return verdict.id || undefined;
}
