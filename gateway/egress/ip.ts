// IP address and CIDR parsing shared by the egress stages. Pure.
import ipaddr from 'ipaddr.js';

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;
export type IpRange = [IpAddress, number];

/**
 * Canonical text of an IP address (zone id dropped), or undefined. Serialized by the WHATWG URL parser (RFC 5952
 * form) rather than by ipaddr.js, whose parser reads the deprecated `::a.b.c.d` as the IPv4-mapped `::ffff:a.b.c.d`.
 */
export function canonicalIp(text: string): string | undefined {
  const bare = text.replace(/%.*$/su, '');
  if (!ipaddr.isValid(bare)) return undefined;
  try {
    const host = new URL(`http://${bare.includes(':') ? `[${bare}]` : bare}/`).hostname;
    return host.startsWith('[') ? host.slice(1, -1) : host;
  } catch {
    return undefined;
  }
}

export function parseIp(text: string): IpAddress | undefined {
  const canonical = canonicalIp(text);
  return canonical === undefined ? undefined : ipaddr.parse(canonical);
}

/** `a.b.c.d/n`, `v6/n`, or a bare address (a /32 or /128). */
export function parseCidr(text: string): IpRange | undefined {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === undefined) return undefined;
  const max = ip.kind() === 'ipv4' ? 32 : 128;
  if (slash < 0) return [ip, max];
  const bits = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > max) return undefined;
  return [ip, Number(bits)];
}

export function inRanges(ip: IpAddress, ranges: readonly IpRange[]): boolean {
  return ranges.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
}

/** An IPv4-mapped IPv6 address as its IPv4 host (how a dual-stack socket reports IPv4 peers); others unchanged. */
export function unmapped(ip: IpAddress): IpAddress {
  return ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address() : ip;
}
