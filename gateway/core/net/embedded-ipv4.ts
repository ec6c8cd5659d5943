// IPv4 addresses carried inside IPv6 ones (mapped, NAT64, 6to4, Teredo, IPv4-compatible, SIIT): where each form
// puts its IPv4, for the egress address guard's classes and for every IPv4 deny list, so that a deny entry for an
// IPv4 host also closes the IPv6 spellings that reach or name it. Pure.
import ipaddr from 'ipaddr.js';
import type { IpMatcher } from './ip.js';

/** The IPv6 forms that carry an IPv4 address (each is also the address guard's reason when it refuses one). */
export type CarryingForm = 'ipv4_mapped' | 'ipv4_translated' | 'nat64' | '6to4' | 'teredo' | 'ipv4_compatible';

/** RFC 8215 local-use NAT64 prefix: translation inside a private network, never a public destination. */
export const LOCAL_NAT64: [ipaddr.IPv6, number] = ipaddr.IPv6.parseCIDR('64:ff9b:1::/48');

/** An IPv4 address carried inside an IPv6 one, and the form that carries it. */
export interface CarriedIpv4 {
  form: CarryingForm;
  v4: ipaddr.IPv4;
  /**
   * Dialling the IPv6 address reaches the IPv4 host: mapped (the gateway's own stack dials it) and NAT64
   * `64:ff9b::/96` (what DNS64 synthesizes for IPv4-only names in IPv6-only clusters), so these are exactly as
   * allowed as that host. The rest are refused whatever they carry: with 6to4 (deprecated, RFC 7526) and Teredo a
   * relay, not the gateway, picks the IPv4 host actually reached, and IPv4-compatible (deprecated, RFC 4291
   * §2.5.5.1) and SIIT `::ffff:0:0/96` addresses are no destination a workload has a reason to name.
   */
  reaches: boolean;
}

const v4At = (bytes: readonly number[], at: readonly number[]): ipaddr.IPv4 => new ipaddr.IPv4(at.map((i) => bytes[i]!));
const LOW_32 = [12, 13, 14, 15];

/** The IPv4 address an IPv6 form carries in a known place; undefined for any other IPv6 address. */
export function carriedIpv4(ip: ipaddr.IPv6): CarriedIpv4 | undefined {
  const bytes = ip.toByteArray();
  switch (ip.range()) {
    case 'ipv4Mapped':
      return { form: 'ipv4_mapped', v4: ip.toIPv4Address(), reaches: true };
    case 'rfc6145':
      return { form: 'ipv4_translated', v4: v4At(bytes, LOW_32), reaches: false };
    case 'rfc6052':
      // ipaddr.js also puts the local-use 64:ff9b:1::/48 here, whose IPv4 has no one place (LOCAL_NAT64_LAYOUTS).
      return ip.match(LOCAL_NAT64) ? undefined : { form: 'nat64', v4: v4At(bytes, LOW_32), reaches: true };
    case '6to4':
      // RFC 3056 §2: 2002:AABB:CCDD::/48, the IPv4 in bits 16–47.
      return { form: '6to4', v4: v4At(bytes, [2, 3, 4, 5]), reaches: false };
    case 'teredo':
      // RFC 4380 §4: the client's IPv4 address is stored with every bit inverted in the last 32 bits.
      return { form: 'teredo', v4: new ipaddr.IPv4(LOW_32.map((i) => ~bytes[i]! & 0xff)), reaches: false };
    case 'unicast':
      // ipaddr.js has no name for `::a.b.c.d` (deprecated IPv4-compatible); `::` and `::1` have their own ranges.
      return bytes.slice(0, 12).every((b) => b === 0) ? { form: 'ipv4_compatible', v4: v4At(bytes, LOW_32), reaches: false } : undefined;
    default:
      return undefined;
  }
}

/**
 * RFC 8215 leaves the length of a local-use NAT64 prefix to the operator, and RFC 6052 §2.2 places the IPv4 address
 * by that length (byte 8, the `u` octet, is skipped): for /48, /56, /64 and /96, the lengths that fit in 64:ff9b:1::/48.
 */
const LOCAL_NAT64_LAYOUTS = [[6, 7, 9, 10], [7, 9, 10, 11], [9, 10, 11, 12], LOW_32];

/**
 * The IPv4 addresses the deny lists must also see in an IPv6 address: a deny entry for 10.0.0.1 closes
 * `64:ff9b::a00:1` and every other form carrying it, as Smokescreen and Envoy users expect of an IPv4 deny list,
 * even where an allow entry or the built-in classes would pass the IPv6 address. Local-use NAT64 is checked in
 * every layout it may use, so an operator who opens that prefix still cannot reach a denied IPv4 through it.
 */
function ipv4sCarriedBy(ip: ipaddr.IPv6): ipaddr.IPv4[] {
  if (ip.match(LOCAL_NAT64)) {
    const bytes = ip.toByteArray();
    return LOCAL_NAT64_LAYOUTS.map((at) => v4At(bytes, at));
  }
  const carried = carriedIpv4(ip);
  return carried ? [carried.v4] : [];
}

const asNumber = (v4: ipaddr.IPv4): number => v4.octets.reduce((n, octet) => n * 256 + octet, 0);

/** Whether an IPv4 deny list names the IPv4 host that an IPv6 address carries (in any of its possible places). */
export function deniedWhereCarried(ip: ipaddr.IPv6, deny: IpMatcher): boolean {
  return ipv4sCarriedBy(ip).some((v4) => deny(asNumber(v4)));
}
