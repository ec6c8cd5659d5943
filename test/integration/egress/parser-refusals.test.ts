// Requests Node's HTTP parser refuses before they become an attempt (issue #12): they are answered in the gateway's
// error format and still get their audit record (which also goes to the process log), so no refusal is missing.
// A `#` passes llhttp and is refused by the proxy's own target parser: audited as an `http` attempt. (A `\` passes
// both: the egress proxy has no path policy, so it is forwarded as written.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, localGrant, rawRequest, startHttpUpstream, startProxy, tempDir, type Proxy, type TempDir, type Upstream } from './harness.js';

describe('requests the HTTP parser refuses', () => {
  let dir: TempDir;
  let up: Upstream;
  let proxy: Proxy;

  before(async () => {
    dir = tempDir();
    up = await startHttpUpstream();
    proxy = await startProxy(dir, { ...localGrant('up.test', up.port), listener: { maxHeaderBytes: 1024, headersTimeoutMs: 500 } });
  });
  after(async () => {
    await proxy.close();
    await up.close();
    dir.remove();
  });

  const cases: [string, string, string, string][] = [
    ['raw UTF-8 in the target', 'GET http://up.test/caf\u00e9 HTTP/1.1\r\nHost: up.test\r\n\r\n', 'GW_REQUEST_MALFORMED', 'unparsed'],
    ['NUL in the target', 'GET http://up.test/a\0b HTTP/1.1\r\nHost: up.test\r\n\r\n', 'GW_REQUEST_MALFORMED', 'unparsed'],
    ['a head over maxHeaderBytes', `GET http://up.test/ HTTP/1.1\r\nHost: up.test\r\nX-Big: ${'a'.repeat(2048)}\r\n\r\n`, 'GW_HEADERS_TOO_LARGE', 'unparsed'],
    ['# in the target', 'GET http://up.test/a#b HTTP/1.1\r\nHost: up.test\r\n\r\n', 'GW_REQUEST_MALFORMED', 'http'],
  ];
  for (const [name, request, code, proxyType] of cases) {
    test(`${name}: answered ${code} and audited`, async () => {
      const before = proxy.records().length;
      const r = await rawRequest(proxy.port, request);
      assert.equal(r.headers['x-portcullis-code'], code);
      const { requestId } = JSON.parse(r.body) as { requestId: string };
      await eventually(() => proxy.records().length > before);
      const record = proxy.records().find((rec) => rec.requestId === requestId);
      assert.equal(record?.proxyType, proxyType);
      assert.equal(record?.allow, false);
      assert.equal(record?.code, code);
      assert.match(String(record?.reason), /^[a-z_]+$/, 'the reason is the parser code in snake case');
      assert.equal(record?.remote, '127.0.0.1');
    });
  }
  test('a head not complete within headersTimeoutMs: 408 at the deadline, audited', async () => {
    const started = Date.now();
    const r = await rawRequest(proxy.port, 'GET http://up.test/ HTTP/1.1\r\nHost: up.test\r\n');
    assert.equal(r.status, 408);
    assert.ok(Date.now() - started < 2_000, `answered after ${Date.now() - started} ms`);
    const { requestId } = JSON.parse(r.body) as { requestId: string };
    await eventually(() => proxy.records().some((rec) => rec.requestId === requestId));
    assert.equal(proxy.records().find((rec) => rec.requestId === requestId)?.reason, 'headers_timeout');
  });

  test('nothing reached the upstream', () => assert.equal(up.connections, 0));
});
