import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTunnelLimiter } from '../../../gateway/egress/tunnel.js';

const max = { perIdentity: 2, perSource: 1 };

test('tunnel limiter: per identity, released once', () => {
  const limiter = createTunnelLimiter();
  const a1 = limiter.acquire({ principal: 'a' }, max);
  const a2 = limiter.acquire({ principal: 'a' }, max);
  assert.ok(typeof a1 === 'function' && typeof a2 === 'function');
  assert.equal(limiter.acquire({ principal: 'a' }, max), 'too_many_tunnels');
  assert.equal(typeof limiter.acquire({ principal: 'b' }, max), 'function', 'other identities have their own budget');
  a1();
  a1();
  assert.equal(typeof limiter.acquire({ principal: 'a' }, max), 'function');
  assert.equal(limiter.acquire({ principal: 'a' }, max), 'too_many_tunnels', 'a double release frees one slot only');
});

test('tunnel limiter: one source cannot take a shared identity\'s whole budget', () => {
  const limiter = createTunnelLimiter();
  const first = limiter.acquire({ principal: 'anonymous', source: '10.0.0.1' }, max);
  assert.equal(typeof first, 'function');
  assert.equal(limiter.acquire({ principal: 'anonymous', source: '10.0.0.1' }, max), 'too_many_tunnels_from_source');
  assert.equal(typeof limiter.acquire({ principal: 'anonymous', source: '10.0.0.2' }, max), 'function');
  if (typeof first === 'function') first();
  assert.equal(typeof limiter.acquire({ principal: 'anonymous', source: '10.0.0.1' }, max), 'function', 'the source slot was released');
  assert.equal(limiter.acquire({ principal: 'anonymous', source: '10.0.0.3' }, max), 'too_many_tunnels', 'the identity budget still holds');
});
