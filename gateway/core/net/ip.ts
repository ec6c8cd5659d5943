// IP addresses and CIDR blocks as config names them, with ONE acceptance rule everywhere (policies, trustedProxies,
// egress cidrs, sourceIdentities, the address guard's exceptions and static hosts): IPv4 is a strict four-part
// decimal dotted quad, IPv6 what ipaddr.js accepts. `010.0.0.1` (octal to some parsers, 10.0.0.1 to others),
// `127.1` and `0x7f.1` are refused: a trust list is the wrong place for a notation tools disagree on.
// Recognising every notation a *client* may use for a destination is another job: `canonicalIp` in host.ts.
// Pure; matching runs per request, so IPv4 is a number and dotted quads are parsed by hand.
import ipaddr from 'ipaddr.js';

/** IPv4 as an unsigned 32-bit number, IPv6 as parsed by ipaddr.js. */
export type IpAddress = number | ipaddr.IPv6;

/** An address and a prefix length (IPv4-mapped IPv6 ranges are stored as IPv4). */
export type IpRange = readonly [IpAddress, number];

export type IpMatcher = (ip: IpAddress) => boolean;

const MAPPED_PREFIX = '::ffff:';

/**
 * Parses an address, unwrapping IPv4-mapped IPv6 (`::ffff:10.0.0.1`, how a dual-stack socket reports IPv4
 * peers); `undefined` when it is not one. Dotted quads are parsed by hand because this runs per request
 * and ipaddr.js (like net.BlockList) costs microseconds per call; everything else goes to ipaddr.js.
 */
export function parseIp(value: string): IpAddress | undefined {
  const quad = parseDottedQuad(value, 0);
  if (quad !== undefined) return quad;
  if (value.length > MAPPED_PREFIX.length && value.slice(0, MAPPED_PREFIX.length).toLowerCase() === MAPPED_PREFIX) {
    const mapped = parseDottedQuad(value, MAPPED_PREFIX.length);
    if (mapped !== undefined) return mapped;
  }
  if (!ipaddr.IPv6.isValid(value)) return undefined;
  const v6 = ipaddr.IPv6.parse(value);
  if (!v6.isIPv4MappedAddress()) return v6;
  const [a, b, c, d] = v6.toIPv4Address().octets as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/**
 * Who a connection's source counts as, for per-source limits: an IPv4 address (mapped ones unwrapped), or an IPv6
 * address's /64, since one host usually holds a whole /64 and could otherwise take a fresh address per connection.
 */
export function sourceKey(address: string): string {
  const ip = parseIp(address);
  if (ip === undefined) return address;
  if (typeof ip === 'number') return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
  return `${ip.parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
}

/** Strict `a.b.c.d` from `start` to the end: decimal 0–255, no leading zeros (no octal readings). */
function parseDottedQuad(value: string, start: number): number | undefined {
  let result = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i <= value.length; i++) {
    const c = i === value.length ? 0x2e : value.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || parts === 4) return undefined;
      result = result * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return undefined;
      part = part * 10 + (c - 0x30);
      if (part > 255) return undefined;
      digits++;
    } else return undefined;
  }
  return parts === 4 ? result : undefined;
}

/** `a.b.c.d/n`, `v6/n`, or a bare address (a /32 or /128); no zone id. */
export function parseCidr(value: string): IpRange | undefined {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  const addr = parseIp(address);
  if (addr === undefined || (typeof addr !== 'number' && addr.zoneId !== undefined)) return undefined;
  const max = typeof addr === 'number' ? 32 : 128;
  if (slash === -1) return [addr, max];
  const suffix = value.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(suffix)) return undefined;
  // A mapped range counts its prefix over 128 bits; 96 of them are the `::ffff:` part.
  const bits = typeof addr === 'number' && address.includes(':') ? Number(suffix) - 96 : Number(suffix);
  return bits >= 0 && bits <= max ? [addr, bits] : undefined;
}

/** A matcher for any of `ranges`, compiled once. */
export function ipMatcher(ranges: readonly IpRange[]): IpMatcher {
  const v4: { network: number; mask: number }[] = [];
  const v6: [ipaddr.IPv6, number][] = [];
  for (const [addr, bits] of ranges) {
    if (typeof addr === 'number') {
      const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
      v4.push({ network: (addr & mask) >>> 0, mask });
    } else v6.push([addr, bits]);
  }
  return (addr) => {
    if (typeof addr === 'number') {
      for (const r of v4) if ((addr & r.mask) >>> 0 === r.network) return true;
    } else {
      for (const r of v6) if (addr.match(r)) return true;
    }
    return false;
  };
}

/** Why a config value is refused, the same words wherever it appears. */
export const notAnIpOrCidr = (value: string): string => `${JSON.stringify(value)} is not an IP address or CIDR block (IPv4 as four decimal parts)`;

/** CIDRs or single addresses from config: each bad one adds `at[i]: reason` to `problems`. */
export function compileIpMatcher(values: readonly string[], at: string, problems: string[]): IpMatcher {
  const ranges: IpRange[] = [];
  values.forEach((value, i) => {
    const range = parseCidr(value);
    if (range === undefined) problems.push(`${at}[${i}]: ${notAnIpOrCidr(value)}`);
    else ranges.push(range);
  });
  return ipMatcher(ranges);
}
