import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renewalTime } from '../../../certs/rotation.js';

const notBefore = new Date('2026-01-01T00:00:00Z');
const notAfter = new Date('2026-01-02T00:00:00Z'); // 24 h

test('renews at half-life by default, ±1 % of the lifetime of jitter', () => {
  assert.equal(renewalTime(notBefore, notAfter, { random: () => 0.5 }).toISOString(), '2026-01-01T12:00:00.000Z');
  // random 0 → ratio 0.49 → renew 0.49 × 24 h before expiry; random → 1 → ratio 0.51.
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1, `${a} vs ${b}`);
  near(renewalTime(notBefore, notAfter, { random: () => 0 }).getTime(), notAfter.getTime() - 0.49 * 86400e3);
  near(renewalTime(notBefore, notAfter, { random: () => 1 }).getTime(), notAfter.getTime() - 0.51 * 86400e3);
});

test('jitter spreads a fleet inside the window', () => {
  for (let i = 0; i < 100; i++) {
    const t = renewalTime(notBefore, notAfter).getTime();
    assert.ok(t >= notAfter.getTime() - 0.51 * 86400e3 - 1 && t <= notAfter.getTime() - 0.49 * 86400e3 + 1);
  }
});

test('ratio and jitter are configurable', () => {
  const t = renewalTime(notBefore, notAfter, { ratio: 0.25, jitter: 0, random: () => 0.9 });
  assert.equal(t.toISOString(), '2026-01-01T18:00:00.000Z');
});

test('bad input throws', () => {
  assert.throws(() => renewalTime(notBefore, notAfter, { ratio: 1 }), /ratio/);
  assert.throws(() => renewalTime(notBefore, notAfter, { ratio: 0.5, jitter: 0.6 }), /jitter/);
  assert.throws(() => renewalTime(notAfter, notBefore), /after notBefore/);
});
