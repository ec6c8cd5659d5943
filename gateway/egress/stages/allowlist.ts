// Egress allowlist: which identity may reach which host and port. Pure: rules are compiled once into frozen
// lookups (STYLE lesson 3) and a decision is a value (lesson 6).
//
// Order: global deny → rules that list the destination → `dry-run` rules of the caller → default deny.
// Global deny wins over everything, including a rule that names the host: unlike Smokescreen, where a role's own
// `allowed_domains` beat `global_deny_list`, a deny here is a guarantee an allow elsewhere cannot undo.
import { DEFAULTS } from '../../config/defaults.js';
import type { EgressAllowRule, EgressDenyRule } from '../../config/egress-schema.js';
import { canonicalHostPattern } from '../../core/net/host.js';
import { deniedWhereCarried } from '../../core/net/embedded-ipv4.js';
import { ipMatcher, notAnIpOrCidr, parseCidr, parseIp, type IpMatcher, type IpRange } from '../../core/net/ip.js';
import type { Destination } from '../destination.js';
import type { Identity } from './identify.js';

export type AllowlistReason = 'allowed_by_rule' | 'dry_run_would_deny' | 'denied_by_rule' | 'no_rule_matched';

export interface AllowlistDecision {
  allowed: boolean;
  reason: AllowlistReason;
  /** Name of the deciding rule; absent for the default deny. */
  rule?: string;
  /** True when a `dry-run` rule let through a destination no rule lists (Smokescreen's `enforce_would_deny`). */
  wouldDeny: boolean;
  /** The deciding allow rule's `byteBudget`, for the tunnel it opens. */
  budget?: ByteBudget;
}

export interface ByteBudget {
  readonly maxBytes: number;
  readonly dryRun: boolean;
}

export interface AllowlistOptions {
  allow: readonly EgressAllowRule[];
  deny?: readonly EgressDenyRule[];
}

export type Allowlist = (identity: Identity, dest: Destination) => AllowlistDecision;

interface HostMatcher {
  exact: ReadonlySet<string>;
  /** `.example.com` for `*.example.com`: a strict suffix, so the apex never matches (Smokescreen glob semantics). */
  suffixes: readonly string[];
  cidrs: IpMatcher;
}

interface CompiledRule {
  name: string;
  matchesIdentity: (identity: Identity) => boolean;
  dest: HostMatcher;
  /** Undefined: every port (deny rules only). */
  ports: ReadonlySet<number> | undefined;
  /** `dry-run` (or its alias `report`): allows what no rule lists, flagged `wouldDeny`. */
  dryRun: boolean;
  budget: ByteBudget | undefined;
}

function compileHosts(where: string, hosts: readonly string[] = [], cidrs: readonly string[] = []): HostMatcher {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const pattern of hosts) {
    const canonical = canonicalHostPattern(pattern);
    if (canonical === undefined) throw new Error(`${where}: invalid host ${JSON.stringify(pattern)}`);
    // Host patterns match names; an IP literal here would silently never match an address spelled differently.
    if (canonical.isIp) throw new Error(`${where}: ${JSON.stringify(pattern)} is an address, list it under cidrs`);
    if (canonical.wildcard) suffixes.push(canonical.host.slice(1));
    else exact.add(canonical.host);
  }
  const ranges: IpRange[] = cidrs.map((c) => {
    const range = parseCidr(c);
    if (range === undefined) throw new Error(`${where}: ${notAnIpOrCidr(c)}`);
    return range;
  });
  return { exact, suffixes, cidrs: ipMatcher(ranges) };
}

/**
 * `denying`: a deny rule's IPv4 cidrs also catch the IPv6 forms that carry a listed address (`64:ff9b::808:808` for
 * 8.8.8.8), as the address guard's deny lists do; an allow rule's cidrs open only the addresses they name.
 */
function matchesDestination(m: HostMatcher, dest: Destination, denying: boolean): boolean {
  if (dest.isIp) {
    // `dest.host` is canonical text, which the strict parser always reads.
    const ip = parseIp(dest.host);
    if (ip === undefined) return false;
    return m.cidrs(ip) || (denying && typeof ip !== 'number' && deniedWhereCarried(ip, m.cidrs));
  }
  return m.exact.has(dest.host) || m.suffixes.some((s) => dest.host.endsWith(s));
}

/** Identity patterns are compared literally (CVE-2026-39350: IDs turned into unescaped regexes over-matched). */
function compileIdentities(where: string, patterns: readonly string[]): (identity: Identity) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (p.startsWith('spiffe://') && p.endsWith('/*')) prefixes.push(p.slice(0, -1));
    else if (p.includes('*')) throw new Error(`${where}: wildcard only as a final /* segment: ${JSON.stringify(p)}`);
    else exact.add(p);
  }
  return (identity) =>
    exact.has(identity.principal) || (identity.kind === 'spiffe' && prefixes.some((prefix) => identity.principal.startsWith(prefix)));
}

export function createAllowlist(options: AllowlistOptions): Allowlist {
  // Rule names are unique across allow and deny: the config loader checks that, with the place of both definitions.
  const compile = (kind: string, r: EgressAllowRule | EgressDenyRule, identities?: readonly string[]): CompiledRule => {
    const where = `egress.${kind}[${r.name}]`;
    if (!r.hosts?.length && !r.cidrs?.length) throw new Error(`${where}: needs hosts or cidrs`);
    return {
      name: r.name,
      matchesIdentity: identities ? compileIdentities(where, identities) : () => true,
      dest: compileHosts(where, r.hosts, r.cidrs),
      ports: r.ports ? new Set(r.ports) : identities ? new Set(DEFAULTS.egressPorts) : undefined,
      dryRun: 'mode' in r && (r.mode === 'dry-run' || r.mode === 'report'),
      budget: 'byteBudget' in r && r.byteBudget ? Object.freeze({ maxBytes: r.byteBudget.maxBytesPerTunnel, dryRun: r.byteBudget.mode === 'dry-run' }) : undefined,
    };
  };
  const deny = Object.freeze((options.deny ?? []).map((r) => compile('deny', r)));
  const allow = Object.freeze(options.allow.map((r) => compile('allow', r, r.identities)));

  const destinationMatches = (rule: CompiledRule, dest: Destination, denying = false): boolean =>
    (rule.ports === undefined || rule.ports.has(dest.port)) && matchesDestination(rule.dest, dest, denying);

  return (identity, dest) => {
    const denied = deny.find((rule) => destinationMatches(rule, dest, true));
    if (denied) return { allowed: false, reason: 'denied_by_rule', rule: denied.name, wouldDeny: false };
    const granted = allow.filter((rule) => rule.matchesIdentity(identity));
    const listed = granted.find((rule) => destinationMatches(rule, dest));
    if (listed) return withBudget({ allowed: true, reason: 'allowed_by_rule', rule: listed.name, wouldDeny: false }, listed);
    const dryRun = granted.find((rule) => rule.dryRun);
    if (dryRun) return withBudget({ allowed: true, reason: 'dry_run_would_deny', rule: dryRun.name, wouldDeny: true }, dryRun);
    return { allowed: false, reason: 'no_rule_matched', wouldDeny: false };
  };
}

function withBudget(decision: AllowlistDecision, rule: CompiledRule): AllowlistDecision {
  if (rule.budget) decision.budget = rule.budget;
  return decision;
}
