// Who is asking to leave the mesh. The verified mTLS client certificate (X.509-SVID) decides first; only a caller
// without one can be named by its source address, and only when the config maps that address to a name.
// A client certificate that did not verify never falls back to the source address: presenting a bad certificate
// must not be better than presenting none, and a revoked one (`mesh.revoked`) is refused outright.
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { spiffeIdFromCertificate } from '../../../certs/spiffe-id.js';
import { revocationOf, type RevocationList } from '../../../certs/verify.js';
import { GatewayError } from '../../core/errors.js';
import { countHeader } from '../../core/raw-headers.js';
import type { JwtAuthn } from '../../jwt/verifier.js';
import { ipMatcher, notAnIpOrCidr, parseCidr, parseIp, type IpRange } from '../../core/net/ip.js';

export type Identity =
  | { kind: 'spiffe'; principal: string }
  | { kind: 'jwt'; principal: string }
  | { kind: 'source'; principal: string }
  | { kind: 'anonymous'; principal: 'anonymous' };

export const ANONYMOUS: Identity = Object.freeze({ kind: 'anonymous', principal: 'anonymous' });

export interface IdentifyOptions {
  sourceIdentities?: readonly { name: string; cidrs: readonly string[] }[];
  /** `mesh.revoked`: a verified certificate listed here is refused, whichever CA issued it. */
  revoked?: RevocationList;
}

export interface IdentifyDeps {
  /** Seam for the SVID → SPIFFE ID extraction; default the strict one from certs/spiffe-id.ts. */
  spiffeIdFromCertificate?: typeof spiffeIdFromCertificate;
}

export type Identify = (socket: Socket) => Identity;

/** The JWT fallback for callers without an SVID: `Proxy-Authorization: Bearer`, verified by the shared JWT service. */
export type ProxyTokenIdentify = (headers: IncomingHttpHeaders, rawHeaders: readonly string[]) => Promise<Identity | undefined>;

const BEARER = /^Bearer +(\S+)$/i;

/**
 * Reads `Proxy-Authorization: Bearer <JWT>` and verifies it with the named providers of the gateway's one JWT
 * service (the ingress's key fetchers and token cache). No header: undefined (the next identity source decides).
 * A bad, repeated or non-Bearer header throws GW_EGRESS_NO_IDENTITY: an invalid token is never downgraded to the
 * source address.
 */
export function createProxyTokenIdentify(providers: readonly string[], jwt: JwtAuthn): ProxyTokenIdentify {
  for (const name of providers) {
    if (!jwt.providerNames.has(name)) throw new Error(`egress.proxyAuthorization: no JWT provider named ${name}`);
  }
  const allowed: ReadonlySet<string> = new Set(providers);
  return async (headers, rawHeaders) => {
    const value = headers['proxy-authorization'];
    if (value === undefined) return undefined;
    if (countHeader(rawHeaders, 'proxy-authorization') > 1) throw noIdentity('multiple_tokens');
    const token = BEARER.exec(value)?.[1];
    if (token === undefined) throw noIdentity('token_prefix_missing');
    try {
      const { auth } = await jwt.verifyToken(token, allowed);
      return { kind: 'jwt', principal: `jwt:${auth.principal}` };
    } catch (err) {
      if (err instanceof GatewayError) throw noIdentity(err.reason ?? 'token_invalid');
      throw err;
    }
  };
}

const noIdentity = (reason: string): GatewayError => new GatewayError('GW_EGRESS_NO_IDENTITY', reason, PROXY_CHALLENGE);

/** RFC 9110 §11.7.1 needs a challenge: the caller must present its X.509-SVID or a bearer token. */
export const PROXY_CHALLENGE = { 'proxy-authenticate': 'SPIFFE realm="portcullis-egress", Bearer realm="portcullis-egress"' };

export function createIdentify(options: IdentifyOptions, deps: IdentifyDeps = {}): Identify {
  const extract = deps.spiffeIdFromCertificate ?? spiffeIdFromCertificate;
  const sources = (options.sourceIdentities ?? []).map(({ name, cidrs }) => {
    if (name === ANONYMOUS.principal) throw new Error('sourceIdentities: "anonymous" is reserved');
    return {
      name,
      matches: ipMatcher(
        cidrs.map((c): IpRange => {
          const range = parseCidr(c);
          if (range === undefined) throw new Error(`sourceIdentities[${name}]: ${notAnIpOrCidr(c)}`);
          return range;
        }),
      ),
    };
  });

  return (socket) => {
    if (socket instanceof TLSSocket) {
      const cert = socket.authorized ? socket.getPeerX509Certificate() : undefined;
      const id = cert ? extract(cert) : undefined;
      // Thrown rather than anonymous: a revoked SVID must not fall back to a proxy token or the source address.
      if (cert && options.revoked && revocationOf(cert, options.revoked, id)) throw noIdentity('client_certificate_revoked');
      if (id !== undefined) return { kind: 'spiffe', principal: id };
      if (socket.getPeerCertificate()?.raw !== undefined) return ANONYMOUS;
    }
    if (sources.length === 0) return ANONYMOUS;
    // A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`, which parseIp reads as the IPv4 address.
    const ip = socket.remoteAddress === undefined ? undefined : parseIp(socket.remoteAddress);
    if (ip === undefined) return ANONYMOUS;
    const match = sources.find((s) => s.matches(ip));
    return match ? { kind: 'source', principal: match.name } : ANONYMOUS;
  };
}
