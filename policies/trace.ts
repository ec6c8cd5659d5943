// Explaining a decision (`portcullis explain`, `portcullis test`): the same compiled policies and the same
// `evaluate` as the request path, walked once more to say which field of which rule matched or failed. The
// trace only calls the compiled predicates (their `shape` says how they combine), so it cannot disagree
// with the gateway; the request path never pays for it.
import type { AuthzDecision, PolicyAction, RequestAttributes } from './types.js';
import type { CompiledPolicy, CompiledPolicySet, Predicate } from './compile.js';
import { evaluate } from './evaluate.js';
import { RequestView } from './request-view.js';

export interface FieldTrace {
  /** Within the rule: `from[0].source.principals`, `when[1].notValues`. */
  field: string;
  /** The condition key of a `when` entry. */
  key?: string;
  values: readonly (string | number)[];
  /** What the request has for it; undefined when it has none (no token, no client certificate). */
  actual: string | readonly string[] | undefined;
  matched: boolean;
}

export interface RuleTrace {
  rule: string;
  matched: boolean;
  fields: readonly FieldTrace[];
}

export interface PolicyTrace {
  policy: string;
  action: PolicyAction;
  mode: 'enforce' | 'dry-run';
  /** The first matching rule, as `evaluate` uses it. */
  matchedRule?: string;
  rules: readonly RuleTrace[];
}

export interface ExplainedDecision {
  decision: AuthzDecision;
  /** Every policy that applies to the route, in evaluation order: DENY, ALLOW, AUDIT, dry-run. */
  policies: readonly PolicyTrace[];
  /** For a denied request: the smallest change that would allow it, or why there is none. */
  hint?: string;
}

export function explainEvaluation(set: CompiledPolicySet, route: string, req: RequestAttributes): ExplainedDecision {
  const decision = evaluate(set, route, req);
  const routePolicies = set.byRoute.get(route) ?? set.otherRoutes;
  const view = new RequestView(req);
  const dryRunNames = new Set(routePolicies.dryRun.map((p) => p.name));
  const ordered: CompiledPolicy<unknown>[] = [...routePolicies.deny, ...routePolicies.allow, ...routePolicies.audit, ...routePolicies.dryRun];
  const policies = ordered.map((p) => tracePolicy(p, view, dryRunNames.has(p.name)));
  const hint = decision.allowed ? undefined : smallestChange(decision, route, routePolicies.allow, routePolicies.deny, view);
  return { decision, policies, ...(hint !== undefined ? { hint } : {}) };
}

function tracePolicy(policy: CompiledPolicy<unknown>, view: RequestView, dryRun: boolean): PolicyTrace {
  const rules = policy.rules.map((rule): RuleTrace => ({ rule: rule.name, matched: rule.matches(view), fields: leaves(rule.matches, view) }));
  const first = rules.find((r) => r.matched);
  return { policy: policy.name, action: policy.action, mode: dryRun ? 'dry-run' : 'enforce', ...(first ? { matchedRule: first.rule } : {}), rules };
}

function leaves(p: Predicate, view: RequestView): FieldTrace[] {
  const shape = p.shape;
  if (shape === undefined) return [];
  if (shape.kind !== 'field') return shape.parts.flatMap((part) => leaves(part, view));
  return [
    {
      field: shape.at.replace(/^policies\[\d+\]\.rules\[\d+\]\./, ''),
      ...(shape.key !== undefined ? { key: shape.key } : {}),
      values: shape.values,
      actual: display(shape.at, shape.key, shape.read(view), view),
      matched: p(view),
    },
  ];
}

/** Addresses are read parsed; show them as the request wrote them. */
function display(at: string, key: string | undefined, value: unknown, view: RequestView): string | readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (/\.remoteIpBlocks$|\.notRemoteIpBlocks$/.test(at) || key === 'remote.ip') return view.req.remoteIp;
  if (/\.(ipBlocks|notIpBlocks)$/.test(at) || key === 'source.ip') return view.req.sourceIp;
  if (Array.isArray(value)) return value.map(String);
  return String(value);
}

/**
 * The failing fields that must change for `p` to match, fewest first: every failing part of an AND, the
 * cheapest alternative of an OR.
 */
function neededChanges(p: Predicate, view: RequestView): FieldTrace[] {
  if (p(view)) return [];
  const shape = p.shape;
  if (shape === undefined) return [];
  if (shape.kind === 'field') return leaves(p, view);
  if (shape.kind === 'all') return shape.parts.flatMap((part) => neededChanges(part, view));
  return shape.parts.map((part) => neededChanges(part, view)).reduce((a, b) => (b.length < a.length ? b : a));
}

function smallestChange(
  decision: AuthzDecision,
  route: string,
  allow: readonly CompiledPolicy<unknown>[],
  deny: readonly CompiledPolicy<unknown>[],
  view: RequestView,
): string | undefined {
  const denyRules = deny.flatMap((p) => p.rules.map((r) => ({ policy: p.name, name: r.name, matches: r.matches })));
  if (decision.reason === 'denied_by_policy') {
    const rule = denyRules.find((r) => r.policy === decision.policy && r.name === decision.rule);
    const unmatch = rule ? unmatchChanges(rule.matches, view).map(describeUnmatch).join('; ') : '';
    return `DENY policy '${decision.policy}' rule '${decision.rule}' matches and no ALLOW overrides a DENY; it would not match with: ${unmatch || 'nothing (the rule matches every request)'}`;
  }
  if (decision.reason === 'no_policy_applies') {
    return `route '${route}' has no enforced ALLOW policy: add one with routes: [${route}] (or switch a dry-run one to enforce)`;
  }
  let best: { policy: string; rule: string; changes: FieldTrace[] } | undefined;
  for (const policy of allow) {
    for (const rule of policy.rules) {
      const changes = neededChanges(rule.matches, view);
      if (best === undefined || changes.length < best.changes.length) best = { policy: policy.name, rule: rule.name, changes };
    }
  }
  if (best === undefined) return undefined;
  return `policy '${best.policy}' rule '${best.rule}' would allow it with: ${best.changes.map(describeChange).join('; ')}`;
}

/** The matching fields of which one must stop matching for `p` to fail: the cheapest part of an AND, every part of an OR. */
function unmatchChanges(p: Predicate, view: RequestView): FieldTrace[] {
  if (!p(view)) return [];
  const shape = p.shape;
  if (shape === undefined) return [];
  if (shape.kind === 'field') return leaves(p, view);
  if (shape.kind === 'any') return shape.parts.flatMap((part) => unmatchChanges(part, view));
  const options = shape.parts.map((part) => unmatchChanges(part, view)).filter((c) => c.length > 0);
  // Fewest fields; on a tie, who is asking (identity, claims) before what is asked (method, path).
  const cost = (c: readonly FieldTrace[]) => c.length * 2 + (c.some((f) => f.field.startsWith('to[')) ? 1 : 0);
  return options.length === 0 ? [] : options.reduce((a, b) => (cost(b) < cost(a) ? b : a));
}

function describeUnmatch(f: FieldTrace): string {
  const name = f.key !== undefined ? `${f.field} (${f.key})` : f.field;
  return isNegated(f) ? `${name} given one of ${JSON.stringify(f.values)}` : `${name} not matching ${JSON.stringify(f.actual)}`;
}

function isNegated(f: FieldTrace): boolean {
  return f.field.endsWith('notValues') || /\.not[A-Z]/.test(f.field);
}

function describeChange(f: FieldTrace): string {
  const name = f.key !== undefined ? `${f.field} (${f.key})` : f.field;
  const actual = Array.isArray(f.actual) ? f.actual.join(', ') : f.actual;
  if (f.actual === undefined) return `the request has nothing for ${name}, which needs one of ${JSON.stringify(f.values)}`;
  return isNegated(f)
    ? `remove '${actual}' from ${name}`
    : `add '${actual}' to ${name}`;
}
