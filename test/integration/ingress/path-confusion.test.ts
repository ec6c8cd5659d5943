// Path confusion against the most lenient backend (issue #12): request-targets are written on a raw TLS
// socket, byte for byte, to a real gateway. Behind it, the echo upstream reports the target it received,
// and every reading a lenient backend could make of it (test/helpers/lenient-backend.ts: repeated decoding,
// `;` stripping, case folding, NFKC, `\` as `/`, trailing dot/space/tab trimming, overlong UTF-8, dot
// segments after each) is checked: none may land on a protected prefix.
//
// The config is the hard case: a DENY on /admin for everyone; /api/internal needs the `root` token while
// /api takes any token (the one every request here carries); and a catch-all public route that allows
// anyone, so a spelling no other route matches still reaches the backend.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { reachesPrefix } from '../../helpers/lenient-backend.js';
import { ISSUER, request, startTestIngress, type Customize, type TestIngress } from '../../helpers/ingress.js';

const PROTECTED = ['/admin', '/api/internal'];

const hardConfig: Customize = (config) => {
  config.routes = [
    { name: 'internal', match: { path: { prefix: '/api/internal' } }, upstream: 'echo' },
    { name: 'api', match: { path: { prefix: '/api' } }, upstream: 'echo' },
    { name: 'admin', match: { path: { prefix: '/admin' } }, upstream: 'echo' },
    { name: 'public', match: { path: { prefix: '/' } }, upstream: 'echo' },
  ];
  config.policies = [
    { name: 'admin-deny', action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }] },
    { name: 'internal', action: 'ALLOW', routes: ['internal'], rules: [{ from: [{ source: { requestPrincipals: [`${ISSUER}/root`] } }] }] },
    { name: 'api', action: 'ALLOW', routes: ['api'], rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] },
    { name: 'public', action: 'ALLOW', routes: ['public', 'admin'], rules: [{}] },
  ];
};

/** Spellings of one protected name: each is put in place of the name in the targets below. */
function nameSpellings(name: string): string[] {
  const [first, rest] = [name[0]!, name.slice(1)];
  const hex = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => '%' + b.toString(16).padStart(2, '0')).join('');
  const fullWidth = (s: string) => [...s].map((c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0)).join('');
  return [
    name.toUpperCase(), first.toUpperCase() + rest, name.replace(/i/, 'I'),
    `${name};`, `${name};x=1`, `${name};jsessionid=ABC`, `${name}%3b`, `${name}%3Bx`,
    `${name}.`, `${name}..`, `${name}%2e`, `${name}%2E%2e`, `${name}%20`, `${name}%20.`, `${name}.%20`, `${name}%09`, `${name}%0a`,
    `${name}%00`, `${name}%3f`, `${name}%23`, `${name}%2f`, `${name}%5c`, `${name}\\`,
    `%${first.charCodeAt(0).toString(16)}${rest}`, `%25${first.charCodeAt(0).toString(16)}${rest}`,
    `%2525${first.charCodeAt(0).toString(16)}${rest}`, hex(name), hex(name).replace(/%/g, '%25'),
    // Overlong two-byte form of the first letter, and of every letter.
    `%c1%${(0x80 | (first.charCodeAt(0) & 0x3f)).toString(16)}${rest}`,
    [...name].map((c) => `%c1%${(0x80 | (c.charCodeAt(0) & 0x3f)).toString(16)}`).join(''),
    hex(fullWidth(first)) + rest, hex(fullWidth(name)), hex(fullWidth(name.toUpperCase())),
    // Dotless ı upper-cases to I; ſ (long s) and K (Kelvin) fold to ASCII.
    name.replace('i', '%c4%b1'), name.replace(/n/, '%e2%81%bf'),
    // Raw non-ASCII bytes and raw whitespace: the HTTP parser or the normalizer refuses them.
    hex(fullWidth(first)).replace(/%([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))) + rest,
    `${name} `, `${name}\t`,
  ];
}

/** Ways around a protected path from elsewhere; `N` is the path of the protected name, without its leading slash. */
const DETOURS = [
  '/public/../N', '/public/..;/N', '/public/.;/../N', '/public/;x/../N', '/;/N', '/.;/N', '/;x=1/N', '//N', '/./N', '/%2e/N',
  '/public/%2e%2e/N', '/public/.%2e/N', '/public/%2e./N', '/public/%2e%2e%2fN', '/public/..%2fN', '/public/..%5cN',
  '/public\\..\\N', '/public/..\\N', '/public/%252e%252e/N', '/public/%25252e%25252e/N', '/public/%c0%ae%c0%ae/N',
  '/public/%e0%80%ae%e0%80%ae/N', '/public/%ef%bc%8e%ef%bc%8e/N', '/public/%ef%bc%8e%ef%bc%8e%ef%bc%8fN',
  '/public/..%00/N', '/public/..%20/N', '/public/..%09/N', '/public/. ./N', '/public/.../N', '/public/..../N',
  '/public#/../N', '/public%23/../N', '/public%3f/../N', '/public/x%2f..%2f..%2fN', '/public/x/..%252f..%252fN',
  '/N#', '/N?x=/public', '/public?/../N', '/public/x/../../N', '/public/../../N',
];

interface Answer {
  status: number;
  body: string;
}

/** Writes `GET <target>` byte for byte over TLS and reads the whole answer (the gateway closes after it). */
function send(port: number, ca: string, target: string, token: string): Promise<Answer> {
  const payload = `GET ${target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] }, () => {
      socket.write(Buffer.from(payload, 'latin1'));
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(parseResponse(Buffer.concat(chunks).toString('utf8'))));
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(target)}`)));
  });
}

function parseResponse(raw: string): Answer {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  let body = raw.slice(split + 4);
  if (/^transfer-encoding:\s*chunked/im.test(head)) {
    let out = '';
    for (let at = 0; ; ) {
      const eol = body.indexOf('\r\n', at);
      const size = parseInt(body.slice(at, eol), 16);
      if (!size) break;
      out += body.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
    body = out;
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), body };
}

function targets(): string[] {
  const all = new Set<string>();
  for (const protectedPath of ['admin', 'admin/users', 'api/internal', 'api/internal/keys']) {
    for (const detour of DETOURS) all.add(detour.replace('N', protectedPath));
    const last = protectedPath.includes('internal') ? 'internal' : 'admin';
    for (const spelling of nameSpellings(last)) all.add('/' + protectedPath.replace(last, spelling));
  }
  for (const spelling of nameSpellings('api')) all.add(`/${spelling}/internal`);
  return [...all];
}

test('the lenient backend sees through every trick on its own (the oracle is not vacuous)', () => {
  const tricks: [received: string, reading: string | undefined][] = [
    ['/ADMIN', '/admin'], ['/admin;x', '/admin'], ['/api;x/internal', '/api/internal'], ['/%2561dmin', '/admin'],
    ['/%252561dmin', '/admin'], ['/x/%c0%ae%c0%ae/admin', '/admin'], ['/%ef%bd%81dmin', '/admin'], ['/admin.', '/admin'],
    ['/admin%20', '/admin'], ['/admin%09', '/admin'], ['/ad%09min', '/admin'], ['/x\\..\\admin', '/admin'], ['/adm%c4%b1n', '/admin'],
    ['/admin%3Fx', '/admin'], ['/x/..%2f..%2fadmin', '/admin'], ['/api/INTERNAL', '/api/internal'],
    ['/public/hello', undefined], ['/administrator', undefined], ['/api/internalx', undefined], ['/public?/../admin', undefined],
  ];
  for (const [received, reading] of tricks) assert.equal(reachesPrefix(received, PROTECTED), reading, received);
  assert.equal(reachesPrefix('/%2561dmin', PROTECTED, { decodeRounds: 1 }), undefined);
});

describe('no request-target reaches a protected prefix in any lenient reading', () => {
  let ing: TestIngress;
  let token: string;
  before(async () => {
    ing = await startTestIngress(hardConfig);
    token = await ing.jwks.sign({ sub: 'alice' });
  });
  after(() => ing.close());

  test('the positive controls pass, so the table is not vacuous', async () => {
    for (const target of ['/public/hello', '/api/orders', '/', '/api/internalx', '/administrator', '/public/Hello?x=1']) {
      const answer = await send(ing.port, ing.caPem, target, token);
      assert.equal(answer.status, 200, `${target}: ${answer.body}`);
      assert.equal(JSON.parse(answer.body).path, target);
    }
    const root = await ing.jwks.sign({ sub: 'root' });
    assert.equal((await send(ing.port, ing.caPem, '/api/internal/keys', root)).status, 200);
    assert.equal((await send(ing.port, ing.caPem, '/api/internal/keys', token)).status, 403);
    assert.equal((await send(ing.port, ing.caPem, '/admin', root)).status, 403);
  });

  const all = targets();
  test(`${all.length} targets, each refused or forwarded as a path no reading maps onto ${PROTECTED.join(' or ')}`, async () => {
    assert.ok(all.length >= 150, String(all.length));
    const outcomes: Record<string, number> = {};
    for (const target of all) {
      const before = ing.upstream.hits;
      const answer = await send(ing.port, ing.caPem, target, token);
      const outcome = answer.status === 200 ? 'forwarded' : String(answer.status);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (answer.status !== 200) {
        assert.ok(answer.status >= 400 && answer.status < 500, `${JSON.stringify(target)} → ${answer.status}`);
        assert.equal(ing.upstream.hits, before, `${JSON.stringify(target)} was refused but reached the upstream`);
        continue;
      }
      const received = (JSON.parse(answer.body) as { path: string }).path;
      const reading = reachesPrefix(received, PROTECTED);
      assert.equal(reading, undefined, `${JSON.stringify(target)} was forwarded as ${received}, which a lenient backend reads as ${reading}`);
    }
    // Both outcomes occur: some spellings are safe to forward (e.g. a query after the path), most are refused.
    assert.ok(outcomes.forwarded! > 0 && outcomes['400']! > 0, JSON.stringify(outcomes));
  });
});

/** Sends `GET <target>` as an HTTP/2 stream; a stream the server resets counts as status 0. */
function sendH2(session: http2.ClientHttp2Session, target: string, token: string): Promise<Answer> {
  return new Promise((resolve) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ':path': target, ':method': 'GET', authorization: `Bearer ${token}` });
    } catch {
      resolve({ status: -1, body: '' }); // node:http2 itself refuses to send it
      return;
    }
    let status = 0;
    let body = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (c: Buffer) => (body += c.toString('utf8')));
    stream.on('close', () => resolve({ status, body }));
    stream.on('error', () => undefined);
    stream.end();
  });
}

describe('the same targets over HTTP/2 (:path as written)', () => {
  let ing: TestIngress;
  let token: string;
  let session: http2.ClientHttp2Session;
  before(async () => {
    ing = await startTestIngress(hardConfig);
    token = await ing.jwks.sign({ sub: 'alice' });
    session = http2.connect(`https://localhost:${ing.port}`, { ca: ing.caPem, servername: 'localhost', host: '127.0.0.1' } as http2.SecureClientSessionOptions);
  });
  after(async () => {
    session.close();
    await ing.close();
  });

  test('each is refused or forwarded as a path no lenient reading maps onto a protected prefix', async () => {
    const outcomes: Record<string, number> = {};
    for (const target of targets()) {
      if (session.destroyed) session = http2.connect(`https://localhost:${ing.port}`, { ca: ing.caPem, servername: 'localhost', host: '127.0.0.1' } as http2.SecureClientSessionOptions);
      const before = ing.upstream.hits;
      const answer = await sendH2(session, target, token);
      outcomes[answer.status] = (outcomes[answer.status] ?? 0) + 1;
      if (answer.status !== 200) {
        assert.ok(answer.status <= 0 || (answer.status >= 400 && answer.status < 500), `${JSON.stringify(target)} → ${answer.status}`);
        assert.equal(ing.upstream.hits, before, `${JSON.stringify(target)} was refused but reached the upstream`);
        continue;
      }
      const received = (JSON.parse(answer.body) as { path: string }).path;
      const reading = reachesPrefix(received, PROTECTED);
      assert.equal(reading, undefined, `${JSON.stringify(target)} was forwarded as ${received}, which a lenient backend reads as ${reading}`);
    }
    assert.ok(outcomes['400']! > 250, JSON.stringify(outcomes));
  });
});

describe('request-line override headers', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config, ctx) => {
      hardConfig(config, ctx);
      config.routes.unshift({
        name: 'legacy',
        match: { path: { prefix: '/legacy' }, methods: ['GET', 'POST'] },
        upstream: 'echo',
        allowOverrideHeaders: ['x-http-method-override'],
      });
      config.policies.push({ name: 'legacy', action: 'ALLOW', routes: ['legacy'], rules: [{ to: [{ operation: { methods: ['GET'] } }] }] });
    });
  });
  after(() => ing.close());

  test('are stripped on routes that do not allow them', async () => {
    const headers = { 'x-original-url': '/admin', 'x-rewrite-url': '/admin', 'x-http-method-override': 'DELETE', 'x-forwarded-prefix': '/admin' };
    const res = await request(ing.port, ing.caPem, { path: '/public/a', headers });
    assert.equal(res.status, 200);
    for (const name of Object.keys(headers)) assert.equal(res.json().headers[name], undefined, name);
  });

  test('an allowed method override is forwarded, and authorized as the method it names', async () => {
    const get = await request(ing.port, ing.caPem, { path: '/legacy/a', method: 'POST', headers: { 'x-http-method-override': 'GET', 'x-original-url': '/admin' } });
    assert.equal(get.status, 200);
    assert.equal(get.json().headers['x-http-method-override'], 'GET');
    assert.equal(get.json().headers['x-original-url'], undefined);
    // The policy allows GET only: a GET overridden to POST is what the backend would execute, and is denied.
    const post = await request(ing.port, ing.caPem, { path: '/legacy/a', headers: { 'x-http-method-override': 'POST' } });
    assert.equal(post.status, 403);
  });
});

describe('opt-outs on the catch-all route re-open only the attack class they name', () => {
  let ing: TestIngress;
  let token: string;
  before(async () => {
    ing = await startTestIngress((config, ctx) => {
      hardConfig(config, ctx);
      config.routes[3].pathNormalization = { allowSemicolonParams: true, decodeUtf8: 'nfkc', allowEncodedPercent: true };
    });
    token = await ing.jwks.sign({ sub: 'alice' });
  });
  after(() => ing.close());

  test('what reaches a protected prefix needs a backend that decodes twice (allowEncodedPercent), nothing else', async () => {
    let doubleDecoded = 0;
    for (const target of targets()) {
      const answer = await send(ing.port, ing.caPem, target, token);
      if (answer.status !== 200) continue;
      const received = (JSON.parse(answer.body) as { path: string }).path;
      const once = reachesPrefix(received, PROTECTED, { decodeRounds: 1 });
      assert.equal(once, undefined, `${JSON.stringify(target)} was forwarded as ${received}, read as ${once} with a single decoding`);
      if (reachesPrefix(received, PROTECTED) !== undefined) doubleDecoded++;
    }
    // The documented risk of allowEncodedPercent is real: the table shows it.
    assert.ok(doubleDecoded > 0);
  });

  test('opted-in readings are used: parameters kept upstream, full-width letters folded', async () => {
    const params = await send(ing.port, ing.caPem, '/public/a;jsessionid=1/b', token);
    assert.equal(JSON.parse(params.body).path, '/public/a;jsessionid=1/b');
    const folded = await send(ing.port, ing.caPem, '/public/%ef%bd%81', token);
    assert.equal(JSON.parse(folded.body).path, '/public/a');
    // A protected route never opted in: the same readings are refused there.
    for (const target of ['/admin;x', '/api/internal;x/keys', '/%ef%bd%81dmin', '/api/%ef%bd%89nternal']) {
      const answer = await send(ing.port, ing.caPem, target, token);
      assert.equal(answer.status, 400, `${target}: ${answer.body}`);
    }
  });
});
