// The process guard, in a child process of its own: an error that escapes every handler is logged and
// counted and the process serves on; with PORTCULLIS_EXIT_ON_INTERNAL_ERROR=1 it exits 70 instead.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../../..');

const SCRIPT = `
import { installProcessGuard } from './gateway/core/process-guard.ts';
import { createLogger } from './gateway/core/log.ts';
import { createMetrics } from './gateway/core/metrics.ts';
const metrics = createMetrics();
installProcessGuard(createLogger('info'), metrics);
setTimeout(() => { throw new Error('escaped'); }, 1);
Promise.reject(new Error('unhandled'));
setTimeout(async () => {
  const text = await metrics.registry.metrics();
  console.log(text.split('\\n').filter((l) => l.startsWith('portcullis_internal_errors_total')).join('\\n'));
}, 50);
`;

const runGuarded = (env: NodeJS.ProcessEnv) =>
  run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], { cwd: ROOT, env }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
  );

describe('process guard', () => {
  it('logs and counts an escaped error and keeps the process up', async () => {
    const { PORTCULLIS_EXIT_ON_INTERNAL_ERROR: _, ...env } = process.env;
    const { code, stdout } = await runGuarded(env);
    assert.equal(code, 0);
    assert.match(stdout, /portcullis_internal_errors_total\{kind="uncaught_exception"\} 1/);
    assert.match(stdout, /portcullis_internal_errors_total\{kind="unhandled_rejection"\} 1/);
    assert.match(stdout, /"event":"INTERNAL_ERROR"/);
  });

  it('exits 70 on an escaped error when the test suite asks it to', async () => {
    const { code } = await runGuarded({ ...process.env, PORTCULLIS_EXIT_ON_INTERNAL_ERROR: '1' });
    assert.equal(code, 70);
  });
});
