// Each lint finding: a config that triggers it and one that does not (the fixed config its hint asks for).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../../gateway/config/schema.js';
import { FINDINGS, lintConfig, type FindingId } from '../../../gateway/tools/lint.js';

type ConfigPart = Partial<Config>;

const route = (name: string, prefix = `/${name}`): Config['routes'][number] => ({ name, match: { path: { prefix } }, upstream: 'app' });
const open = (name: string) => ({ name: `${name}-open`, action: 'ALLOW' as const, routes: [name], rules: [{ from: [{ source: { principals: ['cluster.local/ns/a/sa/b'] } }] }] });

function config(c: ConfigPart): Config {
  return { version: 'v1', listeners: [], upstreams: [], routes: [], ...c } as unknown as Config;
}

const egress = (allow: unknown[]) => ({ listener: { address: '127.0.0.1', port: 3128 }, allow }) as unknown as Config['egress'];

const provider = (extra: object) =>
  ({ name: 'idp', issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks.json', audiences: ['orders'], ...extra }) as NonNullable<Config['jwtProviders']>[number];

const passthroughListener = {
  name: 'edge',
  port: 8443,
  hosts: [{ name: 'db', hostnames: ['db.example.com'], tls: { mode: 'passthrough', upstream: 'db' } }],
} as Config['listeners'][number];

const today = new Date().toISOString().slice(0, 10);
const rollout = (extra: object) => ({ name: 'rollout', action: 'DENY' as const, mode: 'dry-run' as const, rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }], ...extra });

const CASES: Record<FindingId, { triggers: ConfigPart; clean: ConfigPart }> = {
  'allow-everyone-on-token-route': {
    triggers: {
      routes: [route('api')],
      policies: [
        { name: 'jwt', action: 'ALLOW', routes: ['api'], rules: [{ from: [{ source: { requestPrincipals: ['https://issuer/*'] } }] }] },
        { name: 'oops', action: 'ALLOW', routes: ['api'], rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
      ],
    },
    clean: {
      routes: [route('api')],
      policies: [
        { name: 'jwt', action: 'ALLOW', routes: ['api'], rules: [{ from: [{ source: { requestPrincipals: ['https://issuer/*'] } }] }] },
        { name: 'health', action: 'ALLOW', routes: ['api'], rules: [{ to: [{ operation: { methods: ['GET'], paths: ['/api/healthz'] } }] }] },
      ],
    },
  },
  'wildcard-principal': {
    triggers: { routes: [route('api')], policies: [{ name: 'p', action: 'ALLOW', rules: [{ from: [{ source: { principals: ['*'] } }] }] }] },
    clean: { routes: [route('api')], policies: [{ name: 'p', action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/*'] } }] }] }] },
  },
  'allow-not-paths': {
    triggers: { routes: [route('api')], policies: [{ name: 'p', action: 'ALLOW', rules: [{ from: [{ source: { principals: ['td/ns/a/sa/b'] } }], to: [{ operation: { notPaths: ['/api/admin'] } }] }] }] },
    clean: { routes: [route('api')], policies: [{ name: 'p', action: 'ALLOW', rules: [{ from: [{ source: { principals: ['td/ns/a/sa/b'] } }], to: [{ operation: { paths: ['/api/orders/*'] } }] }] }] },
  },
  'deny-exact-path': {
    triggers: { routes: [route('api')], policies: [open('api'), { name: 'd', action: 'DENY', rules: [{ to: [{ operation: { paths: ['/api/admin'] } }] }] }] },
    clean: { routes: [route('api')], policies: [open('api'), { name: 'd', action: 'DENY', rules: [{ to: [{ operation: { paths: ['/api/admin', '/api/admin/*'] } }] }] }] },
  },
  'deny-path-case-sensitive': {
    triggers: { pathCase: 'sensitive', routes: [route('api')], policies: [open('api'), { name: 'd', action: 'DENY', rules: [{ to: [{ operation: { paths: ['/api/admin/{**}'] } }] }] }] },
    clean: { routes: [route('api')], policies: [open('api'), { name: 'd', action: 'DENY', rules: [{ to: [{ operation: { paths: ['/api/admin/{**}'] } }] }] }] },
  },
  'shadowed-rule': {
    triggers: { routes: [route('api')], policies: [{ name: 'p', action: 'DENY', rules: [{ name: 'all' }, { name: 'later', to: [{ operation: { methods: ['POST'] } }] }] }, open('api')] },
    clean: { routes: [route('api')], policies: [{ name: 'p', action: 'DENY', rules: [{ name: 'put', to: [{ operation: { methods: ['PUT'] } }] }, { name: 'later', to: [{ operation: { methods: ['POST'] } }] }] }, open('api')] },
  },
  'unreachable-policy': {
    triggers: { routes: [route('all', '/'), route('api')], policies: [open('all'), open('api')] },
    clean: { routes: [route('api'), route('all', '/')], policies: [open('all'), open('api')] },
  },
  'unreachable-route': {
    triggers: { routes: [route('api'), route('orders', '/api/orders')], policies: [open('api'), open('orders')] },
    clean: { routes: [route('orders', '/api/orders'), route('api')], policies: [open('api'), open('orders')] },
  },
  'egress-wildcard-too-wide': {
    triggers: { egress: egress([{ name: 'web', identities: ['local'], hosts: ['*.co.uk'] }]) },
    clean: { egress: egress([{ name: 'web', identities: ['local'], hosts: ['*.example.co.uk'] }]) },
  },
  'egress-anonymous': {
    triggers: { egress: egress([{ name: 'web', identities: ['anonymous'], hosts: ['example.com'] }]) },
    clean: { egress: egress([{ name: 'web', identities: ['local'], hosts: ['example.com'] }]) },
  },
  'jwks-uri-cleartext': {
    triggers: { jwtProviders: [provider({ jwksUri: 'http://idp.internal:8080/jwks.json' })] },
    clean: { jwtProviders: [provider({ jwksUri: 'https://idp.internal/jwks.json' }), provider({ name: 'dev', jwksUri: 'http://127.0.0.1:9445/jwks.json' })] },
  },
  'jwt-any-audience': {
    triggers: { jwtProviders: [provider({ audiences: [] })] },
    clean: { jwtProviders: [provider({})] },
  },
  'route-without-policy': {
    triggers: { routes: [route('api')], policies: [] },
    clean: { routes: [route('api')], policies: [open('api')] },
  },
  'passthrough-without-policy': {
    triggers: { listeners: [passthroughListener] },
    clean: {
      listeners: [passthroughListener],
      policies: [{ name: 'db-sources', action: 'ALLOW', routes: ['db'], rules: [{ from: [{ source: { ipBlocks: ['10.0.8.0/22'] } }] }] }],
    },
  },
  'dry-run-too-long': {
    triggers: { routes: [route('api')], policies: [open('api'), rollout({ dryRunSince: '2020-01-01' })] },
    clean: { routes: [route('api')], policies: [open('api'), rollout({ dryRunSince: today })] },
  },
  'dry-run-undated': {
    triggers: { routes: [route('api')], policies: [open('api'), rollout({})] },
    clean: { routes: [route('api')], policies: [open('api'), rollout({ dryRunSince: today })] },
  },
};

for (const id of Object.keys(FINDINGS) as FindingId[]) {
  test(`lint ${id}: triggered, and not once fixed`, () => {
    const { triggers, clean } = CASES[id];
    const found = lintConfig(config(triggers)).filter((f) => f.id === id);
    assert.equal(found.length, 1, JSON.stringify(lintConfig(config(triggers))));
    assert.equal(found[0]!.severity, FINDINGS[id]);
    assert.ok(found[0]!.fix.length > 0);
    assert.deepEqual(lintConfig(config(clean)).filter((f) => f.id === id), []);
  });
}

test('the wider public suffixes: private ones count too', () => {
  const ids = (host: string) => lintConfig(config({ egress: egress([{ name: 'w', identities: ['l'], hosts: [host] }]) })).map((f) => f.id);
  assert.deepEqual(ids('*.com'), ['egress-wildcard-too-wide']);
  assert.deepEqual(ids('*.github.io'), ['egress-wildcard-too-wide']);
  assert.deepEqual(ids('*.example.com'), []);
});

test('dry-run-too-long covers every kind of dry-run, counted from dryRunSince against --max-dry-run-days', () => {
  const since = '2026-11-01';
  const dated = config({
    routes: [{ ...route('api'), authentication: 'required', authenticationMode: 'dry-run', authenticationDryRunSince: since }],
    policies: [open('api'), rollout({ dryRunSince: since })],
    jwtProviders: [{ name: 'idp', issuer: 'https://idp', jwksUri: 'https://idp/jwks', mode: 'dry-run', dryRunSince: since }],
    rateLimits: [{ name: 'per-ip', requestsPerSecond: 5, mode: 'dry-run', dryRunSince: since }],
    egress: egress([{ name: 'web', identities: ['local'], hosts: ['example.com'], mode: 'report', dryRunSince: since, byteBudget: { maxBytesPerTunnel: 10, mode: 'dry-run', dryRunSince: since } }]),
  });
  const at = (now: string, maxDryRunDays?: number) =>
    lintConfig(dated, { now: Date.parse(now), ...(maxDryRunDays === undefined ? {} : { maxDryRunDays }) }).filter((f) => f.id === 'dry-run-too-long').map((f) => f.at);
  const all = ['policies[rollout]', 'jwtProviders[idp]', 'routes[api].authenticationMode', 'rateLimits[per-ip]', 'egress.allow[web]', 'egress.allow[web].byteBudget'];
  assert.deepEqual(at('2026-11-15T23:00:00Z'), [], '14 days is not more than 14');
  assert.deepEqual(at('2026-11-16T00:00:00Z'), all);
  assert.deepEqual(at('2026-11-30T12:00:00Z', 30), []);
  assert.deepEqual(at('2026-11-03T00:00:00Z', 1), all);
});
