// Client-sent copies of the headers a trusted proxy sets never reach the upstream: identity (oauth2-proxy's
// X-Forwarded-User, Remote-User, X-Auth-Request-*), client certificates (Ssl-Client-Cert, X-ARR-ClientCert,
// X-Amzn-Mtls-Clientcert-*), original host and Envoy's internal headers. A lenient backend believes them as its
// proxy's word (CVE-2025-64484, GHSA-7x63-xv5r-3p2x), so each is sent in mixed case, repeated and in every
// HTTP version, and the echo upstream must see none of them, only the gateway's own X-Forwarded-* values.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import type { EchoReply } from '../../../gateway/dev/demo-backend.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';

/** As a client would spell them; each also goes out lower-cased and upper-cased, and repeated. */
const FORGED = [
  'X-Forwarded-User',
  'X-Forwarded-Email',
  'X-Forwarded-Groups',
  'X-Forwarded-Preferred-Username',
  'X-Forwarded-Access-Token',
  'X-Forwarded-Scheme',
  'X-Forwarded-Server',
  'X-Forwarded-Ssl',
  'X-Forwarded-Tls-Client-Cert',
  'X-Forwarded-Client-Cert',
  'X-Original-Host',
  'X-Host',
  'X-Envoy-Original-Path',
  'X-Envoy-Internal',
  'X-Envoy-Peer-Metadata',
  'X-Auth-Request-User',
  'X-Auth-Request-Email',
  'X-Auth-Request-Groups',
  'X-Auth-Request-Access-Token',
  'Remote-User',
  'X-Remote-User',
  'X-Remote-Group',
  'X-Remote-Extra-Scopes',
  'X-WEBAUTH-USER',
  'Ssl-Client-Cert',
  'Ssl-Client-Verify',
  'X-SSL-Client-Cert',
  'X-SSL-Client-Verify',
  'X-SSL-Client-S-DN',
  'X-Client-Cert',
  'X-Client-Cert-Chain',
  'X-Client-Verify',
  'X-ARR-ClientCert',
  'X-Amzn-Mtls-Clientcert',
  'X-Amzn-Mtls-Clientcert-Subject',
  'X-Amzn-Mtls-Clientcert-Leaf',
  'X-Forwarded-Uri',
  'X-Forwarded-Path',
  'X-Forwarded-Prefix',
];

/** The gateway's own, forged by the client too: the upstream must get the gateway's values. */
const GATEWAY_OWN: [string, string][] = [
  ['X-Forwarded-For', '10.6.6.6'],
  ['X-Forwarded-Proto', 'http'],
  ['X-Forwarded-Host', 'evil.test'],
  ['X-Forwarded-Port', '1'],
];

/** Each spelling of a forged name, two by two: two lines per name keeps a request under the 100-header limit. */
const SPELLINGS: [(name: string) => string, (name: string) => string][] = [
  [(name) => name, (name) => name.toUpperCase()],
  [(name) => name.toLowerCase(), (name) => name],
];

/** Raw header lines: each forged name twice, in two spellings, with two values (a repeated header). */
function forgedLines([first, second]: (typeof SPELLINGS)[number]): string[] {
  return FORGED.flatMap((name) => [first(name), 'root', second(name), 'admins']);
}

/** One HTTP/1.1 request with a raw header list (repeats and case kept on the wire); the echo upstream's view. */
function rawRequest(ing: TestIngress, path: string, lines: string[]): Promise<{ status: number; echo: EchoReply }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: ing.port, path, servername: 'localhost', ca: ing.caPem, agent: false, headers: ['Host', 'localhost', ...lines] },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, echo: JSON.parse(Buffer.concat(chunks).toString('utf8')) as EchoReply }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function h2Request(ing: TestIngress, path: string, headers: http2.OutgoingHttpHeaders): Promise<{ status: number; echo: EchoReply }> {
  const session = http2.connect(`https://127.0.0.1:${ing.port}`, { ca: ing.caPem, servername: 'localhost' });
  try {
    const stream = session.request({ ':path': path, ':authority': 'localhost', ...headers });
    stream.end();
    const [status, body] = await new Promise<[number, string]>((resolve, reject) => {
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve([status, Buffer.concat(chunks).toString('utf8')]));
      stream.on('error', reject);
    });
    return { status, echo: JSON.parse(body) as EchoReply };
  } finally {
    session.close();
  }
}

/** Every forged name the upstream received, lower case. */
function leaked(echo: EchoReply): string[] {
  const forged = new Set(FORGED.map((name) => name.toLowerCase()));
  return Object.keys(echo.headers).filter((name) => forged.has(name) || name.includes('_'));
}

describe('forged proxy headers (identity, client certificate, original host, x-envoy-*)', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.routes.push(
        { name: 'behind-proxy', match: { path: { prefix: '/behind-proxy' } }, upstream: 'echo', allowOverrideHeaders: ['x-forwarded-prefix'] },
        {
          name: 'operator',
          match: { path: { prefix: '/operator' } },
          upstream: 'echo',
          // Deliberate, in the config: the gateway strips the client's copy and the route sets its own.
          filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'Remote-User', value: 'batch-job' }] } }],
        },
      );
      config.policies.push({ name: 'extra', action: 'ALLOW', routes: ['behind-proxy', 'operator'], rules: [{}] });
    });
  });
  after(() => ing.close());

  test('HTTP/1.1: none reaches the upstream, in any case or repeated; ordinary headers and the gateway\'s own do', async () => {
    for (const spelling of SPELLINGS) {
      const lines = [...forgedLines(spelling), ...GATEWAY_OWN.flat(), 'X-Custom', 'kept', 'x-custom', 'kept too', 'X_Forwarded_User', 'root'];
      const { status, echo } = await rawRequest(ing, '/public/spoof', lines);
      assert.equal(status, 200);
      assert.deepEqual(leaked(echo), []);
      assert.equal(echo.headers['x-custom'], 'kept, kept too');
      const forwarded = Object.entries(echo.headers).filter(([name]) => name.startsWith('x-forwarded-') || name.startsWith('x-envoy-'));
      assert.deepEqual(forwarded.map(([name]) => name).sort(), ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto']);
      assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(echo.headers['x-forwarded-proto'], 'https');
      assert.equal(echo.headers['x-forwarded-host'], 'localhost');
      // The port the client connected to (the listener's, bound on port 0 here), never the client's 1.
      assert.equal(echo.headers['x-forwarded-port'], String(ing.port));
    }
  });

  test('HTTP/2: none reaches the upstream, repeated values included', async () => {
    const headers = Object.fromEntries(FORGED.map((name) => [name.toLowerCase(), ['root', 'admins']]));
    const { status, echo } = await h2Request(ing, '/public/spoof', { ...headers, 'x-custom': 'kept' });
    assert.equal(status, 200);
    assert.deepEqual(leaked(echo), []);
    assert.equal(echo.headers['x-custom'], 'kept');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-port'], String(ing.port));
  });

  test('a route lets through the x-forwarded-* override it names (GHSA-7x63-xv5r-3p2x), and nothing else of the family', async () => {
    const { status, echo } = await rawRequest(ing, '/behind-proxy/x', ['X-Forwarded-Prefix', '/app', 'X-Forwarded-Uri', '/admin', 'X-Forwarded-User', 'root', 'X-Forwarded-Scheme', 'http']);
    assert.equal(status, 200);
    assert.equal(echo.headers['x-forwarded-prefix'], '/app');
    assert.equal(echo.headers['x-forwarded-uri'], undefined);
    assert.equal(echo.headers['x-forwarded-user'], undefined);
    assert.equal(echo.headers['x-forwarded-scheme'], undefined);
  });

  test("a route's header modifier may set one deliberately: the upstream gets the config's value, not the client's", async () => {
    const res = await request(ing.port, ing.caPem, { path: '/operator/x', headers: { 'remote-user': 'root' } });
    assert.equal(res.status, 200);
    assert.equal(res.json().headers['remote-user'], 'batch-job');
  });
});

describe('an identity header the gateway sets itself, from a verified token', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      config.jwtProviders[0].claimsToHeaders.push({ header: 'x-forwarded-user', claim: 'sub' });
    });
  });
  after(() => ing.close());

  test("an x-forwarded-* claim header carries the token's claim, never the client's copy", async () => {
    const token = await ing.jwks.sign({ sub: 'alice' });
    const { status, echo } = await rawRequest(ing, '/public/claims', ['Authorization', `Bearer ${token}`, 'X-Forwarded-User', 'root', 'x-forwarded-user', 'root']);
    assert.equal(status, 200);
    assert.equal(echo.headers['x-forwarded-user'], 'alice');
    const anonymous = await rawRequest(ing, '/public/claims', ['X-Forwarded-User', 'root']);
    assert.equal(anonymous.echo.headers['x-forwarded-user'], undefined);
  });
});

describe('a token header of a proxy-asserted name, under forwardOriginalToken', () => {
  let ing: TestIngress;
  before(async () => {
    ing = await startTestIngress((config) => {
      Object.assign(config.jwtProviders[0], { fromHeaders: [{ name: 'x-forwarded-access-token' }], forwardOriginalToken: true });
    });
  });
  after(() => ing.close());

  test('the verified token is forwarded as sent; one that does not verify is refused, never forwarded', async () => {
    const token = await ing.jwks.sign({ sub: 'alice' });
    const verified = await rawRequest(ing, '/api/x', ['X-Forwarded-Access-Token', token]);
    assert.equal(verified.status, 200);
    assert.equal(verified.echo.headers['x-forwarded-access-token'], token);
    assert.equal(verified.echo.headers['x-user'], 'alice');
    const forged = await rawRequest(ing, '/public/x', ['X-Forwarded-Access-Token', 'not-a-token']);
    assert.equal(forged.status, 401);
    assert.equal(forged.echo.headers, undefined, 'the gateway answered itself');
  });
});
