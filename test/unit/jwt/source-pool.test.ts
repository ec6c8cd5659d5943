import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JwksSource } from '../../../gateway/jwt/jwks-source.js';
import { createJwksSourcePool } from '../../../gateway/jwt/source-pool.js';

function fakeSource(closed: string[], name: string): JwksSource {
  return {
    getKey: () => Promise.reject(new Error('unused')),
    ready: () => Promise.resolve(),
    status: () => ({ state: 'fresh', keys: 1 }),
    close: () => closed.push(name),
  };
}

test('a pooled source is created once per key and stops when its last holder closes (twice closing counts once)', () => {
  const pool = createJwksSourcePool();
  const closed: string[] = [];
  let created = 0;
  const create = () => fakeSource(closed, `source${++created}`);
  const old = pool.acquire('idp', create);
  const next = pool.acquire('idp', create);
  assert.equal(created, 1, 'the second holder shares the first source');
  old.close();
  old.close();
  assert.deepEqual(closed, [], 'still held by the new runtime');
  next.close();
  assert.deepEqual(closed, ['source1']);
  pool.acquire('idp', create).close();
  assert.equal(created, 2, 'a key whose source stopped gets a new one');
});
