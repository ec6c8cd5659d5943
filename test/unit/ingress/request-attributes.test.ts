// What `request.headers[...]` reads: the raw header lines, each value separately, and for `host` the request's
// authority whatever the protocol (HTTP/2 sends it as `:authority`, usually without a Host line).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestAttributes } from '../../../gateway/ingress/pipeline.js';

const FIELDS = { host: 'api.test', method: 'GET', path: '/', port: 443, sni: 'api.test', sourceIp: '127.0.0.1', remoteIp: '127.0.0.1' };
const attributes = (rawHeaders: string[]) => requestAttributes({ rawHeaders }, FIELDS);

// [case, raw header lines as Node gives them, what header('host') yields]
const TABLE: [string, string[], readonly string[] | undefined][] = [
  ['HTTP/1.1 Host', ['Host', 'api.test', 'Accept', '*/*'], ['api.test']],
  ['HTTP/2 :authority only', [':method', 'GET', ':authority', 'api.test', ':scheme', 'https', ':path', '/'], ['api.test']],
  ['HTTP/2 host only', [':method', 'GET', ':scheme', 'https', ':path', '/', 'host', 'api.test'], ['api.test']],
  ['HTTP/2 both (checkHost has made them agree)', [':authority', 'api.test', 'host', 'api.test'], ['api.test']],
  ['neither', ['accept', '*/*'], undefined],
];

for (const [name, raw, host] of TABLE) {
  test(`header('host'): ${name}`, () => {
    assert.deepEqual(attributes(raw).header('host'), host);
  });
}

test('other names are read as sent, each value of a repeated header separately', () => {
  const attrs = attributes([':authority', 'api.test', 'X-Role', 'user', 'x-role', 'admin']);
  assert.deepEqual(attrs.header('x-role'), ['user', 'admin']);
  assert.equal(attrs.header('authority'), undefined);
});
