// X-Forwarded-* and the client address. Incoming X-Forwarded-For is believed only when the TCP peer is
// a configured trusted proxy (oauth2-proxy GHSA-7x63-xv5r-3p2x, Envoy CVE-2024-45806); the client is
// then the right-most address that is not itself a trusted proxy. Otherwise the peer is the client.
import ipaddr from 'ipaddr.js';
import type { OutgoingHeaders } from './sanitize-headers.js';

export interface ForwardedStage {
  /** The client address policies see as `remote.ip`. */
  clientAddress(sourceIp: string, xff: string | undefined): string;
  /** Sets the forwarded headers on the outgoing request. */
  apply(out: OutgoingHeaders, info: { sourceIp: string; xff: string | undefined; host: string; port: number }): void;
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

export function parseAddress(ip: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (!ipaddr.isValid(ip)) return undefined;
  const parsed = ipaddr.parse(ip);
  return parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()
    ? (parsed as ipaddr.IPv6).toIPv4Address()
    : parsed;
}

export function parseCidr(cidr: string): Range {
  if (cidr.includes('/')) {
    const [addr, bits] = ipaddr.parseCIDR(cidr);
    return [addr, bits];
  }
  const addr = parseAddress(cidr);
  if (!addr) throw new Error(`not an IP address or CIDR: ${cidr}`);
  return [addr, addr.kind() === 'ipv4' ? 32 : 128];
}

export function createForwardedStage(trustedProxies: readonly string[]): ForwardedStage {
  const ranges = trustedProxies.map(parseCidr);
  const trusted = (ip: string): boolean => {
    if (ranges.length === 0) return false;
    const addr = parseAddress(ip);
    return !!addr && ranges.some(([net, bits]) => addr.kind() === net.kind() && addr.match(net, bits));
  };
  const clientAddress = (sourceIp: string, xff: string | undefined): string => {
    if (!xff || !trusted(sourceIp)) return sourceIp;
    const hops = xff.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!.trim();
      if (!parseAddress(hop)) return sourceIp; // a malformed chain is not believed at all
      if (!trusted(hop)) return hop;
    }
    return hops[0]!.trim();
  };
  return {
    clientAddress,
    apply(out, { sourceIp, xff, host, port }) {
      out['x-forwarded-for'] = xff && trusted(sourceIp) ? `${xff}, ${sourceIp}` : sourceIp;
      out['x-forwarded-proto'] = 'https';
      out['x-forwarded-host'] = host;
      out['x-forwarded-port'] = String(port);
    },
  };
}
