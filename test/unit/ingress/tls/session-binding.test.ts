// Each host's resumption keys: the same inputs give the same keys (resumption survives reloads and spans workers),
// any change to the host or its client check gives others (sessions judged under the old check are not resumed).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { sessionBinding } from '../../../../gateway/ingress/tls/terminate.js';

const processKeys = randomBytes(48);
const base = { host: 'api', clientAuth: 'required' as const, clientCaPem: 'CA one', ticketKeys: processKeys };

test('stable for one host and client check, and never the process keys themselves', () => {
  const a = sessionBinding(base);
  assert.deepEqual(sessionBinding({ ...base, ticketKeys: Buffer.from(processKeys) }), a);
  assert.equal(a.ticketKeys.length, 48);
  assert.notDeepEqual(a.ticketKeys, processKeys);
  assert.ok(a.sessionIdContext.length <= 32);
});

test('another host, client mode, client CA, SPIFFE verifier or process keys each give other keys and context', () => {
  const a = sessionBinding(base);
  const variants = [
    { ...base, host: 'partner' },
    { ...base, clientAuth: 'optional' as const },
    { ...base, clientCaPem: 'CA two' },
    { ...base, verifyPeer: (() => undefined) as never },
    { ...base, ticketKeys: randomBytes(48) },
  ];
  for (const variant of variants) {
    const b = sessionBinding(variant);
    assert.notDeepEqual(b.ticketKeys, a.ticketKeys);
    if (variant.ticketKeys === processKeys) assert.notEqual(b.sessionIdContext, a.sessionIdContext);
  }
});
