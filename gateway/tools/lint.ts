// `portcullis lint`: least privilege, where `validate` is correctness. Each finding has a stable id (the
// docs/policies.md "Lint findings" section documents each), a severity and a fix. Pure over a loaded config.
import { isDeepStrictEqual } from 'node:util';
import { getDomain } from 'tldts';
import type { Operation, Policy, Rule } from '../../policies/schema.js';
import type { Config, RouteConfig } from '../config/schema.js';

export type Severity = 'info' | 'warning' | 'error';

export interface Finding {
  id: FindingId;
  severity: Severity;
  /** Where in the config: `policies[api].rules[0]`, `routes[admin]`, `egress.allow[web]`. */
  at: string;
  message: string;
  fix: string;
}

export const FINDINGS = {
  'allow-everyone-on-token-route': 'error',
  'wildcard-principal': 'warning',
  'allow-not-paths': 'warning',
  'deny-exact-path': 'warning',
  'deny-path-case-sensitive': 'warning',
  'shadowed-rule': 'warning',
  'unreachable-policy': 'warning',
  'unreachable-route': 'warning',
  'egress-wildcard-too-wide': 'error',
  'egress-anonymous': 'warning',
  'jwks-uri-cleartext': 'warning',
  'jwt-any-audience': 'warning',
  'route-without-policy': 'info',
  'passthrough-without-policy': 'info',
  'dry-run-too-long': 'warning',
  'dry-run-undated': 'info',
} as const satisfies Record<string, Severity>;

export type FindingId = keyof typeof FINDINGS;

const RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2 };

export function atLeast(severity: Severity, threshold: Severity): boolean {
  return RANK[severity] >= RANK[threshold];
}

export interface LintOptions {
  /** A dry-run older than this many days is reported (`dry-run-too-long`). Default `DEFAULT_MAX_DRY_RUN_DAYS`. */
  maxDryRunDays?: number;
  /** Milliseconds since the epoch; default now. */
  now?: number;
}

/** Two weeks: long enough to see a weekly traffic cycle twice, short enough that a rollout is not forgotten. */
export const DEFAULT_MAX_DRY_RUN_DAYS = 14;

export function lintConfig(config: Config, options: LintOptions = {}): Finding[] {
  const findings: Finding[] = [];
  const add = (id: FindingId, at: string, message: string, fix: string) => findings.push({ id, severity: FINDINGS[id], at, message, fix });
  const policies = config.policies ?? [];
  const unreachable = unreachableRoutes(config.routes);
  for (const [route, by] of unreachable) {
    add('unreachable-route', `routes[${route}]`, `route '${route}' is never selected: route '${by}' comes first and matches everything it does`, `move '${route}' above '${by}' or remove it`);
  }
  for (const route of config.routes) lintRoute(config, route, policies, add);
  lintPassthroughHosts(config, policies, add);
  policies.forEach((policy, i) => lintPolicy(config, policy, policies.slice(0, i), unreachable, add));
  lintEgress(config, add);
  lintJwtProviders(config, add);
  lintDryRuns(config, options, add);
  return findings;
}

type Add = (id: FindingId, at: string, message: string, fix: string) => void;

/** Passthrough hosts are open unless a policy names them: unlike a route, nothing there denies by default. */
function lintPassthroughHosts(config: Config, policies: readonly Policy[], add: Add): void {
  for (const listener of config.listeners) {
    for (const host of listener.hosts) {
      if (host.tls.mode !== 'passthrough' || policies.some((p) => p.routes?.includes(host.name))) continue;
      add(
        'passthrough-without-policy',
        `listeners[${listener.name}].hosts[${host.name}]`,
        `no policy names passthrough host '${host.name}': every client that reaches the listener with its SNI reaches its upstream`,
        `add an ALLOW policy with routes: [${host.name}] and the sources that may connect, or make sure the upstream authenticates its clients (mutual TLS)`,
      );
    }
  }
}

const appliesTo = (policy: Policy, route: string) => policy.routes === undefined || policy.routes.includes(route);
const enforcedAllow = (p: Policy) => p.action === 'ALLOW' && p.mode !== 'dry-run';
const ruleName = (rule: Rule, j: number) => rule.name ?? `rules[${j}]`;
const operations = (rule: Rule): Operation[] => (rule.to ?? []).map((t) => t.operation);

function lintRoute(config: Config, route: RouteConfig, policies: readonly Policy[], add: Add): void {
  const allows = policies.filter((p) => enforcedAllow(p) && appliesTo(p, route.name));
  if (allows.length === 0) {
    add('route-without-policy', `routes[${route.name}]`, `no enforced ALLOW policy applies to route '${route.name}': every request to it is denied (no_policy_applies)`, `add an ALLOW policy with routes: [${route.name}], or remove the route`);
    return;
  }
  const needsToken = route.jwtProviders !== undefined || allows.some((p) => (p.rules ?? []).some((r) => (r.from ?? []).some((f) => f.source.requestPrincipals !== undefined)));
  if (!needsToken) return;
  for (const p of allows) {
    (p.rules ?? []).forEach((rule, j) => {
      // A rule limited to some paths is a deliberate carve-out (health checks); one without is the whole route.
      if (rule.from === undefined && rule.when === undefined && !operations(rule).some((o) => o.paths !== undefined)) {
        add(
          'allow-everyone-on-token-route',
          `policies[${p.name}].rules[${rule.name ?? j}]`,
          `ALLOW rule matches every caller on route '${route.name}', where other rules ask for a token: the token requirement is void`,
          `add from: [{ source: { requestPrincipals: [...] } }] to the rule, or limit it with to.operation.paths`,
        );
      }
    });
  }
}

function lintPolicy(config: Config, policy: Policy, earlier: readonly Policy[], unreachable: ReadonlyMap<string, string>, add: Add): void {
  const at = `policies[${policy.name}]`;
  const rules = policy.rules ?? [];
  if (policy.action !== 'AUDIT' && rules.length === 0) {
    add('unreachable-policy', at, `policy '${policy.name}' has no rules and matches nothing`, 'add rules or remove the policy');
  }
  if (policy.routes !== undefined && policy.routes.every((r) => unreachable.has(r))) {
    add('unreachable-policy', at, `no request reaches policy '${policy.name}': its routes are never selected (${policy.routes.join(', ')})`, 'fix the route order or remove the policy');
  }
  rules.forEach((rule, j) => {
    const where = `${at}.rules[${rule.name ?? j}]`;
    if (policy.action === 'ALLOW') {
      for (const f of rule.from ?? []) {
        for (const key of ['principals', 'requestPrincipals'] as const) {
          if (f.source[key]?.includes('*')) {
            add('wildcard-principal', where, `${key}: ['*'] admits ${key === 'principals' ? 'every workload with a certificate from any trusted domain' : 'any valid token of any provider'}`, `name the ${key === 'principals' ? 'workloads (cluster.local/ns/x/sa/y) or a namespace prefix' : "issuer (https://issuer/*) or the subjects"}`);
          }
        }
      }
      if (operations(rule).some((o) => o.notPaths !== undefined)) {
        add('allow-not-paths', where, 'ALLOW with notPaths admits every path but the listed spellings, including ones a backend reads as a listed path', 'list the allowed paths with paths instead');
      }
    }
    if (policy.action === 'DENY') lintDenyPaths(config, policy, rule, where, add);
    const shadow = shadowingRule(policy, rule, j, earlier);
    if (shadow !== undefined) add('shadowed-rule', where, `never decides anything: ${shadow} comes first and matches every request this rule matches`, 'remove the rule, or narrow the earlier one');
  });
}

function lintDenyPaths(config: Config, policy: Policy, rule: Rule, where: string, add: Add): void {
  for (const op of operations(rule)) {
    for (const path of op.paths ?? []) {
      if (/[*{]/.test(path) || path === '/') continue;
      const base = path.endsWith('/') ? path.slice(0, -1) : path;
      const covered = (op.paths ?? []).some((p) => p === `${base}/*` || p === `${base}*` || p === `${base}/{**}`);
      if (!covered) add('deny-exact-path', where, `DENY on the exact path '${path}' leaves '${base}/' and '${base}/…' open`, `also list '${base}/*' (or write '${base}/{**}')`);
    }
    if (op.paths === undefined) continue;
    const sensitive = config.routes.filter((r) => appliesTo(policy, r.name) && (r.pathCase ?? config.pathCase) === 'sensitive').map((r) => r.name);
    if (sensitive.length > 0) {
      add('deny-path-case-sensitive', where, `DENY paths compare case exactly on route(s) ${sensitive.join(', ')} (pathCase: sensitive): '/ADMIN' passes a DENY on '/admin' and case-folding backends serve it`, 'remove pathCase: sensitive (the default folds case for DENY paths)');
    }
  }
}

/** An earlier rule of the same kind, on at least the same routes, that matches everything or the same things. */
function shadowingRule(policy: Policy, rule: Rule, index: number, earlier: readonly Policy[]): string | undefined {
  const sameRule = (a: Rule, b: Rule) => isEmptyRule(a) || isDeepStrictEqual({ ...a, name: undefined }, { ...b, name: undefined });
  const rules = policy.rules ?? [];
  for (let k = 0; k < index; k++) if (sameRule(rules[k]!, rule)) return `rule '${ruleName(rules[k]!, k)}' of the same policy`;
  const covers = (p: Policy) =>
    p.action === policy.action && (p.mode ?? 'enforce') === (policy.mode ?? 'enforce') && (p.routes === undefined || (policy.routes?.every((r) => p.routes!.includes(r)) ?? false));
  for (const p of earlier.filter(covers)) {
    const hit = (p.rules ?? []).findIndex((r) => sameRule(r, rule));
    if (hit !== -1) return `rule '${ruleName(p.rules![hit]!, hit)}' of policy '${p.name}'`;
  }
  return undefined;
}

function isEmptyRule(rule: Rule): boolean {
  return rule.from === undefined && rule.to === undefined && rule.when === undefined;
}

/** Routes an earlier route always wins over (same or wider hosts, methods and path), with that route. */
function unreachableRoutes(routes: readonly RouteConfig[]): Map<string, string> {
  const out = new Map<string, string>();
  routes.forEach((route, i) => {
    const by = routes.slice(0, i).find((earlier) => routeCovers(earlier, route));
    if (by) out.set(route.name, by.name);
  });
  return out;
}

function routeCovers(a: RouteConfig, b: RouteConfig): boolean {
  const superset = (x: readonly string[] | undefined, y: readonly string[] | undefined) => x === undefined || (y !== undefined && y.every((v) => x.includes(v)));
  if (!superset(a.match.hosts, b.match.hosts) || !superset(a.match.methods, b.match.methods)) return false;
  const pa = a.match.path;
  const pb = b.match.path;
  if (pa === undefined) return true;
  if (pb === undefined) return false;
  if ('exact' in pa) return 'exact' in pb && pb.exact === pa.exact;
  const prefix = pa.prefix.replace(/\/$/, '');
  const other = 'exact' in pb ? pb.exact : pb.prefix.replace(/\/$/, '');
  return prefix === '' || other === prefix || other.startsWith(`${prefix}/`);
}

function lintEgress(config: Config, add: Add): void {
  for (const rule of config.egress?.allow ?? []) {
    const at = `egress.allow[${rule.name}]`;
    for (const host of rule.hosts ?? []) {
      if (!host.startsWith('*.')) continue;
      // A wildcard over a public suffix (`*.com`, `*.co.uk`, `*.github.io`) admits every owner's domain.
      if (getDomain(host.slice(2), { allowPrivateDomains: true }) === null) {
        add('egress-wildcard-too-wide', at, `'${host}' is wider than one registrable domain: it admits every domain under a public suffix`, `list the domains (e.g. '*.example${host.slice(1)}')`);
      }
    }
    if (rule.identities.includes('anonymous')) {
      add('egress-anonymous', at, 'callers the proxy cannot identify (anonymous) may use this rule; the audit cannot name who went out', 'identify callers (mTLS SVID, proxy token or a source identity) and name them here');
    }
  }
}

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '[::1]']);

function lintJwtProviders(config: Config, add: Add): void {
  for (const provider of config.jwtProviders ?? []) {
    const at = `jwtProviders[${provider.name}]`;
    if (provider.jwksUri !== undefined && isCleartextOffLoopback(provider.jwksUri)) {
      add('jwks-uri-cleartext', at, `jwksUri '${new URL(provider.jwksUri).origin}' is fetched over plain HTTP: anyone on the path can serve their own keys and forge every token`, 'use an https:// jwksUri (plain HTTP is only safe on loopback)');
    }
    if (!provider.audiences?.length) {
      add('jwt-any-audience', at, `provider '${provider.name}' checks no audience: a token its issuer minted for any other service is accepted here too`, "list the audiences this gateway's tokens carry (audiences: [...])");
    }
  }
}

function isCleartextOffLoopback(uri: string): boolean {
  if (!URL.canParse(uri)) return false;
  const url = new URL(uri);
  if (url.protocol !== 'http:') return false;
  return !(LOOPBACK_HOSTS.has(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname));
}

/** Every enforcement point in dry-run, where it is and since when (`dryRunSince`, when given). */
function dryRuns(config: Config): { at: string; what: string; since: string | undefined }[] {
  const out: { at: string; what: string; since: string | undefined }[] = [];
  for (const p of config.policies ?? []) if (p.mode === 'dry-run') out.push({ at: `policies[${p.name}]`, what: `policy '${p.name}'`, since: p.dryRunSince });
  for (const p of config.jwtProviders ?? []) if (p.mode === 'dry-run') out.push({ at: `jwtProviders[${p.name}]`, what: `JWT provider '${p.name}'`, since: p.dryRunSince });
  for (const r of config.routes) {
    if (r.authenticationMode === 'dry-run') out.push({ at: `routes[${r.name}].authenticationMode`, what: `the token requirement of route '${r.name}'`, since: r.authenticationDryRunSince });
  }
  for (const l of config.rateLimits ?? []) if (l.mode === 'dry-run') out.push({ at: `rateLimits[${l.name}]`, what: `rate limit '${l.name}'`, since: l.dryRunSince });
  for (const r of config.egress?.allow ?? []) {
    if (r.mode === 'dry-run' || r.mode === 'report') out.push({ at: `egress.allow[${r.name}]`, what: `egress rule '${r.name}'`, since: r.dryRunSince });
    if (r.byteBudget?.mode === 'dry-run') out.push({ at: `egress.allow[${r.name}].byteBudget`, what: `the byte budget of egress rule '${r.name}'`, since: r.byteBudget.dryRunSince });
  }
  return out;
}

const DAY_MS = 86_400_000;

function lintDryRuns(config: Config, options: LintOptions, add: Add): void {
  const maxDays = options.maxDryRunDays ?? DEFAULT_MAX_DRY_RUN_DAYS;
  const now = options.now ?? Date.now();
  for (const { at, what, since } of dryRuns(config)) {
    if (since === undefined) {
      add('dry-run-undated', at, `${what} is in dry-run with no dryRunSince: nobody can tell how long it has not been enforced`, `add dryRunSince: ${new Date(now).toISOString().slice(0, 10)} (the day it went into dry-run)`);
      continue;
    }
    const days = Math.floor((now - Date.parse(`${since}T00:00:00Z`)) / DAY_MS);
    if (days > maxDays) {
      add('dry-run-too-long', at, `${what} has been in dry-run since ${since}, more than ${maxDays} days: it still enforces nothing`, `read its DRY_RUN_WOULD_DENY records, then set mode: enforce (or remove it)`);
    }
  }
}
