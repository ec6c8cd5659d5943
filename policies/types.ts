// What the policy engine reads (the request, already authenticated and normalized) and what it answers.
// Both are plain values: evaluation is a pure function of them.

/** The authenticated JWT identity of a request, when it carried a valid token. */
export interface RequestAuth {
  issuer: string;
  subject: string;
  /** `<iss>/<sub>`, Istio's request principal. */
  principal: string;
  audiences: readonly string[];
  claims: Readonly<Record<string, unknown>>;
}

export interface RequestAttributes {
  /** Lower case, port and trailing dot removed. */
  host: string;
  method: string;
  /** Normalized path without query or fragment: the same path that is forwarded. */
  path: string;
  /**
   * How `paths`/`notPaths` compare ASCII case for the request's route (`pathCase`). Unset: fail closed under
   * either reading: DENY `paths` and ALLOW `notPaths` fold case, DENY `notPaths` and ALLOW `paths` do not.
   */
  pathCase?: 'sensitive' | 'insensitive';
  /** The listener port the connection arrived on. */
  port: number;
  /** SNI the TLS connection was made for ('' when none). */
  sni: string;
  /** Address of the TCP peer. */
  sourceIp: string;
  /** Client address from X-Forwarded-For when the peer is a trusted proxy, else `sourceIp`. */
  remoteIp: string;
  /** Full SPIFFE ID (`spiffe://td/path`) of a verified mTLS client certificate. */
  peerSpiffeId?: string;
  auth?: RequestAuth;
  /** Header values by lower-case name; a repeated header yields each value separately (CVE-2026-26308). */
  header(name: string): readonly string[] | undefined;
}

export type PolicyAction = 'ALLOW' | 'DENY' | 'AUDIT';

/** Why a request was allowed or denied; stable strings used in logs, metrics and the response's reason. */
export type DecisionReason =
  | 'allowed_by_policy'
  | 'denied_by_policy'
  | 'no_allow_policy_matched'
  | 'no_policy_applies';

/** One policy's verdict, for the decision log and dry-run reporting. */
export interface PolicyMatch {
  policy: string;
  action: PolicyAction;
  /** Rule name, or `rules[i]` when the rule is unnamed. */
  rule: string;
}

/** A dry-run policy whose rule matched, and whether enforcing it would have allowed (ALLOW) or denied (DENY). */
export interface DryRunMatch extends PolicyMatch {
  wouldAllow: boolean;
}

export interface AuthzDecision {
  allowed: boolean;
  reason: DecisionReason;
  /** The enforced policy and rule that decided; absent when nothing matched. */
  policy?: string;
  rule?: string;
  /** What dry-run policies would have done (never affects `allowed`). */
  dryRun: readonly DryRunMatch[];
  /** AUDIT policies whose rules matched. */
  audit: readonly PolicyMatch[];
  /**
   * The decision had the dry-run policies been enforced too (Envoy's shadow engine result): what an
   * operator compares with `allowed` before switching a policy to `enforce`. Equal to the decision when no
   * dry-run policy applies to the route.
   */
  shadowAllowed: boolean;
  shadowReason: DecisionReason;
  shadowPolicy?: string;
  shadowRule?: string;
}
