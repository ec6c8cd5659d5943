// One dry-run model for every enforcement point (JWT requirement, authorization policy, egress allow rule, rate
// limit, egress byte budget): each takes `mode: enforce | dry-run`, and a would-deny in dry-run is reported here,
// as one `DRY_RUN_WOULD_DENY` log line of one shape and one increment of
// `portcullis_dry_run_would_deny_total{kind,policy}`, so a rollout is watched the same way wherever it happens.
// Reporting never changes the outcome: the caller lets the request or attempt go on.
import { LOG_EVENTS, type Logger } from './log.js';
import type { Metrics } from './metrics.js';

export const DRY_RUN_KINDS = ['jwt', 'authz', 'egress', 'rate_limit', 'byte_budget'] as const;
export type DryRunKind = (typeof DRY_RUN_KINDS)[number];

/** The common record: what would have refused (`kind`, `policy`), why, and which request or attempt. */
export interface WouldDeny {
  kind: DryRunKind;
  /** The name of the policy, egress rule, rate limit, JWT provider or route whose enforcement would have refused. */
  policy: string;
  /** The reason the refusal would have carried (`denied_by_policy`, `token_expired`, `no_rule_matched`, …). */
  reason: string;
  /** The ingress request's `requestId` or the egress attempt's. */
  requestId: string;
  /** Ingress: the route. */
  route?: string;
  /** Egress: the caller's identity (principal). */
  identity?: string;
  /** Egress: the destination. */
  host?: string;
  port?: number;
}

export type DryRunReporter = (record: WouldDeny) => void;

export function createDryRunReporter(deps: { logger: Logger; metrics?: Pick<Metrics, 'dryRunWouldDeny'> | undefined }): DryRunReporter {
  return (record) => {
    deps.metrics?.dryRunWouldDeny(record.kind, record.policy);
    deps.logger.warn({ event: LOG_EVENTS.DRY_RUN_WOULD_DENY, ...record }, 'dry-run: would deny');
  };
}
