// The README's "Canary rollout and failover": its YAML is the demo's config (scripts/canary-demo.yaml, which
// validate-run also starts), and `npm run --silent demo:canary` (the real script, backends on free ports) prints
// what the README shows: the 90/10 and 50/50 splits as a fair weighted draw gives them, and no failed request when a stable endpoint is
// killed under load.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { commands, consoleBlocks } from '../helpers/console-blocks.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url);

const readme = readFileSync(new URL('README.md', ROOT), 'utf8');
const shown = consoleBlocks('README.md')
  .flatMap(commands)
  .find((c) => c.command === 'npm run --silent demo:canary');

/** The lines of a run, read back: one title and two counts per phase. */
const LINES = [
  /^gateway on 127\.0\.0\.1:\d+; stable: \d+, \d+, \d+; canary: \d+$/,
  ...['weights stable 90, canary 10', 'reloaded: weights stable 50, canary 50', 'stable-2 killed \\(SIGKILL\\) under load, 3\\.5 s of traffic: ejected \\d+ ms after the kill'].flatMap((title) => [
    new RegExp(`^${title}: (\\d+) requests, (\\d+) failed$`),
    /^ {2}stable +(\d+) {2}\(stable-1 \d+, stable-2 \d+, stable-3 \d+\)$/,
    /^ {2}canary +(\d+)$/,
  ]),
];

function phases(output: string): { requests: number; failed: number; stable: number; canary: number }[] {
  const lines = output.trimEnd().split('\n');
  assert.equal(lines.length, LINES.length, output);
  const groups = lines.map((line, i) => {
    const m = LINES[i]!.exec(line);
    assert.ok(m, `line ${i + 1} "${line}" is not ${LINES[i]}`);
    return m.slice(1).map(Number);
  });
  return [1, 4, 7].map((i) => ({ requests: groups[i]![0]!, failed: groups[i]![1]!, stable: groups[i + 1]![0]!, canary: groups[i + 2]![0]! }));
}

test('the README shows the demo config as it is', () => {
  assert.ok(readme.includes(`\`\`\`yaml\n${readFileSync(new URL('scripts/canary-demo.yaml', ROOT), 'utf8')}\`\`\``));
});

test('the README shows a run of the demo, in the shape the demo prints', () => {
  assert.ok(shown, 'no `$ npm run --silent demo:canary` block');
  phases(shown.output);
});

test('the demo, run for real: 90/10 and 50/50 as a fair weighted draw gives them, no failed request when an endpoint is killed', { timeout: 120_000 }, async (t) => {
  const { stdout } = await run('npm', ['run', '--silent', 'demo:canary'], { cwd: ROOT, env: { ...process.env, PORTCULLIS_DEMO_EPHEMERAL: '1' }, timeout: 110_000 });
  for (const line of stdout.trimEnd().split('\n')) t.diagnostic(line);
  const [split, reweighted, failover] = phases(stdout);
  for (const [phase, canaryShare] of [[split!, 0.1], [reweighted!, 0.5]] as const) {
    assert.equal(phase.failed, 0);
    assert.equal(phase.stable + phase.canary, 2000);
    // Each request draws its backend at random: the canary's count is binomial. 4.5 standard deviations (±3 % at
    // 90/10, ±5 % at 50/50 over 2,000 requests) fail a fair draw about once in 150,000 runs. ±3 % at 50/50 (2.7 of
    // them) fails about one run in 140, and did (935 of 2,000). A split that ignored its weights or the reload would
    // still be far outside.
    const tolerance = 4.5 * Math.sqrt((canaryShare * (1 - canaryShare)) / 2000);
    assert.ok(Math.abs(phase.canary / 2000 - canaryShare) <= tolerance, stdout);
  }
  assert.equal(failover!.failed, 0, stdout);
  assert.ok(failover!.requests > 100, stdout);
});
