// `portcullis suggest`: the least-privilege advisor. From the access log's recorded decisions it proposes, per
// route, the tightest ALLOW policy that still admits what was allowed: the callers seen (peer SPIFFE IDs or
// token principals), the methods used and the paths used (a segment that varies like an ID becomes `{*}`),
// and reports the current rules that were never used in the window. The access log carries no claims, so
// suggested rules never add `when` conditions.
import { compilePolicies } from '../../policies/compile.js';
import type { Policy, Rule } from '../../policies/schema.js';
import { policyTargets, type Config } from '../config/schema.js';
import { DRY_RUN_KINDS, type DryRunKind } from '../core/dry-run.js';
import { LOG_EVENTS } from '../core/log.js';
import { distinct, groupBy } from './suggest-common.js';
import { observedAttempt, type ObservedAttempt } from './suggest-egress.js';

/** The fields of an access-log line (`event: REQUEST`) the advisor reads. */
interface Observed {
  route: string;
  method: string;
  path: string;
  peer?: string;
  principal?: string;
  policy: string;
  rule: string;
}

export interface Suggestion {
  policies: Policy[];
  /** One line per current ALLOW rule never used in the log, or used but admitting any caller. */
  report: string[];
  /** Allowed requests read from the log. */
  observed: number;
}

const ALLOWED = /^allowed_by_policy: ([^/]+)\/(.+)$/;

/** A would-deny of an enforcement point in dry-run (`event: DRY_RUN_WOULD_DENY`). */
export interface ObservedWouldDeny {
  kind: DryRunKind;
  policy: string;
  requestId: string;
}

/** What the advisor reads from log files, each line by its event. */
export interface Recorded {
  requests: Observed[];
  egress: ObservedAttempt[];
  wouldDeny: ObservedWouldDeny[];
}

/**
 * Reads JSON lines: the access log (`REQUEST`), egress audit records (`EGRESS_DECISION`: egress.audit.file, or the
 * audit trail, whose records carry the same fields) and dry-run would-denies, from one file or several. Lines that
 * are none of these, or refusals, or not JSON, are skipped.
 */
export function readRecords(text: string): Recorded {
  const out: Recorded = { requests: [], egress: [], wouldDeny: [] };
  for (const line of text.split('\n')) {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof entry !== 'object' || entry === null) continue;
    const request = allowedRequest(entry);
    if (request) out.requests.push(request);
    const attempt = observedAttempt(entry);
    if (attempt) out.egress.push(attempt);
    const wouldDeny = observedWouldDeny(entry);
    if (wouldDeny) out.wouldDeny.push(wouldDeny);
  }
  return out;
}

function allowedRequest(entry: Record<string, unknown>): Observed | undefined {
  const decision = typeof entry.decision === 'string' ? ALLOWED.exec(entry.decision) : null;
  if (entry.event !== LOG_EVENTS.REQUEST || !decision || typeof entry.route !== 'string' || typeof entry.path !== 'string' || typeof entry.method !== 'string') return undefined;
  return {
    route: entry.route,
    method: entry.method,
    path: entry.path,
    ...(typeof entry.peer === 'string' ? { peer: entry.peer } : {}),
    ...(typeof entry.principal === 'string' ? { principal: entry.principal } : {}),
    policy: decision[1]!,
    rule: decision[2]!,
  };
}

function observedWouldDeny(entry: Record<string, unknown>): ObservedWouldDeny | undefined {
  const { kind, policy, requestId } = entry;
  if (entry.event !== LOG_EVENTS.DRY_RUN_WOULD_DENY || typeof policy !== 'string' || typeof requestId !== 'string') return undefined;
  if (!(DRY_RUN_KINDS as readonly unknown[]).includes(kind)) return undefined;
  return { kind: kind as DryRunKind, policy, requestId };
}

/**
 * One line per enforcement point in dry-run that would have refused something in the log: what switching it to
 * enforce would refuse. Each would-deny counted once (the same line may be read from several files).
 */
export function reportWouldDenies(records: readonly ObservedWouldDeny[]): string[] {
  const unique = new Map(records.map((r) => [`${r.kind} ${r.policy} ${r.requestId}`, r]));
  const byPoint = groupBy([...unique.values()], (r) => `${r.kind} '${r.policy}'`);
  return [...byPoint.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([point, seen]) => `dry-run ${point} would have denied ${seen.length} in the log: enforcing it refuses ${seen.length === 1 ? 'it' : 'them'}`);
}

export function suggest(config: Config, observed: readonly Observed[]): Suggestion {
  const byRoute = groupBy(observed, (o) => o.route);
  const policies: Policy[] = [];
  for (const route of config.routes) {
    const seen = byRoute.get(route.name);
    if (!seen) continue;
    const groups = groupBy(seen, callerKey);
    const rules: Rule[] = [...groups.entries()].map(([key, requests], i) => ({
      name: `observed-${i}`,
      ...callerSource(key),
      to: [{ operation: { methods: distinct(requests.map((r) => r.method)), paths: pathPatterns(requests.map((r) => r.path)) } }],
    }));
    policies.push({ name: `suggested-${route.name}`, action: 'ALLOW', routes: [route.name], rules });
  }
  // What `validate` would say: a suggestion that does not compile is a bug here, not the user's problem.
  compilePolicies(policies, policyTargets(config));
  return { policies, report: reportRules(config, observed), observed: observed.length };
}

/** The caller as policies name it: the peer certificate first (it is the stronger identity), else the token. */
function callerKey(o: Observed): string {
  if (o.peer) return `peer ${o.peer}`;
  if (o.principal) return `token ${o.principal}`;
  return 'anyone';
}

function callerSource(key: string): Pick<Rule, 'from'> {
  const [kind, id] = [key.slice(0, key.indexOf(' ')), key.slice(key.indexOf(' ') + 1)];
  if (kind === 'peer') return { from: [{ source: { principals: [id] } }] };
  if (kind === 'token') return { from: [{ source: { requestPrincipals: [id] } }] };
  return {};
}

/**
 * Exact paths, except that a position where sibling paths differ in a segment that looks like an ID (digits,
 * a UUID, long hex) becomes `{*}`: `/orders/41`, `/orders/42` → `/orders/{*}`.
 */
function pathPatterns(paths: readonly string[]): string[] {
  return distinct(paths.map((p) => p.split('/').map((s) => (ID_LIKE.test(s) ? '{*}' : s)).join('/')));
}

const ID_LIKE = /^(?:[0-9]+|[0-9a-f]{16,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/** Current ALLOW rules never used in the window, and used ones that admit any caller where few were seen. */
function reportRules(config: Config, observed: readonly Observed[]): string[] {
  const uses = groupBy(observed, (o) => `${o.policy}/${o.rule}`);
  return (config.policies ?? [])
    .filter((p) => p.action === 'ALLOW' && p.mode !== 'dry-run')
    .flatMap((p) => (p.rules ?? []).map((r, j) => ({ policy: p.name, rule: r.name ?? `rules[${j}]`, anyCaller: admitsAnyCaller(r) })))
    .flatMap(({ policy, rule, anyCaller }) => {
      const seen = uses.get(`${policy}/${rule}`);
      if (!seen) return [`policy '${policy}' rule '${rule}' allowed no request in the log`];
      const callers = distinct(seen.map(callerKey));
      return anyCaller && callers.some((c) => c !== 'anyone') ? [`policy '${policy}' rule '${rule}' admits any caller; the log shows ${callers.join(', ')}`] : [];
    });
}

function admitsAnyCaller(rule: Rule): boolean {
  if (rule.from === undefined) return true;
  return rule.from.some((f) => f.source.principals?.includes('*') || f.source.requestPrincipals?.includes('*'));
}
