import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEndHeaders } from '../../../gateway/egress/forward-http.js';

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
