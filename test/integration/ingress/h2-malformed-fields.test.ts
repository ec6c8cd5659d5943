// Malformed HTTP/2 header fields (RFC 9113 §8.2.1), sent as raw frames with a hand-written HPACK block since
// node:http2 refuses to send them. What is pinned here:
// - refused streams: an upper-case name and connection-specific fields (RFC 9113 §8.2.2) get RST_STREAM
//   PROTOCOL_ERROR from nghttp2 and never reach the upstream;
// - the other shapes (CR, LF or NUL in a value; CR LF, colon, space or NUL in a name) are dropped by nghttp2, because
//   Node installs an on_invalid_header callback that ignores them (node_http2.cc Http2Session::OnInvalidHeader);
//   JavaScript never sees them, so the gateway cannot refuse the stream yet (docs/configuration.md, "HTTP/2 header
//   fields"). What must hold meanwhile: nothing of such a field reaches the upstream, so the gateway and the
//   backend agree on the request and no header can be injected.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hpackIndexed, hpackIndexedLiteral, hpackLiteral, sendRawH2Request } from '../../helpers/h2-frames.js';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';

const PROTOCOL_ERROR = 1;
const request = (extra: [string, string]): [string, string][] => [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/public/a'],
  [':authority', 'localhost'],
  extra,
];

describe('malformed HTTP/2 header fields', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress();
  });
  after(() => ing.close());

  test('the raw-frame client works: a well-formed field reaches the upstream', async () => {
    const hits = ing.upstream.hits;
    const answer = await sendRawH2Request(ing.port, ing.caPem, request(['x-probe', 'fine']));
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body).headers['x-probe'], 'fine');
    assert.equal(ing.upstream.hits, hits + 1);
    // Read from the HTTP/2 session, not through the per-stream socket Proxy (access-fields.ts).
    const line = ing.logs.findLast((l) => l.event === 'REQUEST')!;
    assert.deepEqual([line.proto, line.remote, line.tls], ['2.0', '127.0.0.1', { sni: 'localhost', version: 'TLSv1.3', cipher: (line.tls as { cipher: string }).cipher }]);
    assert.match((line.tls as { cipher: string }).cipher, /^TLS_/);
  });

  for (const [name, field] of [
    ['an upper-case name', ['X-Probe', 'v']],
    ['Connection', ['connection', 'close']],
    ['TE other than trailers', ['te', 'gzip']],
  ] as const) {
    test(`${name}: the stream is reset with PROTOCOL_ERROR and nothing is forwarded`, async () => {
      const hits = ing.upstream.hits;
      const answer = await sendRawH2Request(ing.port, ing.caPem, request([...field]));
      assert.equal(answer.rstCode, PROTOCOL_ERROR);
      assert.equal(answer.responded, false);
      assert.equal(ing.upstream.hits, hits);
    });
  }

  for (const [name, field] of [
    ['CR in a value', ['x-probe', 'a\rb']],
    ['LF in a value', ['x-probe', 'a\nb']],
    ['CR LF and a second field in a value', ['x-probe', 'a\r\nx-injected: 1']],
    ['NUL in a value', ['x-probe', 'a\x00b']],
    ['CR LF in a name', ['x-probe\r\nx-injected', '1']],
    ['a colon in a name', ['x-probe:x-injected', '1']],
    ['a space in a name', ['x-probe x-injected', '1']],
    ['NUL in a name', ['x-probe\x00', '1']],
  ] as const) {
    test(`${name}: no trace of the field reaches the upstream`, async () => {
      const answer = await sendRawH2Request(ing.port, ing.caPem, request([...field]));
      if (answer.rstCode !== undefined) return assert.equal(answer.rstCode, PROTOCOL_ERROR);
      const seen = JSON.parse(answer.body).headers as Record<string, unknown>;
      const names = Object.keys(seen).join(' ');
      assert.doesNotMatch(names, /probe|injected/, names);
      assert.doesNotMatch(JSON.stringify(Object.values(seen)), /injected|a\\[rn0]|a\\u0000/);
    });
  }

  // HTTP/1.1's parser refuses a method it does not know, but nghttp2 passes any token as `:method`: `delete` would slip
  // past a DENY on DELETE and reach a backend that upper-cases methods (methods are case-sensitive, RFC 9110 §9.1).
  for (const method of ['delete', 'Get', 'get']) {
    test(`a :method outside upper case (${method}) is refused 400 before the upstream`, async () => {
      const hits = ing.upstream.hits;
      const answer = await sendRawH2Request(ing.port, ing.caPem, [[':method', method], ...request(['x-probe', 'v']).slice(1)]);
      assert.equal(answer.status, 400);
      assert.deepEqual([JSON.parse(answer.body).code, JSON.parse(answer.body).reason], ['GW_REQUEST_MALFORMED', 'method']);
      assert.equal(ing.upstream.hits, hits);
    });
  }

  // HPACK's dynamic table lets one field be repeated for one octet each: Envoy's cookie amplification
  // (CVE-2026-47774) forwarded what a few KB had decoded to. Node advertises maxHeaderBytes (16 KiB) to the client
  // but does not hold it to it; the pipeline counts the decoded list (RFC 9113 §6.5.2) before anything is forwarded.
  const amplified = (crumbs: number, valueBytes: number) =>
    Buffer.concat([
      hpackLiteral([[':method', 'GET'], [':scheme', 'https'], [':path', '/public/a'], [':authority', 'localhost']]),
      hpackIndexedLiteral('cookie', `c=${'x'.repeat(valueBytes)}`),
      ...Array.from({ length: crumbs - 1 }, () => hpackIndexed(62)),
    ]);

  test('a cookie that HPACK decodes from 4 KB to 200 KB is refused with 431 before the upstream', async () => {
    const hits = ing.upstream.hits;
    const block = amplified(50, 4000);
    const answer = await sendRawH2Request(ing.port, ing.caPem, block);
    assert.ok(block.length < 4_200, `${block.length} bytes on the wire`);
    assert.equal(answer.responded, true);
    assert.equal(ing.upstream.hits, hits, 'nothing was forwarded');
    const line = ing.logs.findLast((l) => l.event === 'REQUEST')!;
    assert.deepEqual([line.status, line.code, line.reason, line.upstreamAddress], [431, 'GW_HEADERS_TOO_LARGE', 'header_list_too_large', undefined]);
  });

  test('a header list just under maxHeaderBytes after decoding is forwarded whole', async () => {
    const hits = ing.upstream.hits;
    // 12 crumbs of 1,000 bytes: ~12.5 KB decoded with the pseudo-headers and the 32 octets per field, under 16 KiB.
    const answer = await sendRawH2Request(ing.port, ing.caPem, amplified(12, 998));
    assert.equal(answer.status, 200);
    assert.equal(ing.upstream.hits, hits + 1);
    assert.equal(JSON.parse(answer.body).headers.cookie.length, 12 * 1000 + 11 * 2, 'the crumbs, joined with "; "');
  });
});
