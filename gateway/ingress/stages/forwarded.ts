// X-Forwarded-* and the client address. Incoming X-Forwarded-For is believed only when the TCP peer is
// a configured trusted proxy (oauth2-proxy GHSA-7x63-xv5r-3p2x, Envoy CVE-2024-45806); the client is
// then the right-most address that is not itself a trusted proxy. Otherwise the peer is the client.
import { compileIpMatcher, parseIp, type IpMatcher } from '../../core/net/ip.js';
import type { OutgoingHeaders } from './sanitize-headers.js';

/** Where a request came from, worked out once per request. */
export interface ForwardedFor {
  /** The client address policies see as `remote.ip`. */
  remoteIp: string;
  /** The X-Forwarded-For value sent upstream: the believed chain extended by the peer, or the peer alone. */
  chain: string;
}

export interface ForwardedStage {
  resolve(sourceIp: string, xff: string | string[] | undefined): ForwardedFor;
  /** Sets the forwarded headers on the outgoing request. */
  apply(out: OutgoingHeaders, forwarded: ForwardedFor, host: string, port: number): void;
}

/** The trusted-proxy matcher; each bad entry adds a `trustedProxies[i]: …` problem (the config loader locates them). */
export function compileTrustedProxies(trustedProxies: readonly string[], problems: string[]): IpMatcher {
  // The policy engine's matcher: compiled once, and fast on the per-request dotted-quad path.
  return compileIpMatcher(trustedProxies, 'trustedProxies', problems);
}

export function createForwardedStage(trustedProxies: readonly string[]): ForwardedStage {
  const problems: string[] = [];
  const isTrustedProxy = compileTrustedProxies(trustedProxies, problems);
  if (problems.length > 0) throw new Error(problems.join('; '));
  const trusted = (ip: string): boolean => {
    const addr = parseIp(ip);
    return addr !== undefined && isTrustedProxy(addr);
  };
  const clientAddress = (sourceIp: string, xff: string): string => {
    const hops = xff.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!.trim();
      if (parseIp(hop) === undefined) return sourceIp; // a malformed chain is not believed at all
      if (!trusted(hop)) return hop;
    }
    return hops[0]!.trim();
  };
  return {
    resolve(sourceIp, header) {
      const xff = Array.isArray(header) ? header.join(',') : header;
      if (!xff || trustedProxies.length === 0 || !trusted(sourceIp)) return { remoteIp: sourceIp, chain: sourceIp };
      return { remoteIp: clientAddress(sourceIp, xff), chain: `${xff}, ${sourceIp}` };
    },
    apply(out, forwarded, host, port) {
      out['x-forwarded-for'] = forwarded.chain;
      out['x-forwarded-proto'] = 'https';
      out['x-forwarded-host'] = host;
      out['x-forwarded-port'] = String(port);
    },
  };
}
