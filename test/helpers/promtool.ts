// `promtool check metrics` (Debian's prometheus package) on a /metrics page: the test skips, saying so, where the
// tool is missing; `.ci/run` installs it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function assertPromtoolAccepts(t: TestContext, page: string): void {
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: page, encoding: 'utf8' });
  if (promtool.error) return void t.skip('promtool is not installed (Debian package prometheus; .ci/run installs it)');
  // It prints nothing at all for a page without errors or warnings.
  assert.equal(`${promtool.stdout}${promtool.stderr}`, '');
  assert.equal(promtool.status, 0);
}
