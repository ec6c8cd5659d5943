// A `request.headers[host]` condition over HTTP/2: Node's HTTP/2 request carries the host as `:authority` and
// usually no `host` line, so a policy that read only `host` saw nothing there. A DENY on the host was then bypassed
// by switching to h2, and an ALLOW with `notValues` turned into an allow. The same request is sent over HTTP/1.1
// and over HTTP/2 (the authority as `:authority`, as `host`, and as both) to a real gateway: each must be refused.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { sendRawH2Request } from '../../helpers/h2-frames.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';

interface H2Reply {
  status: number;
  body: { code?: string; reason?: string };
}

describe('request.headers[host] conditions over HTTP/1.1 and HTTP/2', () => {
  let ing: TestIngress;

  before(async () => {
    ing = await startTestIngress((config) => {
      config.routes.unshift(
        { name: 'denied-host', match: { path: { prefix: '/deny' } }, upstream: 'echo' },
        { name: 'allowed-unless-host', match: { path: { prefix: '/unless' } }, upstream: 'echo' },
      );
      config.policies.push(
        { name: 'no-api-host', action: 'DENY', routes: ['denied-host'], rules: [{ when: [{ key: 'request.headers[host]', values: ['api.test'] }] }] },
        { name: 'open', action: 'ALLOW', routes: ['denied-host'], rules: [{}] },
        { name: 'not-api-host', action: 'ALLOW', routes: ['allowed-unless-host'], rules: [{ when: [{ key: 'request.headers[host]', notValues: ['api.test'] }] }] },
      );
    });
  });
  after(() => ing.close());

  /** One HTTP/2 request on its own connection; `headers` are sent as given (`:authority` and/or `host`). */
  async function h2(path: string, headers: http2.OutgoingHttpHeaders): Promise<H2Reply> {
    const session = http2.connect(`https://127.0.0.1:${ing.port}`, { ca: ing.caPem, servername: 'api.test' });
    try {
      return await new Promise<H2Reply>((resolve, reject) => {
        const stream = session.request({ ':method': 'GET', ':path': path, ...headers });
        let status = 0;
        let text = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
        stream.on('end', () => resolve({ status, body: text.startsWith('{') ? (JSON.parse(text) as H2Reply['body']) : {} }));
        stream.on('error', reject);
      });
    } finally {
      session.close();
    }
  }

  const h1 = (path: string, host: string) => request(ing.port, ing.caPem, { path, servername: 'api.test', headers: { host } });

  test('the other host passes both policies on both protocols (the conditions are not vacuous)', async () => {
    assert.equal((await h1('/deny/x', 'localhost')).status, 200);
    assert.equal((await h1('/unless/x', 'localhost')).status, 200);
    assert.equal((await h2('/deny/x', { ':authority': 'localhost' })).status, 200);
    assert.equal((await h2('/unless/x', { ':authority': 'localhost' })).status, 200);
  });

  test('a DENY on request.headers[host] refuses the host over HTTP/1.1 and over HTTP/2', async () => {
    const one = await h1('/deny/x', 'api.test');
    assert.deepEqual([one.status, one.json().code], [403, 'GW_AUTHZ_DENIED']);
    for (const headers of [{ ':authority': 'api.test' }, { host: 'api.test' }, { ':authority': 'api.test', host: 'api.test' }]) {
      const two = await h2('/deny/x', headers);
      assert.deepEqual([two.status, two.body.code], [403, 'GW_AUTHZ_DENIED'], JSON.stringify(headers));
    }
    // A port in the authority is part of the header's value on both protocols alike (`hosts` compares the name
    // without it): the two readings never differ.
    const withPort = `api.test:${ing.port}`;
    assert.equal((await h2('/deny/x', { ':authority': withPort })).status, (await h1('/deny/x', withPort)).status);
  });

  test('an ALLOW with notValues on request.headers[host] does not turn into an allow over HTTP/2', async () => {
    const one = await h1('/unless/x', 'api.test');
    assert.deepEqual([one.status, one.json().reason], [403, 'no_allow_policy_matched']);
    for (const headers of [{ ':authority': 'api.test' }, { host: 'api.test' }, { ':authority': 'api.test', host: 'api.test' }]) {
      const two = await h2('/unless/x', headers);
      assert.deepEqual([two.status, two.body.code], [403, 'GW_AUTHZ_DENIED'], JSON.stringify(headers));
    }
  });

  test('an HTTP/2 request whose host and :authority differ never reaches a policy (400 host_authority_mismatch)', async () => {
    for (const headers of [{ ':authority': 'localhost', host: 'api.test' }, { ':authority': 'api.test', host: 'localhost' }]) {
      const two = await h2('/unless/x', headers);
      assert.deepEqual([two.status, two.body.reason], [400, 'host_authority_mismatch'], JSON.stringify(headers));
    }
  });

  test('an HTTP/2 request repeating host is reset before the pipeline, so no policy reads two hosts', async () => {
    // nghttp2 holds `host` to one field like a pseudo-header (host-sni.ts refuses a repeated Host only for HTTP/1).
    const fields = (hosts: string[]): [string, string][] => [[':method', 'GET'], [':scheme', 'https'], [':path', '/deny/x'], ...hosts.map((h): [string, string] => ['host', h])];
    const single = await sendRawH2Request(ing.port, ing.caPem, fields(['localhost']));
    assert.match(single.body, /"path": "\/deny\/x"/, 'one host line reaches the upstream');
    for (const hosts of [['localhost', 'api.test'], ['api.test', 'localhost']]) {
      const answer = await sendRawH2Request(ing.port, ing.caPem, fields(hosts));
      assert.deepEqual([answer.rstCode, answer.responded], [http2.constants.NGHTTP2_PROTOCOL_ERROR, false], hosts.join(', '));
    }
  });
});
