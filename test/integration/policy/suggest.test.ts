// The least-privilege advisor on a log recorded from a real run: a scripted traffic mix through a real gateway,
// its access log fed to `portcullis suggest`; the suggestion must load as a config (what validate checks),
// allow every recorded request, and deny a held-back set of requests the traffic never made.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { loadConfigText } from '../../../gateway/config/load.js';
import type { IngressExplanation } from '../../../gateway/ingress/explain.js';
import { createDecisionRuntime } from '../../../gateway/tools/decide.js';
import { portcullis } from '../../helpers/cli.js';
import { ISSUER, request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';

let ing: TestIngress;

before(async () => {
  ing = await startTestIngress((config) => {
    config.routes.unshift({ name: 'orders', match: { path: { prefix: '/orders' } }, upstream: 'echo' });
    config.policies.push({
      name: 'orders',
      action: 'ALLOW',
      routes: ['orders'],
      rules: [{ name: 'any-token', from: [{ source: { requestPrincipals: ['*'] } }] }, { name: 'never', from: [{ source: { principals: ['cluster.local/ns/x/sa/y'] } }] }],
    });
  });
});
after(() => ing.close());

const TRAFFIC: { sub?: string; method: string; path: string }[] = [
  { sub: 'alice', method: 'GET', path: '/orders/41' },
  { sub: 'alice', method: 'GET', path: '/orders/42' },
  { sub: 'alice', method: 'POST', path: '/orders' },
  { sub: 'carol', method: 'GET', path: '/orders/7' },
  { method: 'GET', path: '/public/hello' },
  { sub: 'bob', method: 'GET', path: '/api/profile' },
];

/** Requests the traffic never made: another caller, method or path. */
const HELD_BACK: { sub?: string; method: string; path: string }[] = [
  { sub: 'bob', method: 'GET', path: '/orders/41' },
  { sub: 'alice', method: 'DELETE', path: '/orders/41' },
  { sub: 'carol', method: 'POST', path: '/orders' },
  { sub: 'alice', method: 'GET', path: '/orders/41/secrets' },
  { method: 'GET', path: '/public/other' },
  { sub: 'alice', method: 'GET', path: '/api/profile' },
];

test('suggest: tightest policies from a real run, that allow the traffic and deny what it never did', async () => {
  for (const t of TRAFFIC) {
    const headers = t.sub ? { authorization: `Bearer ${await ing.jwks.sign({ sub: t.sub })}` } : {};
    const reply = await request(ing.port, ing.caPem, { method: t.method, path: t.path, headers });
    assert.equal(reply.status, 200, reply.text);
  }
  const log = join(ing.dir, 'access.log');
  writeFileSync(log, ing.logs.map((l) => JSON.stringify(l)).join('\n'));

  const r = await portcullis(['suggest', '-c', ing.configFile, '--from', log]);
  assert.equal(r.code, 0, r.stderr);
  const comments = r.stdout.split('\n').filter((l) => l.startsWith('#'));
  assert.deepEqual(comments, [
    '# Suggested from 6 allowed requests.',
    `# policy 'api' rule 'rules[0]' admits any caller; the log shows token ${ISSUER}/bob`,
    "# policy 'admin' rule 'rules[0]' allowed no request in the log",
    `# policy 'orders' rule 'any-token' admits any caller; the log shows token ${ISSUER}/alice, token ${ISSUER}/carol`,
    "# policy 'orders' rule 'never' allowed no request in the log",
  ]);
  const suggested = parse(r.stdout) as { policies: { name: string; rules: unknown[] }[] };
  assert.deepEqual(suggested.policies.find((p) => p.name === 'suggested-orders')?.rules, [
    { name: 'observed-0', from: [{ source: { requestPrincipals: [`${ISSUER}/alice`] } }], to: [{ operation: { methods: ['GET', 'POST'], paths: ['/orders', '/orders/{*}'] } }] },
    { name: 'observed-1', from: [{ source: { requestPrincipals: [`${ISSUER}/carol`] } }], to: [{ operation: { methods: ['GET'], paths: ['/orders/{*}'] } }] },
  ]);

  // The suggestion in place of the current policies, through the loader (what validate and run check).
  const config = parse(readFileSync(ing.configFile, 'utf8')) as Record<string, unknown>;
  config.policies = suggested.policies;
  const file = join(ing.dir, 'suggested.yaml');
  writeFileSync(file, stringify(config));
  const runtime = createDecisionRuntime(loadConfigText(readFileSync(file, 'utf8'), file).config);
  try {
    const decide = async (t: { sub?: string; method: string; path: string }) => {
      const e = (await runtime.explain({
        kind: 'ingress',
        input: { method: t.method, url: `https://localhost${t.path}`, ...(t.sub ? { claims: { iss: ISSUER, sub: t.sub } } : {}) },
      })) as IngressExplanation;
      return e.outcome.decision;
    };
    for (const t of TRAFFIC) assert.equal(await decide(t), 'forward', JSON.stringify(t));
    for (const t of HELD_BACK) assert.equal(await decide(t), 'refuse', JSON.stringify(t));
  } finally {
    await runtime.close();
  }
});

test('suggest: usage', async () => {
  assert.equal((await portcullis(['suggest', '-c', ing.configFile])).code, 2);
  assert.equal((await portcullis(['suggest', '-c', ing.configFile, '--from', join(ing.dir, 'missing.log')])).code, 2);
  assert.equal((await portcullis(['suggest', '--help'])).code, 0);
});
