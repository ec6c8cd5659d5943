// When `portcullis run` re-executes itself with its young-generation flag, and when it leaves the command as given.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { SEMI_SPACE_FLAG, youngGenerationArgs } from '../../../gateway/young-generation.js';

const CLI = path.resolve(import.meta.dirname, '../../../gateway/cli.ts');
const BIN = path.resolve(import.meta.dirname, '../../../bin/portcullis.js');

test('run from the CLI or the bin launcher gets the flag first, the node flags and arguments kept in order', () => {
  assert.deepEqual(youngGenerationArgs(['node', CLI, 'run', '-c', 'x.yaml'], ['--import', 'tsx'], undefined), [SEMI_SPACE_FLAG, '--import', 'tsx', CLI, 'run', '-c', 'x.yaml']);
  assert.deepEqual(youngGenerationArgs(['node', BIN, 'run'], [], ''), [SEMI_SPACE_FLAG, BIN, 'run']);
});

test('an operator-chosen semi-space size (command line or NODE_OPTIONS, either spelling) is kept', () => {
  assert.equal(youngGenerationArgs(['node', CLI, 'run'], ['--max-semi-space-size=16'], undefined), undefined);
  assert.equal(youngGenerationArgs(['node', CLI, 'run'], [], '--enable-source-maps --max_semi_space_size=32'), undefined);
});

test('other commands, and processes that only import the CLI (tests, tools), are left alone', () => {
  assert.equal(youngGenerationArgs(['node', CLI, 'validate', 'x.yaml'], [], undefined), undefined);
  assert.equal(youngGenerationArgs(['node', CLI], [], undefined), undefined);
  assert.equal(youngGenerationArgs(['node', '/somewhere/runner.js', 'run'], [], undefined), undefined);
});
