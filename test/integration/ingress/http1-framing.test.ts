// RFC 9112 §6 (message body length) against llhttp's leniencies, one raw-socket test per rule. Each request is
// sent on a raw TLS socket so nothing client-side tidies it up; the upstream's hit counter shows what got through.
// Rules marked "ours" are enforced by gateway/ingress/stages/http1-framing.ts; the others by llhttp in strict
// mode (`insecureHTTPParser` off), pinned here so a Node upgrade or a lenient flag cannot reopen them silently.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { startTestIngress, type TestIngress } from '../../helpers/ingress.js';

/** Sends raw bytes over TLS; resolves with everything answered until the gateway closes (or 1.5 s pass). */
function raw(port: number, ca: string, payload: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] }, () => socket.write(payload));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('close', () => resolve({ text, closed: true }));
    socket.on('error', (err) => (text ? undefined : reject(err)));
    setTimeout(() => {
      resolve({ text, closed: false });
      socket.destroy();
    }, 1500).unref();
  });
}

const statuses = (text: string) => [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
const H = 'Host: localhost\r\n';

describe('HTTP/1 message framing (RFC 9112 §6)', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress();
  });
  after(() => ing.close());

  async function refused(payload: string, status: number, reason?: string | RegExp): Promise<void> {
    const hits = ing.upstream.hits;
    const { text, closed } = await raw(ing.port, ing.caPem, payload);
    assert.deepEqual(statuses(text), [status], text.slice(0, 300));
    if (reason) assert.match(text, new RegExp(`"reason":"(?:${typeof reason === 'string' ? reason : reason.source})"`));
    assert.ok(closed, 'the connection is closed');
    assert.equal(ing.upstream.hits, hits, 'nothing reached the upstream');
  }

  async function accepted(payload: string, body: string): Promise<void> {
    const hits = ing.upstream.hits;
    const { text } = await raw(ing.port, ing.caPem, payload);
    assert.deepEqual(statuses(text), [200], text.slice(0, 300));
    assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, '')).body, body);
    assert.equal(ing.upstream.hits, hits + 1);
  }

  test('the HTTP/1.1 parser is strict whatever the process flags say (insecureHTTPParser pinned off)', () => {
    for (const server of ing.gateway.runtime().terminatingServers) {
      assert.equal((server as unknown as { insecureHTTPParser: unknown }).insecureHTTPParser, false);
    }
  });

  test('ours §6.1: HTTP/1.0 with Transfer-Encoding is 400 and closed; the smuggled second request never reaches the upstream', async () => {
    const smuggle =
      `POST /public/a HTTP/1.0\r\n${H}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` +
      `GET /public/smuggled HTTP/1.1\r\n${H}\r\n`;
    await refused(smuggle, 400, 'http10_transfer_encoding');
    assert.ok(!ing.logs.some((l) => l.path === '/public/smuggled' && l.status === 200));
  });

  test('ours §6.1: a transfer coding other than chunked (gzip, chunked) is 501, never forwarded without its coding', async () => {
    await refused(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, 501, 'transfer_coding');
  });

  test('ours §6.3: TE not ending in chunked (TE: gzip) is refused before the request is forwarded', async () => {
    await refused(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`, 400);
  });

  test('ours: an empty Transfer-Encoding is 400', async () => {
    // Node 24's llhttp refuses it itself (hpe_invalid_transfer_encoding); Node 20's lets it through to our stage.
    await refused(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: \r\n\r\n`, 400, /transfer_encoding_empty|hpe_invalid_transfer_encoding/);
  });

  test('§6.1: chunked not last (chunked, gzip) is 400', async () => {
    await refused(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, 400);
  });

  test('§6.1: chunked applied twice is 400', async () => {
    await refused(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, 400);
  });

  test('§6.1: a transfer coding with parameters (chunked;q=1) is 400', async () => {
    await refused(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked;q=1\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, 400);
  });

  test('§6.3: HTTP/1.0 with both Content-Length and Transfer-Encoding is 400', async () => {
    await refused(`POST /public/a HTTP/1.0\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400);
  });

  for (const [name, value] of [
    ['a leading +', '+3'],
    ['a minus sign', '-3'],
    ['a comma list, even of equal values', '3, 3'],
    ['two numbers separated by a space', '3 3'],
    ['hex', '0x3'],
  ]) {
    test(`§6.3: Content-Length with ${name} is 400`, async () => {
      await refused(`POST /public/a HTTP/1.1\r\n${H}Content-Length: ${value}\r\n\r\nabc`, 400);
    });
  }

  test('§6.3: Content-Length with surrounding whitespace (OWS) and leading zeros is valid', async () => {
    await accepted(`POST /public/a HTTP/1.1\r\n${H}Content-Length:   003  \r\n\r\nabc`, 'abc');
  });

  test('§7.1.1: a chunk extension is accepted and dropped by re-framing; coding names are case-insensitive', async () => {
    await accepted(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: CHUNKED\r\n\r\n3;name=value\r\nabc\r\n0\r\n\r\n`, 'abc');
  });

  test('§7.1.1: a quoted chunk extension with CR LF inside is 400', async () => {
    await refused(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;a="x\r\ny"\r\nabc\r\n0\r\n\r\n`, 400);
  });

  test('§7.1.1: a chunk extension ended by a bare LF is 400', async () => {
    await refused(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;a\nabc\r\n0\r\n\r\n`, 400);
  });

  for (const [name, size] of [
    ['a 0x prefix', '0x3'],
    ['trailing whitespace', '3 '],
    ['more digits than 64 bits hold', 'FFFFFFFFFFFFFFFFF3'],
  ]) {
    test(`§7.1: a chunk size with ${name} is 400`, async () => {
      await refused(`POST /public/a HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${size}\r\nabc\r\n0\r\n\r\n`, 400);
    });
  }

  test('§5.2: obs-fold (a field line continued by a space or tab) is 400', async () => {
    await refused(`GET /public/a HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`, 400);
    await refused(`GET /public/a HTTP/1.1\r\n${H}X-A: one\r\n\ttwo\r\n\r\n`, 400);
  });

  test('§5.1: a tab before the colon is 400 (a space is pinned in adversarial.test.ts)', async () => {
    await refused(`GET /public/a HTTP/1.1\r\n${H}X-A\t: one\r\n\r\n`, 400);
  });

  test('§2.2: whitespace before the first field line is 400', async () => {
    await refused(`GET /public/a HTTP/1.1\r\n Host: localhost\r\n\r\n`, 400);
  });

  test('RFC 9110 §10.1.1: Expect: 100-continue is met by the gateway (100, then the answer) and not forwarded', async () => {
    const hits = ing.upstream.hits;
    const { text } = await raw(ing.port, ing.caPem, `POST /public/a HTTP/1.1\r\n${H}Content-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nabc`);
    assert.deepEqual(statuses(text), [100, 200], text.slice(0, 300));
    const final = text.slice(text.indexOf('HTTP/1.1 200'));
    const echoed = JSON.parse(final.slice(final.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ''));
    assert.equal(echoed.body, 'abc');
    assert.equal(echoed.headers.expect, undefined);
    assert.equal(ing.upstream.hits, hits + 1);
  });

  test('§2.2: a bare CR or a NUL in a field value is 400', async () => {
    await refused(`GET /public/a HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, 400);
    await refused(`GET /public/a HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, 400);
  });
});

describe('listener limits reach the HTTP/1.1 parser', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.listeners[0].limits = { maxHeaderBytes: 2048 };
    });
  });
  after(() => ing.close());

  test('limits.maxHeaderBytes below the process default is enforced on HTTP/1.1 (431), not only on HTTP/2', async () => {
    const hits = ing.upstream.hits;
    const { text } = await raw(ing.port, ing.caPem, `GET /public/a HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(4096)}\r\n\r\n`);
    assert.deepEqual(statuses(text), [431]);
    assert.equal(ing.upstream.hits, hits);
  });
});
