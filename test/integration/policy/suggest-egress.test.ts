// The egress half of the least-privilege advisor on an audit file recorded from a real run (curl through the
// gateway's egress proxy, test/helpers/egress-traffic.ts): `portcullis suggest --from EGRESS_AUDIT` must propose,
// per identity, the hosts and ports used and a byte budget from the p99 of its tunnels; the suggestion must pass
// `portcullis validate` in place of the current rules, allow every recorded attempt and refuse the held-back ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfigText } from '../../../gateway/config/load.js';
import { createDecisionRuntime, type EgressExplanation } from '../../../gateway/tools/decide.js';
import { budget } from '../../../gateway/tools/suggest-egress.js';
import { portcullis } from '../../helpers/cli.js';
import { EGRESS_HELD_BACK, EGRESS_TRAFFIC, recordEgressRun, type EgressRun } from '../../helpers/egress-traffic.js';

let run: EgressRun;
before(async () => {
  run = await recordEgressRun();
});
after(() => run.close());

test('the scripted traffic went through: the dry-run rule let billing reach an unlisted host, reports was refused one', () => {
  assert.deepEqual(
    run.results.map((r) => r.status),
    [...EGRESS_TRAFFIC.map(() => '200/200'), '403/000'],
    JSON.stringify(run.results),
  );
});

test('suggest --from EGRESS_AUDIT: the tightest rule per identity, with a byte budget; validate accepts it', async () => {
  const records = readFileSync(run.auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const r = await portcullis(['suggest', '-c', run.ing.configFile, '--from', run.auditFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(parseAllDocuments(r.stdout).length, 1, 'no access-log lines: only the egress document');
  assert.deepEqual(
    r.stdout.split('\n').filter((l) => l.startsWith('#')),
    [
      '# Suggested egress allow rules from 7 allowed egress attempts (put them in the config\'s egress section).',
      `# egress rule 'billing-learning' is in dry-run: 1 attempt to destinations it does not list (hooks.chat.example:${run.port}); the suggestion lists them`,
      "# egress rule 'reports-ftp' allowed no attempt in the log",
    ],
  );
  const tunnelBytes = (identity: string) => records.filter((rec) => rec.identity === identity && rec.allow === true).map((rec) => Number(rec.bytesIn) + Number(rec.bytesOut));
  const day = String(records.at(-1)!.time).slice(0, 10);
  const suggested = (parse(r.stdout) as { egress: { allow: unknown[] } }).egress.allow;
  assert.deepEqual(suggested, [
    {
      name: 'egress-billing-0',
      identities: ['billing'],
      hosts: ['api.payments.example', 'hooks.chat.example'],
      ports: [run.port],
      byteBudget: { maxBytesPerTunnel: budget(tunnelBytes('billing')), mode: 'dry-run', dryRunSince: day },
    },
    {
      name: 'egress-reports-1',
      identities: ['reports'],
      hosts: ['files.storage.example', 'storage.example'],
      ports: [run.port],
      byteBudget: { maxBytesPerTunnel: budget(tunnelBytes('reports')), mode: 'dry-run', dryRunSince: day },
    },
  ]);
  // p99 of 4 or 3 tunnels is the largest; twice that, in whole KiB, lets every recorded tunnel through.
  for (const identity of ['billing', 'reports']) {
    const largest = Math.max(...tunnelBytes(identity));
    assert.equal(budget(tunnelBytes(identity)), Math.ceil((2 * largest) / 1024) * 1024);
  }

  // The suggestion in place of the current rules, through `validate` (the loader and every check `run` makes).
  const config = parse(readFileSync(run.ing.configFile, 'utf8')) as { egress: Record<string, unknown> };
  config.egress.allow = suggested;
  const file = join(run.ing.dir, 'suggested.yaml');
  writeFileSync(file, stringify(config));
  const validated = await portcullis(['validate', '-c', file]);
  assert.equal(validated.code, 0, validated.stdout + validated.stderr);

  // Replayed against the suggestion: every recorded attempt allowed (none by a dry-run), every held-back one refused.
  const runtime = createDecisionRuntime(loadConfigText(readFileSync(file, 'utf8'), file).config);
  try {
    const decide = async (identity: string, host: string) =>
      ((await runtime.explain({ kind: 'egress', input: { identity, host, port: run.port } })) as EgressExplanation).decision;
    for (const t of EGRESS_TRAFFIC) assert.deepEqual((({ allowed, wouldDeny }) => ({ allowed, wouldDeny }))(await decide(t.from, t.host)), { allowed: true, wouldDeny: false }, JSON.stringify(t));
    for (const t of EGRESS_HELD_BACK) assert.equal((await decide(t.from, t.host)).allowed, false, JSON.stringify(t));
    assert.equal((await decide('billing', 'api.payments.example')).allowed, true);
  } finally {
    await runtime.close();
  }
});

test('suggest reads dry-run would-denies and reports what enforcing each would refuse', async () => {
  const log = join(run.ing.dir, 'process.log');
  writeFileSync(log, run.ing.logs.map((l) => JSON.stringify(l)).join('\n'));
  const r = await portcullis(['suggest', '-c', run.ing.configFile, '--from', log, '--from', run.auditFile]);
  assert.equal(r.code, 0, r.stderr);
  // The process log has the EGRESS_DECISION lines too: each attempt is counted once.
  assert.match(r.stdout, /^# Suggested egress allow rules from 7 allowed egress attempts/m);
  assert.match(r.stdout, /^# dry-run egress 'billing-learning' would have denied 1 in the log: enforcing it refuses it$/m);
});
