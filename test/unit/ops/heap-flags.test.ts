// When `portcullis run` re-executes itself with its V8 heap flags, and when it leaves the command as given.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { HEAP_FLAGS, heapEnv, heapFlagArgs } from '../../../gateway/heap-flags.js';

const CLI = path.resolve(import.meta.dirname, '../../../gateway/cli.ts');
const BIN = path.resolve(import.meta.dirname, '../../../bin/portcullis.js');

test('run from the CLI or the bin launcher gets the flags first, the node flags and arguments kept in order', () => {
  assert.deepEqual(heapFlagArgs(['node', CLI, 'run', '-c', 'x.yaml'], ['--import', 'tsx'], undefined), [...HEAP_FLAGS, '--import', 'tsx', CLI, 'run', '-c', 'x.yaml']);
  assert.deepEqual(heapFlagArgs(['node', BIN, 'run'], [], ''), [...HEAP_FLAGS, BIN, 'run']);
});

test('a flag the operator set (command line or NODE_OPTIONS, either spelling) is kept, the other one still added', () => {
  assert.deepEqual(heapFlagArgs(['node', CLI, 'run'], ['--max-semi-space-size=16'], undefined), ['--heap-growing-percent=50', '--max-semi-space-size=16', CLI, 'run']);
  assert.deepEqual(heapFlagArgs(['node', CLI, 'run'], [], '--enable-source-maps --heap_growing_percent=100'), ['--max-semi-space-size=8', CLI, 'run']);
  assert.equal(heapFlagArgs(['node', CLI, 'run'], ['--heap-growing-percent=20'], '--max_semi_space_size=32'), undefined);
});

test('other commands, and processes that only import the CLI (tests, tools), are left alone', () => {
  assert.equal(heapFlagArgs(['node', CLI, 'validate', 'x.yaml'], [], undefined), undefined);
  assert.equal(heapFlagArgs(['node', CLI], [], undefined), undefined);
  assert.equal(heapFlagArgs(['node', '/somewhere/runner.js', 'run'], [], undefined), undefined);
});

test('the re-executed process gets one malloc arena, unless the environment already says how many', () => {
  assert.deepEqual(heapEnv({ PATH: '/bin' }), { PATH: '/bin', MALLOC_ARENA_MAX: '1' });
  assert.deepEqual(heapEnv({ PATH: '/bin', MALLOC_ARENA_MAX: '4' }), { PATH: '/bin', MALLOC_ARENA_MAX: '4' });
});
