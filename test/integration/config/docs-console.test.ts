// The `console` blocks of docs/configuration.md are real: each `$ portcullis …` command runs (the real CLI, in the
// config fixtures folder with test certificates) and must print exactly the lines shown; `$ echo $?` checks the exit
// code of the command before it. File names are shown relative to the fixtures folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { portcullis } from '../../helpers/cli.js';
import { commands, consoleBlocks } from '../../helpers/console-blocks.js';
import { configFixtures } from '../../helpers/config-material.js';

const DOC = 'docs/configuration.md';
const blocks = consoleBlocks(DOC);

test(`${DOC} shows console blocks`, () => assert.ok(blocks.length >= 4));

blocks.forEach((block, i) => {
  test(`${DOC} console block ${i + 1}`, async () => {
    const dir = configFixtures();
    let lastCode: number | undefined;
    for (const { command, output } of commands(block)) {
      if (command === 'echo $?') {
        assert.equal(`${lastCode}\n`, output);
        continue;
      }
      const args = command.split(' ');
      assert.equal(args.shift(), 'portcullis', `only portcullis commands are run: ${command}`);
      const result = await portcullis(args, { cwd: dir });
      lastCode = result.code;
      assert.equal((result.stdout + result.stderr).replaceAll(`${dir}/`, ''), output, command);
    }
  });
});
