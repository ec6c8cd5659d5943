// Authorization: asks the compiled policy set (pure) for a decision and turns a denial into a 403 whose
// reason names the deciding policy and rule, so "RBAC: access denied" never leaves an operator guessing
// (istio#39802). Dry-run and audit results are logged here and never change the outcome.
import type { CompiledPolicySet } from '../../../policies/compile.js';
import { evaluate, evaluateConnection } from '../../../policies/evaluate.js';
import type { AuthzDecision, RequestAttributes } from '../../../policies/types.js';
import { createDryRunReporter } from '../../core/dry-run.js';
import { GatewayError } from '../../core/errors.js';
import { LOG_EVENTS, type Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { Exchange } from '../exchange.js';

export interface AuthzStage {
  /** Records the decision on the exchange, a denial included (the access line and the span name its policy), and throws on a denial. */
  authorize(route: string, attributes: RequestAttributes, ex: Pick<Exchange, 'id' | 'decision'>): AuthzDecision;
  /**
   * The check of a passthrough host's connections, reported like a request's; undefined when no policy names the
   * host (its connections are open, and its backend authenticates its clients).
   */
  connectionCheck(host: string): ConnectionCheck | undefined;
}

/** Judges one passthrough connection (`id` names it in the logs) before anything is spliced. */
export type ConnectionCheck = (connection: RequestAttributes, id: string) => AuthzDecision;

export function createAuthzStage(policies: CompiledPolicySet, deps: { logger: Logger; metrics?: Metrics }): AuthzStage {
  const wouldDeny = createDryRunReporter(deps);
  /** Logs dry-run and audit results and counts the decision; `requestId` is a passthrough connection's id for one. */
  const report = (decision: AuthzDecision, route: string, requestId: string): void => {
    // Logged whenever dry-run policies matched or would change the outcome: a dry-run ALLOW that
    // matches nothing is exactly the request a rollout would lock out.
    if (decision.dryRun.length > 0 || decision.shadowAllowed !== decision.allowed) {
      deps.logger.info({
        event: LOG_EVENTS.AUTHZ_DRY_RUN,
        requestId,
        route,
        allowed: decision.allowed,
        wouldAllow: decision.shadowAllowed,
        wouldReason: decision.shadowReason,
        wouldPolicy: decision.shadowPolicy,
        wouldRule: decision.shadowRule,
        dryRun: decision.dryRun,
      });
    }
    if (decision.audit.length > 0) {
      deps.logger.info({ event: LOG_EVENTS.AUTHZ_AUDIT, requestId, route, audit: decision.audit });
    }
    deps.metrics?.authz(decision.policy ?? '', decision.allowed ? 'allow' : 'deny', decision.reason);
    if (decision.shadowAllowed !== decision.allowed) {
      deps.metrics?.authz(decision.shadowPolicy ?? '', decision.shadowAllowed ? 'would_allow' : 'would_deny', decision.shadowReason);
      // Only a dry-run DENY can refuse what the enforced policies allow; it is the shadow decision's policy.
      if (decision.allowed) wouldDeny({ kind: 'authz', policy: decision.shadowPolicy ?? '', reason: decision.shadowReason, requestId, route });
    }
  };
  return {
    authorize(route, attributes, ex) {
      const decision = evaluate(policies, route, attributes);
      ex.decision = decision;
      report(decision, route, ex.id);
      if (!decision.allowed) throw new GatewayError('GW_AUTHZ_DENIED', describe(decision));
      return decision;
    },
    connectionCheck(host) {
      if (!policies.byPassthroughHost.has(host)) return undefined;
      return (connection, id) => {
        const decision = evaluateConnection(policies, host, connection)!;
        report(decision, host, id);
        return decision;
      };
    },
  };
}

/** `denied_by_policy: admin-deny/rules[0]` — the reason the client and the log both get. */
export function describe(decision: AuthzDecision): string {
  return decision.policy ? `${decision.reason}: ${decision.policy}/${decision.rule ?? ''}` : decision.reason;
}
