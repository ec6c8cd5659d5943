// Config time: checks what the schema cannot (CIDRs, templates, condition keys, names), collects every
// problem with its path, and turns policies into frozen predicates indexed by route, with the decisions
// they produce built in advance so that evaluation mostly returns a shared object.
import type { Condition, Operation, Policy, Rule, Source } from './schema.js';
import type { AuthzDecision, DecisionReason, DryRunMatch, PolicyAction, PolicyMatch } from './types.js';
import {
  compileHostMatcher,
  compileMethodMatcher,
  compilePathMatcher,
  compilePortMatcher,
  compilePrincipalMatcher,
  compileStringMatcher,
  type Matcher,
  type Problems,
} from './match.js';
import type { RequestView } from './request-view.js';
import { compileIpMatcher } from '../gateway/core/net/ip.js';

/**
 * A compiled test of the request. `shape` tells `policies/trace.ts` how it was built (which fields, ANDed or
 * ORed) so that explaining a decision calls these same functions, never a second copy of the matching logic;
 * the request path only calls the function.
 */
export type Predicate = ((view: RequestView) => boolean) & { readonly shape?: PredicateShape };

export type PredicateShape =
  | { readonly kind: 'all' | 'any'; readonly parts: readonly Predicate[] }
  | {
      readonly kind: 'field';
      /** Where the field is in the config: `policies[0].rules[1].from[0].source.principals`. */
      readonly at: string;
      readonly negated: boolean;
      readonly values: readonly (string | number)[];
      /** The `when` condition's key, for a condition. */
      readonly key?: string;
      /** The request's value of the attribute, for display. */
      read(view: RequestView): unknown;
    };

export interface CompiledRule<R> {
  readonly name: string;
  readonly matches: Predicate;
  /** What a match of this rule contributes to the decision. */
  readonly result: R;
}

export interface CompiledPolicy<R> {
  readonly name: string;
  readonly action: PolicyAction;
  readonly rules: readonly CompiledRule<R>[];
}

export interface DryRunResult {
  readonly entry: DryRunMatch;
  /** The decision this rule would make if enforced, for the shadow decision. */
  readonly decision: AuthzDecision;
}

/** The policies that apply to one route, by role, each list in config order. */
export interface RoutePolicies {
  readonly deny: readonly CompiledPolicy<AuthzDecision>[];
  readonly allow: readonly CompiledPolicy<AuthzDecision>[];
  readonly audit: readonly CompiledPolicy<PolicyMatch>[];
  readonly dryRun: readonly CompiledPolicy<DryRunResult>[];
  /** Whether an ALLOW policy applies once dry-run ones are enforced (no_allow_policy_matched vs no_policy_applies). */
  readonly shadowHasAllow: boolean;
}

export interface CompiledPolicySet {
  readonly byRoute: ReadonlyMap<string, RoutePolicies>;
  /** Routes no policy names: only the policies without `routes`. */
  readonly otherRoutes: RoutePolicies;
  /** Passthrough hosts some policy names, with the policies naming them (never those without `routes`). */
  readonly byPassthroughHost: ReadonlyMap<string, RoutePolicies>;
}

export interface CompileOptions {
  /** Route names from the config: a policy naming any other route is an error (a typo would drop a DENY). */
  routes?: readonly string[];
  /** Names of the passthrough hosts (`listeners[].hosts[]` in `tls.mode: passthrough`), which `routes` may name too. */
  passthroughHosts?: readonly string[];
}

/** Thrown by `compilePolicies`; `problems` lists every problem, each prefixed by its path. */
export class PolicyCompileError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`invalid policies:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'PolicyCompileError';
    this.problems = problems;
  }
}

const EMPTY: readonly never[] = Object.freeze([]);

/** The decision for a request no rule decided, built once per reason. */
export const UNDECIDED: Readonly<Record<'no_allow_policy_matched' | 'no_policy_applies', AuthzDecision>> = Object.freeze({
  no_allow_policy_matched: decision(false, 'no_allow_policy_matched'),
  no_policy_applies: decision(false, 'no_policy_applies'),
});

function decision(allowed: boolean, reason: DecisionReason, policy?: string, rule?: string): AuthzDecision {
  return Object.freeze({
    allowed,
    reason,
    ...(policy !== undefined ? { policy, rule } : {}),
    dryRun: EMPTY,
    audit: EMPTY,
    shadowAllowed: allowed,
    shadowReason: reason,
    ...(policy !== undefined ? { shadowPolicy: policy, shadowRule: rule } : {}),
  });
}

export function compilePolicies(policies: readonly Policy[], options: CompileOptions = {}): CompiledPolicySet {
  const problems: Problems = [];
  const knownRoutes = options.routes === undefined ? undefined : new Set(options.routes);
  const passthrough = new Set(options.passthroughHosts);
  const seen = new Set<string>();
  const compiled = policies.map((policy, i) => {
    const at = `policies[${i}]`;
    if (seen.has(policy.name)) problems.push(`${at}.name: duplicate policy name '${policy.name}'`);
    seen.add(policy.name);
    const dryRun = policy.mode === 'dry-run';
    if (dryRun && policy.action === 'AUDIT') {
      problems.push(`${at}.mode: dry-run applies to ALLOW and DENY; AUDIT never changes a decision`);
    }
    const onConnections = policy.routes?.some((name) => passthrough.has(name)) ?? false;
    if (policy.routes !== undefined) {
      if (policy.routes.length === 0) problems.push(`${at}.routes: empty list; omit 'routes' to apply to every route`);
      policy.routes.forEach((route, j) => {
        if (passthrough.has(route)) {
          if (knownRoutes?.has(route)) problems.push(`${at}.routes[${j}]: '${route}' names both a route and a passthrough host; rename one`);
        } else if (onConnections) problems.push(`${at}.routes[${j}]: '${route}' is no passthrough host; a policy names passthrough hosts or routes, not both`);
        else if (knownRoutes !== undefined && !knownRoutes.has(route)) problems.push(`${at}.routes[${j}]: no route named "${route}"`);
      });
    }
    const ruleNames = new Set<string>();
    const rules = (policy.rules ?? []).map((rule, j) => {
      const name = rule.name ?? `rules[${j}]`;
      if (ruleNames.has(name)) problems.push(`${at}.rules[${j}].name: duplicate rule name '${name}'`);
      ruleNames.add(name);
      if (onConnections) problems.push(...requestFieldsOf(rule, `${at}.rules[${j}]`));
      return { name, matches: compileRule(rule, `${at}.rules[${j}]`, problems, policy.action === 'DENY') };
    });
    return { policy, dryRun, rules };
  });
  if (problems.length > 0) throw new PolicyCompileError(problems);

  const bucket = (applies: (p: Policy) => boolean): RoutePolicies => {
    const deny: CompiledPolicy<AuthzDecision>[] = [];
    const allow: CompiledPolicy<AuthzDecision>[] = [];
    const audit: CompiledPolicy<PolicyMatch>[] = [];
    const dryRun: CompiledPolicy<DryRunResult>[] = [];
    let dryRunAllow = false;
    for (const c of compiled) {
      if (!applies(c.policy)) continue;
      const { name, action } = c.policy;
      dryRunAllow ||= c.dryRun && action === 'ALLOW';
      if (c.dryRun) dryRun.push(withResults(name, action, c.rules, (rule) => dryRunResult(name, action, rule)));
      else if (action === 'AUDIT') audit.push(withResults(name, action, c.rules, (rule) => match(name, action, rule)));
      else {
        const allowed = action === 'ALLOW';
        const reason = allowed ? 'allowed_by_policy' : 'denied_by_policy';
        (allowed ? allow : deny).push(withResults(name, action, c.rules, (rule) => decision(allowed, reason, name, rule)));
      }
    }
    return Object.freeze({
      deny: Object.freeze(deny),
      allow: Object.freeze(allow),
      audit: Object.freeze(audit),
      dryRun: Object.freeze(dryRun),
      shadowHasAllow: allow.length > 0 || dryRunAllow,
    });
  };

  const named = new Set(compiled.flatMap((c) => c.policy.routes ?? []));
  const byRoute = new Map<string, RoutePolicies>();
  const byPassthroughHost = new Map<string, RoutePolicies>();
  for (const name of named) {
    if (passthrough.has(name)) byPassthroughHost.set(name, bucket((p) => p.routes?.includes(name) ?? false));
    else byRoute.set(name, bucket((p) => p.routes === undefined || p.routes.includes(name)));
  }
  return Object.freeze({ byRoute, otherRoutes: bucket((p) => p.routes === undefined), byPassthroughHost });
}

/** What a passthrough connection shows before its bytes are spliced: its addresses, the listener port and the SNI. */
const CONNECTION_SOURCE_FIELDS = new Set(['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']);
const CONNECTION_OPERATION_FIELDS = new Set(['hosts', 'notHosts', 'ports', 'notPorts']);
const CONNECTION_KEYS = new Set(['source.ip', 'remote.ip', 'destination.port', 'connection.sni']);
const NOT_ON_CONNECTIONS = 'a passthrough connection carries no request and no identity the gateway verified: only addresses, ports and the SNI can be matched';

/** Fields a rule of a passthrough host's policy cannot have: it would never match, or always (a `not` field). */
function requestFieldsOf(rule: Rule, at: string): string[] {
  const problems: string[] = [];
  rule.from?.forEach((f, i) => {
    for (const key of Object.keys(f.source)) if (!CONNECTION_SOURCE_FIELDS.has(key)) problems.push(`${at}.from[${i}].source.${key}: ${NOT_ON_CONNECTIONS}`);
  });
  rule.to?.forEach((t, i) => {
    for (const key of Object.keys(t.operation)) if (!CONNECTION_OPERATION_FIELDS.has(key)) problems.push(`${at}.to[${i}].operation.${key}: ${NOT_ON_CONNECTIONS}`);
  });
  rule.when?.forEach((c, i) => {
    if (!CONNECTION_KEYS.has(c.key)) problems.push(`${at}.when[${i}].key: ${NOT_ON_CONNECTIONS}`);
  });
  return problems;
}

function withResults<R>(
  name: string,
  action: PolicyAction,
  rules: readonly { name: string; matches: Predicate }[],
  result: (rule: string) => R,
): CompiledPolicy<R> {
  return Object.freeze({
    name,
    action,
    rules: Object.freeze(rules.map((r) => Object.freeze({ name: r.name, matches: r.matches, result: result(r.name) }))),
  });
}

function match(policy: string, action: PolicyAction, rule: string): PolicyMatch {
  return Object.freeze({ policy, action, rule });
}

function dryRunResult(policy: string, action: PolicyAction, rule: string): DryRunResult {
  const wouldAllow = action === 'ALLOW';
  return Object.freeze({
    entry: Object.freeze({ policy, action, rule, wouldAllow }),
    decision: decision(wouldAllow, wouldAllow ? 'allowed_by_policy' : 'denied_by_policy', policy, rule),
  });
}

// --- rules -------------------------------------------------------------------------------------------

/**
 * Istio: `from` (any source) AND `to` (any operation) AND every `when`; an empty rule matches everything.
 * `denying`: the rule belongs to a DENY policy (it decides which way path case fails closed).
 */
function compileRule(rule: Rule, at: string, problems: Problems, denying: boolean): Predicate {
  const parts: Predicate[] = [];
  if (rule.from !== undefined) {
    if (rule.from.length === 0) problems.push(`${at}.from: empty list; omit 'from' to match any source`);
    else parts.push(any(rule.from.map((f, i) => compileFields(f.source, SOURCE_FIELDS, `${at}.from[${i}].source`, problems, denying))));
  }
  if (rule.to !== undefined) {
    if (rule.to.length === 0) problems.push(`${at}.to: empty list; omit 'to' to match any operation`);
    else parts.push(any(rule.to.map((t, i) => compileFields(t.operation, OPERATION_FIELDS, `${at}.to[${i}].operation`, problems, denying))));
  }
  if (rule.when !== undefined) {
    if (rule.when.length === 0) problems.push(`${at}.when: empty list; omit 'when' for no condition`);
    rule.when.forEach((c, i) => parts.push(...compileCondition(c, `${at}.when[${i}]`, problems)));
  }
  return all(parts);
}

function all(parts: readonly Predicate[]): Predicate {
  if (parts.length === 1) return parts[0]!;
  const test = parts.length === 0
    ? () => true
    : (view: RequestView) => {
        for (const p of parts) if (!p(view)) return false;
        return true;
      };
  return shaped(test, { kind: 'all', parts });
}

function any(parts: readonly Predicate[]): Predicate {
  if (parts.length === 1) return parts[0]!;
  return shaped(
    (view) => {
      for (const p of parts) if (p(view)) return true;
      return false;
    },
    { kind: 'any', parts },
  );
}

function shaped(test: (view: RequestView) => boolean, shape: PredicateShape): Predicate {
  return Object.assign(test, { shape: Object.freeze(shape) });
}

type Attribute<T> = (view: RequestView) => T | readonly T[] | undefined;

/**
 * A field matches when the attribute is present and one of its values matches; the `not` form matches when
 * none does. So an absent attribute fails `principals` and passes `notPrincipals` (Istio: a DENY with
 * `notPrincipals: ["*"]` rejects plaintext peers; an ALLOW on `principals` never admits them).
 */
function field<T>(
  get: Attribute<T>,
  matcher: Matcher<T>,
  negated: boolean,
  at: string,
  values: readonly (string | number)[],
  key?: string,
): Predicate {
  return shaped(
    (view) => {
      const value = get(view);
      const hit = value !== undefined && (isList(value) ? value.some(matcher) : matcher(value));
      return negated ? !hit : hit;
    },
    { kind: 'field', at, negated, values, read: get, ...(key !== undefined ? { key } : {}) },
  );
}

function isList<T>(value: T | readonly T[]): value is readonly T[] {
  return Array.isArray(value);
}

type FieldCompiler = (values: readonly (string | number)[], at: string, problems: Problems, negated: boolean, denying: boolean) => Predicate;
const asStrings = (values: readonly (string | number)[]) => values as readonly string[];

const SOURCE_FIELDS: Readonly<Record<string, FieldCompiler>> = {
  principals: (v, at, p, neg) => field((r) => r.peerPrincipal, compilePrincipalMatcher(asStrings(v), at, p), neg, at, v),
  requestPrincipals: (v, at, p, neg) => field((r) => r.req.auth?.principal, compileStringMatcher(asStrings(v), at, p), neg, at, v),
  trustDomains: (v, at, p, neg) =>
    field((r) => r.trustDomain, compileStringMatcher(asStrings(v), at, p, { caseInsensitive: true }), neg, at, v),
  ipBlocks: (v, at, p, neg) => field((r) => r.sourceAddr, compileIpMatcher(asStrings(v), at, p), neg, at, v),
  remoteIpBlocks: (v, at, p, neg) => field((r) => r.remoteAddr, compileIpMatcher(asStrings(v), at, p), neg, at, v),
};

const OPERATION_FIELDS: Readonly<Record<string, FieldCompiler>> = {
  hosts: (v, at, p, neg) => field((r) => r.req.host, compileHostMatcher(asStrings(v), at, p), neg, at, v),
  methods: (v, at, p, neg) => field((r) => r.req.method, compileMethodMatcher(asStrings(v), at, p), neg, at, v),
  paths: (v, at, p, neg, denying) => pathField(asStrings(v), at, p, neg, denying),
  ports: (v, at, p, neg) => field((r) => r.req.port, compilePortMatcher(v, at, p), neg, at, v),
};

/**
 * Paths compare case as the route says (`RequestAttributes.pathCase`). Unset, the rule fails closed under
 * both readings: a DENY's `paths` and an ALLOW's `notPaths` fold case (so `/ADMIN` is denied wherever a
 * backend may fold it onto `/admin`), a DENY's `notPaths` and an ALLOW's `paths` do not (so `/API` is never
 * allowed as `/api` on a backend that keeps them apart). An ALLOW then matches only what it matches in both
 * readings, and a DENY whatever it matches in either.
 */
function pathField(values: readonly string[], at: string, problems: Problems, negated: boolean, denying: boolean): Predicate {
  const asWritten = compilePathMatcher(values, at, problems);
  // The values were checked by the first compile; a second report would only repeat its problems.
  const folded = compilePathMatcher(values, at, [], { caseInsensitive: true });
  const foldByDefault = denying !== negated;
  return shaped(
    (view) => {
      const mode = view.req.pathCase;
      const fold = mode === undefined ? foldByDefault : mode === 'insensitive';
      const hit = fold ? folded(view.foldedPath) : asWritten(view.req.path);
      return negated ? !hit : hit;
    },
    { kind: 'field', at, negated, values, read: (view) => view.req.path },
  );
}

/** Fields of one source or operation, ANDed. Unknown fields fail the config (CVE-2022-21679). */
function compileFields(
  object: Source | Operation,
  fields: Readonly<Record<string, FieldCompiler>>,
  at: string,
  problems: Problems,
  denying: boolean,
): Predicate {
  const parts: Predicate[] = [];
  for (const [key, values] of Object.entries(object) as [string, readonly (string | number)[] | undefined][]) {
    if (values === undefined) continue;
    const negated = /^not[A-Z]/.test(key);
    const base = negated ? key[3]!.toLowerCase() + key.slice(4) : key;
    const compile = Object.hasOwn(fields, base) ? fields[base] : undefined;
    if (compile === undefined) problems.push(`${at}.${key}: unknown field`);
    else if (!Array.isArray(values) || values.length === 0) problems.push(`${at}.${key}: must be a non-empty list; omit it to match anything`);
    else parts.push(compile(values, `${at}.${key}`, problems, negated, denying));
  }
  return all(parts);
}

// --- when conditions ---------------------------------------------------------------------------------

type ConditionCompiler = (values: readonly string[], at: string, problems: Problems, negated: boolean, key: string) => Predicate;

const stringCondition = (get: Attribute<string>): ConditionCompiler => (v, at, p, neg, key) =>
  field(get, compileStringMatcher(v, at, p), neg, at, v, key);

const CONDITION_KEYS: Readonly<Record<string, ConditionCompiler>> = {
  'request.auth.principal': stringCondition((r) => r.req.auth?.principal),
  'request.auth.audiences': stringCondition((r) => r.req.auth?.audiences),
  'request.auth.presenter': stringCondition((r) => r.claim(['azp'])),
  'source.ip': (v, at, p, neg, key) => field((r) => r.sourceAddr, compileIpMatcher(v, at, p), neg, at, v, key),
  'remote.ip': (v, at, p, neg, key) => field((r) => r.remoteAddr, compileIpMatcher(v, at, p), neg, at, v, key),
  'source.principal': (v, at, p, neg, key) => field((r) => r.peerPrincipal, compilePrincipalMatcher(v, at, p), neg, at, v, key),
  'destination.port': (v, at, p, neg, key) => field((r) => r.req.port, compilePortMatcher(v, at, p), neg, at, v, key),
  // SNI is a host name: compared case-insensitively like hosts, so `ADMIN.example.com` is no way around a DENY.
  'connection.sni': (v, at, p, neg, key) =>
    field((r) => r.req.sni, compileStringMatcher(v, at, p, { caseInsensitive: true }), neg, at, v, key),
};

const HEADER_KEY = /^request\.headers\[([^[\]]+)\]$/;
const CLAIM_KEY = /^request\.auth\.claims((?:\[[^[\]]+\])+)$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

function conditionCompiler(key: string): ConditionCompiler | string {
  if (Object.hasOwn(CONDITION_KEYS, key)) return CONDITION_KEYS[key]!;
  const header = HEADER_KEY.exec(key);
  if (header) {
    const name = header[1]!.toLowerCase();
    if (!HEADER_NAME.test(name)) return `'${header[1]}' is not a valid header name`;
    // Each value of a repeated header is matched on its own, never a joined string (CVE-2026-26308).
    return stringCondition((r) => r.req.header(name));
  }
  const claim = CLAIM_KEY.exec(key);
  if (claim) {
    const path = Object.freeze(claim[1]!.slice(1, -1).split(']['));
    return stringCondition((r) => r.claim(path));
  }
  return `unknown key '${key}' (supported: ${[...Object.keys(CONDITION_KEYS), 'request.headers[<name>]', 'request.auth.claims[<name>]...'].join(', ')})`;
}

/** `values` and `notValues` are ANDed when both are given; at least one is required. */
function compileCondition(condition: Condition, at: string, problems: Problems): Predicate[] {
  const compile = conditionCompiler(condition.key);
  if (typeof compile === 'string') {
    problems.push(`${at}.key: ${compile}`);
    return [];
  }
  const parts: Predicate[] = [];
  for (const [list, negated] of [
    ['values', false],
    ['notValues', true],
  ] as const) {
    const values = condition[list];
    if (values === undefined) continue;
    if (values.length === 0) problems.push(`${at}.${list}: empty list; omit it instead`);
    else parts.push(compile(values, `${at}.${list}`, problems, negated, condition.key));
  }
  if (condition.values === undefined && condition.notValues === undefined) {
    problems.push(`${at}: a condition needs 'values' or 'notValues'`);
  }
  return parts;
}
