// Every `npm run bench -- …` command line in docs/performance.md and the README (the console block and the commands
// given for each figure) is accepted by the bench's own argument parser, and the flags table names exactly the
// scenarios and peers the bench knows. Running them is the bench's job (minutes each), not the test suite's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseBenchArgs } from '../../bench/args.js';
import { PEER_NAMES, SCENARIO_IDS } from '../../bench/scenarios.js';

const read = (doc: string) => readFileSync(new URL(`../../../${doc}`, import.meta.url), 'utf8');

function benchCommands(text: string): string[] {
  // Up to the end of the code span or line, without a trailing `# comment`.
  return [...text.matchAll(/npm run bench -- ([^`\n]*)/g)].map((m) => m[1]!.replace(/\s+#.*$/, '').trim());
}

for (const doc of ['docs/performance.md', 'README.md']) {
  const commands = benchCommands(read(doc));
  test(`${doc} gives bench command lines`, () => assert.ok(commands.length >= (doc === 'README.md' ? 1 : 8), `${commands.length} found`));
  for (const command of commands) {
    test(`${doc}: npm run bench -- ${command}`, () => {
      assert.doesNotThrow(() => parseBenchArgs(command.split(/\s+/), { node: process.execPath, out: 'unused.md' }));
    });
  }
}

test('docs/performance.md lists every scenario and peer the bench knows', () => {
  const flags = read('docs/performance.md');
  const row = (flag: string) => new RegExp(`^\\| \`${flag}\` \\| [^|]+ \\| \`([^\`]+)\``, 'm').exec(flags)?.[1]?.split(',');
  assert.deepEqual(row('--scenarios'), [...SCENARIO_IDS]);
  assert.deepEqual(row('--peers'), PEER_NAMES.filter((p) => p !== 'portcullis-base'));
});
