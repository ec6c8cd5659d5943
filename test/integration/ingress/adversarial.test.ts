// Attacks that broke other gateways, sent on raw TLS sockets so nothing client-side tidies them up.
// For each, the upstream's hit counter proves that nothing reached it.
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { testPki } from '../../helpers/pki.js';

/** Sends raw bytes over TLS and returns everything the gateway answered before closing (or 1 s). */
function raw(port: number, ca: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] }, () => {
      socket.write(payload);
    });
    let data = '';
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    const done = () => resolve(data);
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', (err) => (data ? done() : reject(err)));
    setTimeout(() => {
      socket.destroy();
      done();
    }, 1000).unref();
  });
}

describe('adversarial requests', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.policies.push({ name: 'no-admin-path', action: 'DENY', routes: ['public'], rules: [{ to: [{ operation: { paths: ['/public/secret*'] } }] }] });
    });
  });
  after(() => ing.close());

  describe('request smuggling (CVE-2022-32215, CVE-2021-40346, CVE-2023-25725 classes)', () => {
    const cases: [string, string][] = [
      ['Content-Length and Transfer-Encoding', 'POST /public/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /public/secret HTTP/1.1\r\nHost: localhost\r\n\r\n'],
      ['duplicate Content-Length', 'POST /public/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /public/secret HTTP/1.1\r\nHost: localhost\r\n\r\n'],
      ['obfuscated Transfer-Encoding', 'POST /public/a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
      ['space before colon', 'POST /public/a HTTP/1.1\r\nHost: localhost\r\nContent-Length : 5\r\n\r\nhello'],
      ['empty header name', 'GET /public/a HTTP/1.1\r\nHost: localhost\r\n: x\r\n\r\n'],
      ['bare LF line endings', 'GET /public/a HTTP/1.1\nHost: localhost\nContent-Length: 0\n\n'],
      ['absolute-form target', 'GET http://localhost/public/secret HTTP/1.1\r\nHost: localhost\r\n\r\n'],
      ['fragment in target', 'GET /public/a#/../secret HTTP/1.1\r\nHost: localhost\r\n\r\n'],
      ['two Host headers', 'GET /public/a HTTP/1.1\r\nHost: localhost\r\nHost: secure.test\r\n\r\n'],
    ];
    for (const [name, payload] of cases) {
      test(name, async () => {
        const before = ing.upstream.hits;
        const answer = await raw(ing.port, ing.caPem, payload);
        assert.match(answer.split('\r\n')[0] ?? '', /^HTTP\/1\.1 4\d\d|^$/, answer.slice(0, 200));
        assert.equal(ing.upstream.hits, before, 'nothing reached the upstream');
      });
    }
  });

  describe('path spellings cannot reach a denied path (CVE-2021-31920, CVE-2021-29492)', () => {
    const spellings = [
      '/public//secret', '/public/./secret', '/public/x/../secret', '/public/%2e%2e/public/secret', '/public/%2e/secret',
      '/public/%2Fsecret', '/public%2fsecret', '/public/%5Csecret', '/public\\secret', '/public/secret%00', '/public/s%65cret',
      '/public/..;/public/secret', '/public/secret?x', '/public/secret/', '/public/SECRET', '/public/Secret/x',
      '/public/secret;x', '/public/secret.', '/public/secret%20', '/public/%2573ecret', '/public/%ef%bd%93ecret',
    ];
    for (const spelling of spellings) {
      test(spelling, async () => {
        const before = ing.upstream.hits;
        const answer = await raw(ing.port, ing.caPem, `GET ${spelling} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
        assert.ok(status === 400 || status === 403, `${spelling} → ${status}`);
        assert.equal(ing.upstream.hits, before);
      });
    }
    test('case is matched, never rewritten: /public/Hello is forwarded as such', async () => {
      const res = await request(ing.port, ing.caPem, { path: '/public/Hello' });
      assert.equal(res.json().path, '/public/Hello');
    });
  });

  test('oversized headers get 431 and never reach the upstream', async () => {
    const before = ing.upstream.hits;
    const answer = await raw(ing.port, ing.caPem, `GET /public/a HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 431/);
    assert.equal(ing.upstream.hits, before);
  });

  test('a 64 KB token is refused without reaching the JWKS or the upstream', async () => {
    const hits = ing.jwks.hits;
    const res = await request(ing.port, ing.caPem, { path: '/public/a', headers: { authorization: `Bearer ${'a'.repeat(9000)}.b.c` } });
    assert.equal(res.status, 401);
    assert.equal(ing.jwks.hits, hits);
  });

  test('chunked body over the route limit is cut with 413', async () => {
    const chunk = 'x'.repeat(65536);
    let body = '';
    for (let i = 0; i < 20; i++) body += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    const answer = await raw(ing.port, ing.caPem, `POST /public/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n${body}0\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 413/);
  });
});

describe('upstream identity', () => {
  const pki = testPki();
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config, { writeFile }) => {
      writeFile('other-ca.pem', pki.otherCa.certPem);
      config.upstreams.push({ name: 'impostor', url: config.upstreams[0].url, tls: { spiffeId: `spiffe://${pki.trustDomain}/ns/payments/sa/api` } });
      config.upstreams.push({ name: 'foreign-ca', url: config.upstreams[0].url, tls: { ca: 'other-ca.pem' } });
      config.routes.unshift(
        { name: 'impostor', match: { path: { prefix: '/public/impostor' } }, upstream: 'impostor' },
        { name: 'foreign', match: { path: { prefix: '/public/foreign' } }, upstream: 'foreign-ca' },
      );
      config.policies.push({ name: 'all', action: 'ALLOW', routes: ['impostor', 'foreign'], rules: [{}] });
    });
  });
  after(() => ing.close());

  test('a backend presenting the wrong SPIFFE ID is refused with 502', async () => {
    const res = await request(ing.port, ing.caPem, { path: '/public/impostor' });
    assert.equal(res.status, 502);
    assert.equal(res.json().code, 'GW_UPSTREAM_IDENTITY');
    assert.equal(ing.upstream.hits, 0);
  });

  test('a backend whose chain does not verify against the configured CA is refused with 502', async () => {
    const res = await request(ing.port, ing.caPem, { path: '/public/foreign' });
    assert.equal(res.status, 502);
    assert.equal(res.json().code, 'GW_UPSTREAM_IDENTITY');
  });
});

describe('duplicate credentials', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress();
  });
  after(() => ing.close());

  test('two Authorization headers are refused, not first-wins', async () => {
    const token = await ing.jwks.sign();
    const answer = await raw(
      ing.port,
      ing.caPem,
      `GET /api/a HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${token}x\r\nConnection: close\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 401/);
    assert.match(answer, /GW_AUTHN_MULTIPLE_TOKENS/);
    assert.equal(ing.upstream.hits, 0);
  });
});

describe('slow clients', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.listeners[0].timeouts = { headersMs: 1000, handshakeMs: 1000 };
    });
  });
  after(() => ing.close());

  test('headers trickled byte by byte (slowloris) get 408 once the deadline passes', async () => {
    const started = Date.now();
    const answer = await new Promise<string>((resolve) => {
      let data = '';
      const socket = tls.connect({ host: '127.0.0.1', port: ing.port, servername: 'localhost', ca: ing.caPem, ALPNProtocols: ['http/1.1'] }, () => {
        socket.write('GET /public/x HTTP/1.1\r\nHost: localhost\r\n');
        const drip = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 200);
        socket.on('close', () => {
          clearInterval(drip);
          resolve(data);
        });
      });
      socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
      socket.on('error', () => {});
    });
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.ok(Date.now() - started < 3000);
    assert.equal(ing.upstream.hits, 0);
  });

  test('a client that never sends its ClientHello is dropped after the handshake timeout', async () => {
    const net = await import('node:net');
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const socket = net.connect(ing.port, '127.0.0.1');
      socket.on('close', () => resolve());
      socket.on('error', () => {});
    });
    assert.ok(Date.now() - started < 3000);
  });
});

describe('header count', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.listeners[0].limits = { maxHeaders: 20 };
    });
  });
  after(() => ing.close());

  test('more header fields than the listener allows get 431', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 25; i++) headers[`x-h${i}`] = 'v';
    const res = await request(ing.port, ing.caPem, { headers });
    assert.equal(res.status, 431);
    assert.equal(ing.upstream.hits, 0);
    const fine = await request(ing.port, ing.caPem, { headers: { 'x-one': '1' } });
    assert.equal(fine.status, 200);
  });
});
