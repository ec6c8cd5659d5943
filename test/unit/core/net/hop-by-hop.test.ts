import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEndHeaders, hopByHop } from '../../../../gateway/core/net/hop-by-hop.js';

test('endToEndHeaders drops hop-by-hop fields, Connection-listed fields and Proxy-Authorization', () => {
  const out = endToEndHeaders({
    host: 'a.test',
    connection: 'keep-alive, X-Secret ,upgrade',
    'keep-alive': 'timeout=5',
    'proxy-authorization': 'Bearer t',
    'proxy-connection': 'keep-alive',
    'transfer-encoding': 'chunked',
    te: 'trailers',
    upgrade: 'websocket',
    'x-secret': '1',
    'x-kept': '2',
    accept: 'text/plain',
  });
  assert.deepEqual(out, { host: 'a.test', 'x-kept': '2', accept: 'text/plain' });
});

test('hopByHop: the fixed list always, plus what this message lists in Connection, case-insensitively', () => {
  const plain = hopByHop(undefined);
  assert.equal(plain('transfer-encoding'), true);
  assert.equal(plain('x-secret'), false);
  const listed = hopByHop(['close, X-Secret', 'x-other']);
  assert.deepEqual(['x-secret', 'x-other', 'upgrade', 'x-kept'].map(listed), [true, true, true, false]);
});
