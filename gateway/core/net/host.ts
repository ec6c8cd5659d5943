// The one canonical form of a host, used wherever a host is compared: SNI and Host routing, the config's host names
// and patterns, the egress destination, its allowlist, static hosts and origination. Pure.
import { domainToUnicode } from 'node:url';
import ipaddr from 'ipaddr.js';

export interface CanonicalHost {
  /** Lower-case punycode name without trailing dot, or the IP literal in canonical text form (IPv6 unbracketed). */
  host: string;
  /** True when the text named an address rather than a name. */
  isIp: boolean;
}

// Characters that never belong in a host: `%` would be percent-decoded by the URL parser (`127%2e0.0.1`), the rest
// would let the parser read a different authority than the one we log and match.
const FORBIDDEN_IN_NAME = /[\s%/\\?#@:[\]*\p{Cc}]/u;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/**
 * The URL parser serializes every IPv4 host it accepts as four decimal parts (and refuses a numeric last label
 * that is no valid address), so this shape is exactly "an IPv4 address" here. ipaddr.js's isValidFourPartDecimal
 * answered the same by throwing and catching an error for every host name: ~30 µs, 8 % of a new tunnel's CPU.
 */
const URL_IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
/** Dot-separated LDH labels of 1–63 characters, none starting or ending with `-` (RFC 1035 §2.3.1, RFC 1123 §2.1). */
const LDH_NAME = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/;
/** A last label the URL parser reads as a number, making the host an IPv4 candidate (URL Standard "ends in a number"). */
const NUMERIC_LAST_LABEL = /(?:^|\.)(?:\d+|0x[0-9a-f]*)$/i;

/**
 * The canonical name of an ASCII LDH name with no punycode label and a last label that cannot be read as a number,
 * or undefined for anything else. For these the URL parser would only lower-case the name, so the fast path does
 * that itself: a Host is checked per request, and the parser costs about a microsecond.
 */
function plainName(raw: string): string | undefined {
  const name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  if (name.length > 253 || !LDH_NAME.test(name) || NUMERIC_LAST_LABEL.test(name) || /xn--/i.test(name)) return undefined;
  return name.toLowerCase();
}

/**
 * Canonical text of an IP address in any notation the WHATWG URL host parser accepts (zone id dropped), or
 * undefined. For *destinations*: a client may write 127.0.0.1 as `2130706433`, `0x7f.1` or `0177.0.0.1`, and all of
 * them must be recognised as that address before any DNS. Config values use the stricter `parseIp` (ip.ts).
 * Serialized by the URL parser (RFC 5952 form) rather than by ipaddr.js, whose parser reads the deprecated
 * `::a.b.c.d` as the IPv4-mapped `::ffff:a.b.c.d`.
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

/**
 * Canonical form of a host as a client or a config wrote it. IPv4 in any notation `inet_aton` accepts (decimal
 * `2130706433`, hex `0x7f000001`, octal `0177.0.0.1`, short `127.1`, trailing dot) is recognized as an address,
 * before any DNS: the WHATWG URL host parser implements exactly that (URL Standard §3.5 "IPv4 parser"). IDN labels
 * become punycode (UTS #46). Returns undefined for anything that is neither a valid DNS name nor an IP literal.
 */
export function canonicalHost(raw: string): CanonicalHost | undefined {
  if (raw.startsWith('[')) {
    if (!raw.endsWith(']')) return undefined;
    // RFC 6874: a zone id is written `%25<zone>` inside the brackets; the zone never changes the classification.
    const inner = raw.slice(1, -1).replace(/%25.*$/su, '');
    const ip = canonicalIp(inner);
    return ip !== undefined && ip.includes(':') ? { host: ip, isIp: true } : undefined;
  }
  const plain = plainName(raw);
  if (plain !== undefined) return { host: plain, isIp: false };
  if (raw.length === 0 || raw.length > 254 || FORBIDDEN_IN_NAME.test(raw)) return undefined;
  const hostname = urlHostname(raw);
  if (hostname === undefined) return undefined;
  if (URL_IPV4.test(hostname)) return { host: hostname, isIp: true };
  const name = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  if (name.length === 0 || name.length > 253 || !name.split('.').every((l) => LABEL.test(l) && decodable(l))) return undefined;
  return { host: name, isIp: false };
}

/**
 * A punycode label must decode: Node 20's URL parser refuses `xn--a` and Node 24's passes it through unchanged, so
 * the check is made here, the same on both.
 */
function decodable(label: string): boolean {
  if (!label.startsWith('xn--')) return true;
  const decoded = domainToUnicode(label);
  return decoded !== '' && !decoded.startsWith('xn--');
}

function urlHostname(raw: string): string | undefined {
  try {
    // Also lower-cases and maps IDN labels to punycode (UTS #46), like `url.domainToASCII`.
    return new URL(`http://${raw}/`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * A host pattern of the config: a host, or `*.` and a name (every name below it, never the name itself). Its
 * canonical text (`*.example.com` stays a pattern), or undefined when it is neither.
 */
export function canonicalHostPattern(pattern: string): (CanonicalHost & { wildcard: boolean }) | undefined {
  const wildcard = pattern.startsWith('*.');
  const canonical = canonicalHost(wildcard ? pattern.slice(2) : pattern);
  if (canonical === undefined || (wildcard && canonical.isIp)) return undefined;
  return { ...canonical, host: wildcard ? `*.${canonical.host}` : canonical.host, wildcard };
}

/** Splits `host:port` / `[v6]:port`; the port is undefined when absent. */
export function splitAuthority(authority: string): { host: string; port: string | undefined } {
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) return { host: authority, port: undefined };
    const rest = authority.slice(close + 1);
    return { host: authority.slice(0, close + 1), port: rest.startsWith(':') ? rest.slice(1) : rest === '' ? undefined : rest };
  }
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? { host: authority, port: undefined } : { host: authority.slice(0, colon), port: authority.slice(colon + 1) };
}
