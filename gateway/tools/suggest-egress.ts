// `portcullis suggest` for egress: from the egress audit records (egress.audit.file, the audit trail's egress
// records, or the process log's EGRESS_DECISION lines) it proposes, per identity, the tightest allow rule: the hosts
// (or addresses) and ports actually reached, and a byte budget per tunnel from the observed p99 with a margin. Attempts
// a dry-run rule let through (`dry_run_would_deny`) are traffic like any other: a rule in dry-run is how an
// allowlist is learnt. Anonymous callers get no rule (the proxy cannot tell them apart; identify them first).
import { isIP } from 'node:net';
import type { EgressAllowRule, EgressConfig } from '../config/egress-schema.js';
import { LOG_EVENTS } from '../core/log.js';
import { createAllowlist } from '../egress/stages/allowlist.js';
import { distinct, groupBy } from './suggest-common.js';

/** The fields of an egress audit record (`event: EGRESS_DECISION`) the advisor reads. */
export interface ObservedAttempt {
  requestId: string;
  identity: string;
  host: string;
  port: number;
  proxyType: string;
  /** Both directions, for tunnels that ended (the budget applies to CONNECT tunnels). */
  bytes: number | undefined;
  /** The rule that allowed it, and whether that was a dry-run rule letting through what it does not list. */
  rule: string | undefined;
  wouldDeny: boolean;
  /** The record's `time` (ISO 8601), when it has one. */
  time: string | undefined;
}

/** The budget is the p99 of the tunnels seen, times this: room for growth without admitting an exfiltration's size. */
export const BYTE_BUDGET_MARGIN = 2;
/** Budgets are rounded up to whole KiB. */
const KIB = 1024;

/** An allowed egress attempt from one parsed line, else undefined (denials, other events). */
export function observedAttempt(entry: Record<string, unknown>): ObservedAttempt | undefined {
  if (entry.event !== LOG_EVENTS.EGRESS_DECISION || entry.allow !== true) return undefined;
  const { requestId, identity, host, port, proxyType } = entry;
  if (typeof requestId !== 'string' || typeof identity !== 'string' || typeof host !== 'string' || typeof port !== 'number' || typeof proxyType !== 'string') return undefined;
  const ended = typeof entry.bytesIn === 'number' && typeof entry.bytesOut === 'number';
  return {
    requestId,
    identity,
    host,
    port,
    proxyType,
    bytes: ended ? (entry.bytesIn as number) + (entry.bytesOut as number) : undefined,
    rule: typeof entry.rule === 'string' ? entry.rule : undefined,
    wouldDeny: entry.wouldDeny === true,
    time: typeof entry.time === 'string' ? entry.time : undefined,
  };
}

export interface EgressSuggestion {
  allow: EgressAllowRule[];
  report: string[];
  /** Allowed attempts read (each once, however many files named it). */
  observed: number;
}

export function suggestEgress(config: EgressConfig | undefined, attempts: readonly ObservedAttempt[]): EgressSuggestion {
  const unique = [...new Map(attempts.map((a) => [a.requestId, a])).values()];
  const named = unique.filter((a) => a.identity !== 'anonymous');
  const newest = unique.reduce<string | undefined>((t, a) => (a.time !== undefined && (t === undefined || a.time > t) ? a.time : t), undefined);
  const allow = [...groupBy(named, (a) => a.identity).entries()].map(([identity, seen], i) => suggestRule(identity, seen, i, newest));
  // What `validate` would say about the rules: a suggestion that does not compile is a bug here.
  createAllowlist({ allow });
  return { allow, report: reportEgress(config, unique), observed: unique.length };
}

function suggestRule(identity: string, seen: readonly ObservedAttempt[], index: number, newest: string | undefined): EgressAllowRule {
  const destinations = distinct(seen.map((a) => a.host));
  const hosts = destinations.filter((h) => isIP(h) === 0);
  const cidrs = destinations.filter((h) => isIP(h) !== 0);
  const ports = [...new Set(seen.map((a) => a.port))].sort((a, b) => a - b);
  const tunnels = seen.filter((a) => a.proxyType === 'connect' && a.bytes !== undefined).map((a) => a.bytes!);
  return {
    name: ruleName(identity, index),
    identities: [identity],
    ...(hosts.length > 0 ? { hosts } : {}),
    ...(cidrs.length > 0 ? { cidrs } : {}),
    ports,
    // In dry-run first: a budget from one window of traffic is a guess until its would-denies have been read.
    ...(tunnels.length > 0
      ? { byteBudget: { maxBytesPerTunnel: budget(tunnels), mode: 'dry-run' as const, ...(newest ? { dryRunSince: newest.slice(0, 10) } : {}) } }
      : {}),
  };
}

/** `p99 × margin`, rounded up to whole KiB; p99 by nearest rank. */
export function budget(totals: readonly number[]): number {
  const sorted = [...totals].sort((a, b) => a - b);
  const p99 = sorted[Math.max(0, Math.ceil(0.99 * sorted.length) - 1)]!;
  return Math.max(KIB, Math.ceil((p99 * BYTE_BUDGET_MARGIN) / KIB) * KIB);
}

/** A rule name from the identity (`spiffe://td/ns/x/sa/y` → `suggested-egress-y`), unique by its index. */
function ruleName(identity: string, index: number): string {
  const last = identity.replace(/\/+$/, '').split(/[/:]/).pop() ?? '';
  const slug = last.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-._]+|[-._]+$/g, '').slice(0, 40);
  return slug ? `egress-${slug}-${index}` : `egress-${index}`;
}

/** Current allow rules never used, dry-run rules and what they let through, and the anonymous attempts left out. */
function reportEgress(config: EgressConfig | undefined, attempts: readonly ObservedAttempt[]): string[] {
  const byRule = groupBy(attempts.filter((a) => a.rule !== undefined), (a) => a.rule!);
  const lines: string[] = [];
  for (const rule of config?.allow ?? []) {
    const used = byRule.get(rule.name);
    if (!used) lines.push(`egress rule '${rule.name}' allowed no attempt in the log`);
    const unlisted = used?.filter((a) => a.wouldDeny) ?? [];
    if (unlisted.length > 0) {
      const where = distinct(unlisted.map((a) => `${a.host}:${a.port}`));
      lines.push(`egress rule '${rule.name}' is in dry-run: ${countAttempts(unlisted.length)} to destinations it does not list (${where.join(', ')}); the suggestion lists them`);
    }
  }
  const anonymous = attempts.filter((a) => a.identity === 'anonymous').length;
  if (anonymous > 0) lines.push(`${countAttempts(anonymous)} by anonymous callers get no rule: identify them (SVID, proxy token, sourceIdentities)`);
  return lines;
}

const countAttempts = (n: number) => `${n} attempt${n === 1 ? '' : 's'}`;
