// First stage to touch headers: copies the client's headers into the set that will be forwarded,
// dropping everything a client must not be able to assert (STYLE lesson 10). Stages after this one add
// the gateway's own headers to that set, after hop-by-hop processing, so a client's `Connection:` list
// can never remove them (CVE-2024-45410).
import type { IncomingHttpHeaders } from 'node:http';
import { REQUEST_LINE_OVERRIDE_HEADERS } from '../../config/schema.js';
import { HOP_BY_HOP_HEADERS, hopByHop } from '../../core/net/hop-by-hop.js';

export type OutgoingHeaders = Record<string, string | string[]>;

/** Headers the gateway itself sets: a client-sent copy is a spoofing attempt (CVE-2023-27487, CVE-2024-45806). */
const GATEWAY_SET = [
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-client-cert',
  'forwarded',
  'x-real-ip',
  'x-request-id',
];

/**
 * Headers that make a backend framework serve another path or method than the one routed and authorized
 * (`X-Original-URL: /admin` on a request for `/public`, `X-HTTP-Method-Override: DELETE` on a GET): the
 * policy never saw what the backend executes, so they pass only where a route allows one by name.
 */
const OVERRIDES: ReadonlySet<string> = new Set(REQUEST_LINE_OVERRIDE_HEADERS);

/**
 * Identity, client-certificate and original-host headers that some trusted proxy sets for the backend behind it
 * (oauth2-proxy, nginx, HAProxy, Envoy, IIS ARR, AWS ALB, Kubernetes' front proxy, Grafana's auth proxy). A lenient
 * backend believes them without asking who sent them, so a client copy would be an identity or a certificate the
 * gateway never verified (CVE-2025-64484): every one is stripped, whatever the route. `x-forwarded-*` and
 * `x-envoy-*` go as whole families (Envoy strips `x-envoy-*` from untrusted clients); the request-line overrides
 * among them (`x-forwarded-uri`, …) are checked before these and pass where a route allows them.
 */
const PROXY_ASSERTED: ReadonlySet<string> = new Set([
  'x-original-host',
  'x-host',
  'x-remote-user',
  'x-remote-group',
  'x-webauth-user',
  'x-client-verify',
  'x-arr-clientcert',
]);
/** The same, by prefix; each is an `x-` name, so only `x-` names are compared against them. */
const PROXY_ASSERTED_PREFIXES = [
  'x-forwarded-',
  'x-envoy-',
  'x-auth-request-',
  'x-ssl-client-',
  'x-client-cert',
  'x-amzn-mtls-clientcert',
  'x-remote-extra-',
];

/**
 * Whether a client-sent header (lower case) is one of those a trusted proxy asserts. Runs for every header of every
 * request: one character decides for most names, before any Set lookup or prefix comparison.
 */
function isProxyAsserted(name: string): boolean {
  switch (name.charCodeAt(0)) {
    case 120 /* x */:
      if (PROXY_ASSERTED.has(name)) return true;
      for (const prefix of PROXY_ASSERTED_PREFIXES) if (name.startsWith(prefix)) return true;
      return false;
    case 114 /* r */:
      return name === 'remote-user';
    case 115 /* s */:
      return name.startsWith('ssl-client-');
    default:
      return false;
  }
}

/**
 * `Expect: 100-continue` is answered by the gateway's own server (Node sends the 100 before the pipeline runs), so
 * the expectation is met on this hop; forwarded, undici refuses the request outright (UND_ERR_NOT_SUPPORTED, a 502
 * for every `curl -H 'Expect: 100-continue'`) and other clients would wait for a second 100 (RFC 9110 §10.1.1).
 */
const ANSWERED_HERE = ['expect'];

/**
 * Whether a route's header modifier must leave a request header (lower case) alone: the gateway sets it or strips it
 * from clients (`claimHeaders` too), or it frames the message. A modifier could otherwise forge what the gateway
 * vouches for, or desynchronize the upstream's framing. The proxy-asserted names (`isProxyAsserted`) are stripped
 * from clients but stay settable: the gateway vouches for none of them, and an operator who sets `Remote-User` on a
 * route does so deliberately, in the config, not on a client's word.
 */
export function isGatewayManaged(name: string, claimHeaders: readonly string[]): boolean {
  return (
    GATEWAY_SET.includes(name) ||
    ANSWERED_HERE.includes(name) ||
    name === 'host' ||
    name === 'content-length' ||
    HOP_BY_HOP_HEADERS.has(name) ||
    OVERRIDES.has(name) ||
    name.startsWith('x-portcullis-') ||
    name.includes('_') ||
    claimHeaders.includes(name)
  );
}

export interface HeaderSanitizer {
  /**
   * Returns the headers to forward; `host` and pseudo-headers are left for the route stage to set.
   * `allowedOverrides`: the request-line override headers the route lets through.
   */
  sanitize(headers: IncomingHttpHeaders, allowedOverrides?: ReadonlySet<string>): OutgoingHeaders;
}

/**
 * @param managed extra names the gateway sets (claim headers): stripped from every request, whatever
 *   the route, so no route can receive a client-forged identity header.
 */
export function createHeaderSanitizer(managed: readonly string[]): HeaderSanitizer {
  const dropped = new Set<string>([...GATEWAY_SET, ...ANSWERED_HERE, 'host', ...managed.map((h) => h.toLowerCase())]);
  return {
    sanitize(headers, allowedOverrides) {
      const out: OutgoingHeaders = {};
      const isHopByHop = hopByHop(headers.connection);
      for (const name in headers) {
        const value = headers[name];
        if (value === undefined || dropped.has(name) || isHopByHop(name) || name.charCodeAt(0) === 58 /* ':' pseudo-header */) continue;
        if (name.startsWith('x-portcullis-')) continue;
        // Dropped like nginx's default: `x_forwarded_for` reaches some frameworks as `x-forwarded-for`
        // (CVE-2025-64484), so no underscore spelling of any header may pass.
        if (name.includes('_')) continue;
        if (OVERRIDES.has(name) ? !allowedOverrides?.has(name) : isProxyAsserted(name)) continue;
        out[name] = value;
      }
      // `TE: trailers` is the one hop-by-hop value that must pass: gRPC depends on it.
      if (headers.te === 'trailers') out.te = 'trailers';
      return out;
    },
  };
}
