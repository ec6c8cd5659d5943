import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TOKEN_CACHE_MAX_AGE_MS, createTokenCache } from '../../../gateway/jwt/token-cache.js';

const NOW = 1_800_000_000_000;
const EXP = NOW / 1000 + 3600;

test('hits until exp, then misses', () => {
  const cache = createTokenCache<string>(10);
  cache.set('t', 'v', NOW, NOW / 1000 + 60);
  assert.equal(cache.get('t', NOW + 59_999), 'v');
  assert.equal(cache.get('t', NOW + 60_000), undefined);
  assert.equal(cache.size, 0, 'an expired entry is dropped on lookup');
});

test('no entry outlives the maximum age, even without exp', () => {
  const cache = createTokenCache<string>(10);
  cache.set('a', 'v', NOW, undefined);
  cache.set('b', 'v', NOW, EXP);
  assert.equal(cache.get('a', NOW + TOKEN_CACHE_MAX_AGE_MS - 1), 'v');
  assert.equal(cache.get('a', NOW + TOKEN_CACHE_MAX_AGE_MS), undefined);
  assert.equal(cache.get('b', NOW + TOKEN_CACHE_MAX_AGE_MS), undefined);
});

test('an already expired token is not stored', () => {
  const cache = createTokenCache<string>(10);
  cache.set('t', 'v', NOW, NOW / 1000);
  assert.equal(cache.size, 0);
});

test('bounded, evicting the least recently used', () => {
  const cache = createTokenCache<string>(2);
  cache.set('a', '1', NOW, EXP);
  cache.set('b', '2', NOW, EXP);
  assert.equal(cache.get('a', NOW), '1');
  cache.set('c', '3', NOW, EXP);
  assert.equal(cache.size, 2);
  assert.equal(cache.get('b', NOW), undefined);
  assert.equal(cache.get('a', NOW), '1');
  assert.equal(cache.get('c', NOW), '3');
});

test('the size must be a positive integer', () => {
  assert.throws(() => createTokenCache(0), /positive integer/);
  assert.throws(() => createTokenCache(1.5), /positive integer/);
});
