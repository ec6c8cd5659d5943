import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFixtures } from '../../helpers/config-material.js';
import { runValidate } from '../../../gateway/config/validate-command.js';

const fixtures = configFixtures();

function run(file: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = runValidate(file, { write: (s: string) => out.push(s) }, { write: (s: string) => err.push(s) });
  return { code, out: out.join(''), err: err.join('') };
}

test('a valid config prints a summary and exits 0', () => {
  const file = join(fixtures, 'good.yaml');
  assert.deepEqual(run(file), { code: 0, out: `ok: ${file} (1 listeners, 2 routes, 2 policies)\n`, err: '' });
});

test('an invalid config prints every issue, one per line, and exits 1', () => {
  const file = join(fixtures, 'unknown-key.yaml');
  assert.deepEqual(run(file), {
    code: 1,
    out: '',
    err:
      `${file}:11:11: /listeners/0/hosts/0/tls/minVerison: unknown key "minVerison"\n` +
      `${file}:19:5: /routes/0/retryCount: unknown key "retryCount"\n`,
  });
});

test('files are named as given: a relative main file gives relative policy file names', () => {
  // The committed fixtures: relative to the working directory, unlike the generated copy.
  const committed = fileURLToPath(new URL('../../fixtures/config/', import.meta.url));
  const file = relative(process.cwd(), join(committed, 'bad-policy-file.yaml'));
  const policyFile = relative(process.cwd(), join(committed, 'policies/dangling.yaml'));
  const { code, err } = run(file);
  assert.equal(code, 1);
  assert.match(err, new RegExp(`^${policyFile}:5:14: /policies/0/routes/0: no route named "al"$`, 'm'));
  assert.match(err, new RegExp(`\\(first defined at ${file} /policies/0/name\\)`));
});
