// Request time: Istio's order, DENY then ALLOW, with least privilege where Istio allows: a route no
// enforced ALLOW policy applies to is denied (`no_policy_applies`). AUDIT and dry-run policies are
// evaluated for the record and never change `allowed`. Pure: the same set, route and request give the
// same decision.
import type { AuthzDecision, DryRunMatch, PolicyMatch, RequestAttributes } from './types.js';
import { UNDECIDED, type CompiledPolicy, type CompiledPolicySet, type DryRunResult, type RoutePolicies } from './compile.js';
import { RequestView } from './request-view.js';

const EMPTY: readonly never[] = Object.freeze([]);

export function evaluate(set: CompiledPolicySet, route: string, req: RequestAttributes): AuthzDecision {
  return decide(set.byRoute.get(route) ?? set.otherRoutes, req);
}

/**
 * A passthrough connection, before its bytes are spliced: undefined when no policy names its host (it is open, as
 * the docs say); otherwise the same order as for requests, with the policies naming the host only.
 */
export function evaluateConnection(set: CompiledPolicySet, host: string, connection: RequestAttributes): AuthzDecision | undefined {
  const policies = set.byPassthroughHost.get(host);
  return policies && decide(policies, connection);
}

function decide(policies: RoutePolicies, req: RequestAttributes): AuthzDecision {
  const view = new RequestView(req);
  const denied = firstMatch(policies.deny, view);
  const enforced =
    denied ??
    (policies.allow.length === 0
      ? UNDECIDED.no_policy_applies
      : (firstMatch(policies.allow, view) ?? UNDECIDED.no_allow_policy_matched));
  // The common case returns the decision built at compile time: nothing allocated but the view.
  if (policies.audit.length === 0 && policies.dryRun.length === 0) return enforced;

  const audit = eachMatch(policies.audit, view);
  const dryRunResults = eachMatch(policies.dryRun, view);
  const shadow = shadowDecision(denied, enforced, dryRunResults, policies.shadowHasAllow);
  return {
    ...enforced,
    audit,
    dryRun: dryRunResults.length === 0 ? EMPTY : dryRunResults.map((r): DryRunMatch => r.entry),
    shadowAllowed: shadow.allowed,
    shadowReason: shadow.reason,
    shadowPolicy: shadow.policy,
    shadowRule: shadow.rule,
  };
}

/** The same order again with dry-run policies enforced alongside: a DENY of either kind first, then ALLOW. */
function shadowDecision(
  denied: AuthzDecision | undefined,
  enforced: AuthzDecision,
  dryRun: readonly DryRunResult[],
  hasAllow: boolean,
): AuthzDecision {
  if (denied !== undefined) return denied;
  const dryRunDeny = dryRun.find((r) => !r.entry.wouldAllow);
  if (dryRunDeny !== undefined) return dryRunDeny.decision;
  if (enforced.allowed) return enforced;
  const dryRunAllow = dryRun.find((r) => r.entry.wouldAllow);
  if (dryRunAllow !== undefined) return dryRunAllow.decision;
  return hasAllow ? UNDECIDED.no_allow_policy_matched : UNDECIDED.no_policy_applies;
}

function firstRule<R>(policy: CompiledPolicy<R>, view: RequestView): R | undefined {
  for (const rule of policy.rules) if (rule.matches(view)) return rule.result;
  return undefined;
}

function firstMatch<R>(policies: readonly CompiledPolicy<R>[], view: RequestView): R | undefined {
  for (const policy of policies) {
    const result = firstRule(policy, view);
    if (result !== undefined) return result;
  }
  return undefined;
}

/** For the record: the first matching rule of every policy that matched. */
function eachMatch<R extends PolicyMatch | DryRunResult>(policies: readonly CompiledPolicy<R>[], view: RequestView): readonly R[] {
  let out: R[] | undefined;
  for (const policy of policies) {
    const result = firstRule(policy, view);
    if (result !== undefined) (out ??= []).push(result);
  }
  return out ?? EMPTY;
}
