// A route's header match on `host` reads HTTP/2's `:authority`, as policies do, so an h2 request that names the
// host in its authority (and sends no Host) is matched like the same request over HTTP/1.1.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileRequestMatch } from '../../../../gateway/ingress/stages/route-traffic.js';

const byHost = compileRequestMatch({ path: { prefix: '/' }, headers: [{ name: 'Host', value: 'admin.example.com' }] })!;

test('HTTP/1.1 Host and HTTP/2 :authority are both the host', () => {
  assert.equal(byHost(['Host', 'admin.example.com'], ''), true);
  assert.equal(byHost([':method', 'GET', ':authority', 'admin.example.com', ':path', '/'], ''), true);
  assert.equal(byHost([':authority', 'www.example.com'], ''), false);
  assert.equal(byHost([':authority', 'admin.example.com', 'host', 'www.example.com'], ''), true, ':authority wins, as upstream');
  assert.equal(byHost(['Host', 'admin.example.com', 'Host', 'admin.example.com'], ''), false, 'a repeated Host matches nothing');
});
