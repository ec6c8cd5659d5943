import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTunnelLimiter } from '../../../gateway/egress/tunnel.js';

test('tunnel limiter: per identity, released once, rejects bad limits at creation', () => {
  const limiter = createTunnelLimiter(2);
  const a1 = limiter.acquire('a');
  const a2 = limiter.acquire('a');
  assert.ok(a1 && a2);
  assert.equal(limiter.acquire('a'), undefined);
  assert.ok(limiter.acquire('b'), 'other identities have their own budget');
  a1();
  a1();
  const a3 = limiter.acquire('a');
  assert.ok(a3);
  assert.equal(limiter.acquire('a'), undefined, 'a double release frees one slot only');
  assert.throws(() => createTunnelLimiter(0), /positive integer/);
});
