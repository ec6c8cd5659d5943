// The one egress decision, on a runtime built from config: stage order, what each refusal leaves in the attempt
// record, and that a slot is held only by an attempt that was allowed.
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { createLogger } from '../../../gateway/core/log.js';
import { GatewayError } from '../../../gateway/core/errors.js';
import { decide, newAttempt, stillAllowed } from '../../../gateway/egress/decide.js';
import { parseAuthority } from '../../../gateway/egress/destination.js';
import { buildEgressRuntime } from '../../../gateway/egress/runtime.js';
import { createTunnelLimiter } from '../../../gateway/egress/tunnel.js';
import type { EgressConfig } from '../../../gateway/config/egress-schema.js';

const logger = createLogger('silent');

function runtime(config: Partial<EgressConfig>, answers: Record<string, string[]> = {}) {
  return buildEgressRuntime(
    { listener: { port: 0 }, allow: [], ...config },
    { logger, tunnels: createTunnelLimiter(), lookup: async (host) => (answers[host] ?? []).map((address) => ({ address, family: 4 })) },
  );
}

/** A socket that is not connected: remoteAddress is undefined, as for a caller the tests name by source alone. */
const input = (authority: string) => ({ socket: new Socket(), headers: {}, rawHeaders: [], target: () => ({ dest: parseAuthority(authority) }) });

describe('decide', () => {
  const grant = { allow: [{ name: 'public', identities: ['anonymous'], hosts: ['example.com', 'rebind.test'], ports: [443] }], limits: { maxTunnelsPerIdentity: 1 } };

  test('allowed: the checked address, and a slot until released', async () => {
    const rt = runtime(grant, { 'example.com': ['93.184.215.14'] });
    const attempt = newAttempt(rt, 'connect', new Socket());
    const d = await decide(rt, attempt, input('example.com:443'));
    assert.ok(d.allowed);
    assert.equal(d.address, '93.184.215.14');
    assert.equal(attempt.decision?.rule, 'public');
    const second = await decide(rt, newAttempt(rt, 'connect', new Socket()), input('example.com:443'));
    assert.ok(!second.allowed);
    assert.equal(second.error.reason, 'too_many_tunnels');
    d.release();
    assert.ok((await decide(rt, newAttempt(rt, 'connect', new Socket()), input('example.com:443'))).allowed);
  });

  test('a malformed target is refused before the allowlist, with the identity already known', async () => {
    const rt = runtime(grant);
    const attempt = newAttempt(rt, 'http', new Socket());
    const d = await decide(rt, attempt, { ...input('x:1'), target: () => { throw new GatewayError('GW_REQUEST_MALFORMED', 'host_mismatch'); } });
    assert.ok(!d.allowed);
    assert.equal(d.error.reason, 'host_mismatch');
    assert.equal(attempt.identity.kind, 'anonymous');
    assert.equal(attempt.decision, undefined);
  });

  test('a destination no rule grants: 407 for anonymous callers, no DNS, no slot', async () => {
    let lookups = 0;
    const rt = buildEgressRuntime(
      { listener: { port: 0 }, ...grant },
      { logger, tunnels: createTunnelLimiter(), lookup: async () => (lookups++, []) },
    );
    const d = await decide(rt, newAttempt(rt, 'connect', new Socket()), input('other.example:443'));
    assert.ok(!d.allowed);
    assert.equal(d.error.code, 'GW_EGRESS_NO_IDENTITY');
    assert.equal(lookups, 0);
  });

  test('a blocked answer refuses, names the address, and gives the slot back', async () => {
    const rt = runtime(grant, { 'rebind.test': ['10.0.0.1'], 'example.com': ['93.184.215.14'] });
    const attempt = newAttempt(rt, 'connect', new Socket());
    const d = await decide(rt, attempt, input('rebind.test:443'));
    assert.ok(!d.allowed);
    assert.equal(d.error.reason, 'private');
    assert.equal(attempt.address, '10.0.0.1');
    assert.ok((await decide(rt, newAttempt(rt, 'connect', new Socket()), input('example.com:443'))).allowed, 'the slot was released');
  });

  test('stillAllowed: a later runtime that revokes the rule or blocks the address', async () => {
    const rt = runtime(grant, { 'example.com': ['93.184.215.14'] });
    const attempt = newAttempt(rt, 'connect', new Socket());
    assert.ok((await decide(rt, attempt, input('example.com:443'))).allowed);
    assert.equal(stillAllowed(runtime(grant), attempt), true);
    assert.equal(stillAllowed(runtime({ allow: [] }), attempt), false);
    assert.equal(stillAllowed(runtime({ ...grant, addressGuard: { denyAddresses: ['93.184.215.14'] } }), attempt), false);
  });
});
