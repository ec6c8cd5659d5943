// Address guard: which IP addresses the egress gateway may connect to, and the one DNS resolution per attempt.
// Smokescreen's model (ANCHORS §1.3, STYLE lesson 9): resolve once, classify every address with a reason, hand the
// dial stage the address that was classified so a second lookup can never return something else (DNS rebinding).
import { promises as dns } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { DEFAULTS } from '../../config/defaults.js';
import { GatewayError } from '../../core/errors.js';
import type { Destination } from '../destination.js';
import { canonicalIp } from '../../core/net/host.js';
import { carriedIpv4, deniedWhereCarried, LOCAL_NAT64, type CarriedIpv4 } from '../../core/net/embedded-ipv4.js';
import { ipMatcher, parseCidr, parseIp, type IpMatcher } from '../../core/net/ip.js';

export type AddressReason =
  | 'public'
  | 'explicitly_allowed'
  | 'explicitly_denied'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'metadata'
  | 'cgnat'
  | 'unique_local'
  | 'ipv4_mapped'
  | 'ipv4_compatible'
  | 'ipv4_translated'
  | 'nat64'
  | '6to4'
  | 'teredo'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'benchmarking'
  | 'reserved';

export interface AddressClassification {
  allowed: boolean;
  reason: AddressReason;
  /** For IPv6 forms that carry an IPv4 address: that address and its own class (smokescreen 7ae7a27, 8e2eca6). */
  embedded?: { address: string; reason: AddressReason };
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];
const cidr = (text: string): Range => ipaddr.parseCIDR(text);

// Checked before ipaddr.js's own range names, which lump these into `reserved` / `linkLocal`.
const V4_SPECIFIC: Record<string, Range[]> = {
  // Cloud instance metadata (AWS, GCP, Azure, OpenStack): the classic SSRF target, named so alerts say so.
  metadata: [cidr('169.254.169.254/32')],
  documentation: [cidr('192.0.2.0/24'), cidr('198.51.100.0/24'), cidr('203.0.113.0/24')],
  benchmarking: [cidr('198.18.0.0/15')],
};
const V6_SPECIFIC: Record<string, Range[]> = {
  // AWS IMDS over IPv6.
  metadata: [cidr('fd00:ec2::254/128')],
  documentation: [cidr('2001:db8::/32'), cidr('3fff::/20')],
  // RFC 8215 local-use NAT64 prefix: translation inside a private network, never a public destination.
  nat64_local: [LOCAL_NAT64],
  global: [cidr('2000::/3')],
};

const V4_RANGE_REASON: Record<string, AddressReason> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link_local',
  loopback: 'loopback',
  carrierGradeNat: 'cgnat',
  private: 'private',
};

function classifyV4(ip: ipaddr.IPv4): AddressClassification {
  const specific = ipaddr.subnetMatch(ip, V4_SPECIFIC, 'none');
  if (specific !== 'none') return { allowed: false, reason: specific as AddressReason };
  const range = ip.range();
  if (range === 'unicast') return { allowed: true, reason: 'public' };
  // Everything else ipaddr.js names (reserved 240/4, 192.0.0/24, AS112, AMT, …) is not a destination for a workload.
  return { allowed: false, reason: V4_RANGE_REASON[range] ?? 'reserved' };
}

function embeddedOf({ form, v4, reaches }: CarriedIpv4): AddressClassification {
  const inner = classifyV4(v4);
  const embedded = { address: v4.toString(), reason: inner.reason };
  // A form that reaches the embedded host is exactly as allowed as it is (its class names the form when blocked).
  return { allowed: reaches && inner.allowed, reason: reaches && inner.allowed ? 'public' : form, embedded };
}

function classifyV6(ip: ipaddr.IPv6): AddressClassification {
  const specific = ipaddr.subnetMatch(ip, V6_SPECIFIC, 'none');
  if (specific === 'metadata' || specific === 'documentation') return { allowed: false, reason: specific };
  if (specific === 'nat64_local') return { allowed: false, reason: 'nat64' };
  const carried = carriedIpv4(ip);
  if (carried) return embeddedOf(carried);
  switch (ip.range()) {
    case 'unspecified':
      return { allowed: false, reason: 'unspecified' };
    case 'loopback':
      return { allowed: false, reason: 'loopback' };
    case 'linkLocal':
      return { allowed: false, reason: 'link_local' };
    case 'uniqueLocal':
      return { allowed: false, reason: 'unique_local' };
    case 'multicast':
      return { allowed: false, reason: 'multicast' };
    case 'benchmarking':
      return { allowed: false, reason: 'benchmarking' };
    case 'unicast':
      return specific === 'global' ? { allowed: true, reason: 'public' } : { allowed: false, reason: 'reserved' };
    default:
      return { allowed: false, reason: 'reserved' };
  }
}

export interface AddressGuardOptions {
  allowRanges?: readonly string[];
  allowAddresses?: readonly string[];
  denyRanges?: readonly string[];
  denyAddresses?: readonly string[];
}

/** Compiled exceptions: deny entries first, so an allow range never re-opens a denied address (unlike stripe/smokescreen#236). */
export interface AddressExceptions {
  deny: IpMatcher;
  allow: IpMatcher;
}

function toRange(text: string, single: boolean) {
  const range = single && text.includes('/') ? undefined : parseCidr(text);
  if (range === undefined) throw new Error(`addressGuard: invalid ${single ? 'address' : 'range'} ${JSON.stringify(text)} (IPv4 as four decimal parts)`);
  return range;
}

export function compileAddressExceptions(options: AddressGuardOptions = {}): AddressExceptions {
  return {
    deny: ipMatcher([
      ...(options.denyRanges ?? []).map((r) => toRange(r, false)),
      ...(options.denyAddresses ?? []).map((a) => toRange(a, true)),
    ]),
    allow: ipMatcher([
      ...(options.allowRanges ?? []).map((r) => toRange(r, false)),
      ...(options.allowAddresses ?? []).map((a) => toRange(a, true)),
    ]),
  };
}

const NO_EXCEPTIONS: AddressExceptions = { deny: () => false, allow: () => false };

/** Classifies one address. `ip` is canonical text (as from `canonicalHost` or a resolver); throws if it is not an IP. */
export function classifyAddress(ip: string, exceptions: AddressExceptions = NO_EXCEPTIONS): AddressClassification {
  const canonical = canonicalIp(ip);
  if (canonical === undefined) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
  // An IPv4-mapped address is its IPv4 host for the exception lists (parseIp unwraps it), so
  // `allowAddresses: [127.0.0.1]` covers both. Other forms carrying an IPv4 meet only its deny entries: an IPv4
  // allow entry opens the host, not a NAT64 translator's or a tunnel relay's way to it (list the IPv6 address for that).
  const host = parseIp(canonical)!;
  const parsed = ipaddr.parse(canonical);
  const v6 = parsed.kind() === 'ipv6' ? (parsed as ipaddr.IPv6) : undefined;
  if (exceptions.deny(host) || (v6 && deniedWhereCarried(v6, exceptions.deny))) {
    return { allowed: false, reason: 'explicitly_denied' };
  }
  if (exceptions.allow(host)) return { allowed: true, reason: 'explicitly_allowed' };
  return v6 ? classifyV6(v6) : classifyV4(parsed as ipaddr.IPv4);
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
  classification: AddressClassification;
}

/** The guard's verdict as a value: the address to dial, or the refusal with the address that caused it (for the audit). */
export type ResolveDecision =
  | {
      allowed: true;
      /** The address to dial: the first one the resolver returned, after every returned address passed the guard. */
      address: string;
      family: 4 | 6;
      /** Every address the resolver (or static map, or literal) produced, with its class. */
      all: ResolvedAddress[];
    }
  | { allowed: false; error: GatewayError; address?: string; all: ResolvedAddress[] };

export type LookupFn = (hostname: string) => Promise<readonly { address: string; family: number }[]>;

export interface AddressGuardDeps {
  /** Default: the configured `resolver`, else `dns.promises.lookup(host, { all: true, verbatim: true })`. */
  lookup?: LookupFn;
}

export interface AddressGuard {
  /** One address under this guard's exceptions (a reload re-checks open tunnels with it). */
  classify(ip: string): AddressClassification;
  /** Resolves once and checks every address; refuses when any address is blocked or none exists. Never throws. */
  resolve(dest: Destination): Promise<ResolveDecision>;
}

export interface ResolverOptions {
  /** `address` or `address:port` (`[v6]:port`), as `dns.Resolver.setServers` takes them. */
  servers: readonly string[];
  timeoutMs: number;
}

export interface CreateAddressGuardOptions extends AddressGuardOptions {
  /** Host → addresses used instead of DNS. Host names are canonical (see `canonicalHost`). */
  staticHosts?: ReadonlyMap<string, readonly string[]>;
  /** Default `DEFAULTS.egressLimits.dnsTimeoutMs`. */
  dnsTimeoutMs?: number;
  /** Ask these DNS servers instead of the system resolver. */
  resolver?: ResolverOptions;
}

const systemLookup: LookupFn = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

/**
 * A lookup against the configured servers: A and AAAA asked together, both answers used (IPv4 first). A name with
 * only one kind of record answers the other query with ENODATA, which is not a failure as long as one query answered.
 * `setServers` validates the list, so a bad server address fails when the runtime is built, not per request.
 */
export function serverLookup(options: ResolverOptions): LookupFn {
  const resolver = new dns.Resolver({ timeout: options.timeoutMs, tries: 1 });
  try {
    resolver.setServers([...options.servers]);
  } catch (err) {
    throw new Error(`egress.resolver.servers: ${err instanceof Error ? err.message : String(err)}`);
  }
  return async (hostname) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(hostname), resolver.resolve6(hostname)]);
    if (v4.status === 'rejected' && v6.status === 'rejected') throw v4.reason;
    return [
      ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
      ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
    ];
  };
}

const dnsTimeout = (): GatewayError => new GatewayError('GW_UPSTREAM_TIMEOUT', 'dns_timeout');

type LookupOutcome = { addresses: readonly string[] } | { error: GatewayError };

export function createAddressGuard(options: CreateAddressGuardOptions, deps: AddressGuardDeps = {}): AddressGuard {
  const exceptions = compileAddressExceptions(options);
  const staticHosts = new Map(options.staticHosts ?? []);
  for (const [host, addresses] of staticHosts) {
    for (const a of addresses) if (parseIp(a) === undefined) throw new Error(`staticHosts[${host}]: invalid address ${a} (IPv4 as four decimal parts)`);
  }
  const lookup = deps.lookup ?? (options.resolver ? serverLookup(options.resolver) : systemLookup);
  const dnsTimeoutMs = options.dnsTimeoutMs ?? DEFAULTS.egressLimits.dnsTimeoutMs;
  const classify = (ip: string): AddressClassification => classifyAddress(ip, exceptions);

  async function lookupWithTimeout(host: string): Promise<LookupOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<LookupOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ error: dnsTimeout() }), dnsTimeoutMs);
    });
    const answer = lookup(host).then(
      (found): LookupOutcome => ({ addresses: found.map((a) => a.address) }),
      // Fail closed: a name that does not resolve is not reachable (Smokescreen: DNS failure → deny). A configured
      // resolver's own per-query timeout is a timeout too.
      (err: NodeJS.ErrnoException): LookupOutcome =>
        err.code === dns.TIMEOUT ? { error: dnsTimeout() } : { error: new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'dns_failed') },
    );
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function addressesOf(dest: Destination): Promise<LookupOutcome> {
    if (dest.isIp) return { addresses: [dest.host] };
    const fixed = staticHosts.get(dest.host);
    return fixed !== undefined ? { addresses: fixed } : lookupWithTimeout(dest.host);
  }

  return {
    classify,
    async resolve(dest) {
      const found = await addressesOf(dest);
      if ('error' in found) return { allowed: false, error: found.error, all: [] };
      const all: ResolvedAddress[] = [];
      for (const address of found.addresses) {
        const canonical = canonicalIp(address);
        if (canonical === undefined) {
          return { allowed: false, error: new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'dns_invalid_address'), all };
        }
        all.push({ address: canonical, family: canonical.includes(':') ? 6 : 4, classification: classify(canonical) });
      }
      const first = all[0];
      if (first === undefined) {
        return { allowed: false, error: new GatewayError('GW_UPSTREAM_UNAVAILABLE', 'dns_no_address'), all };
      }
      // Safe choice: one blocked answer refuses the whole name. A name that mixes public and internal answers is a
      // rebinding setup or a misconfiguration; picking the "good" one would let the attacker retry until it is not.
      const blocked = all.find((a) => !a.classification.allowed);
      if (blocked !== undefined) {
        const error = new GatewayError('GW_EGRESS_ADDRESS_BLOCKED', blocked.classification.reason);
        return { allowed: false, error, address: blocked.address, all };
      }
      return { allowed: true, address: first.address, family: first.family, all };
    },
  };
}
