import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionBudget, openFilesLimit } from '../../../../gateway/core/net/connection-budget.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max processes             unlimited            unlimited            processes
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

test('the soft open-files limit is read from /proc/self/limits', () => {
  assert.equal(openFilesLimit(LIMITS), 1024);
  assert.equal(openFilesLimit(LIMITS.replace('1024 ', 'unlimited ')), undefined, 'unlimited: no bound');
  assert.equal(openFilesLimit(''), undefined, 'no such line: no bound');
  assert.equal(typeof openFilesLimit(), 'number', 'this Linux process has one');
});

test('the budget keeps descriptors back, then gives two to each connection', () => {
  assert.equal(connectionBudget(1024), 384, '(1024 − 256) / 2');
  assert.equal(connectionBudget(1_048_576), 524_160);
  assert.equal(connectionBudget(200), 75, 'a quarter kept back under 1,024');
  assert.equal(connectionBudget(undefined), Infinity);
});
