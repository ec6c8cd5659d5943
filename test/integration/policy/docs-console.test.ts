// The `console` blocks of docs/policies.md are real: each `$ portcullis …` command runs (the real CLI, in a copy
// of policies/examples with the certificates its gateway configs name) and must print exactly the lines shown;
// `$ echo $?` checks the exit code of the command before it. Arguments may be single-quoted, as in a shell.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { portcullis } from '../../helpers/cli.js';
import { commands, consoleBlocks } from '../../helpers/console-blocks.js';
import { EXAMPLES, exampleGateway, policyExamplesFolder } from '../../helpers/policy-examples.js';

const DOC = 'docs/policies.md';
const blocks = consoleBlocks(DOC);
let dir: string;

before(() => {
  dir = policyExamplesFolder();
  for (const f of readdirSync(join(dir, EXAMPLES, 'tests')).filter((f) => f.endsWith('.gateway.yaml'))) exampleGateway(dir, f.replace('.gateway.yaml', ''));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Words split on spaces, with '…' quoting (no escapes), as the shell reads these lines. */
function words(command: string): string[] {
  return [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

test(`${DOC} shows console blocks`, () => assert.ok(blocks.length >= 4));

blocks.forEach((block, i) => {
  test(`${DOC} console block ${i + 1}`, async () => {
    let lastCode: number | undefined;
    for (const { command, output } of commands(block)) {
      if (command === 'echo $?') {
        assert.equal(`${lastCode}\n`, output);
        continue;
      }
      const args = words(command);
      assert.equal(args.shift(), 'portcullis', `only portcullis commands are run: ${command}`);
      const result = await portcullis(args, { cwd: dir });
      lastCode = result.code;
      assert.equal(result.stdout + result.stderr, output, command);
    }
  });
});
