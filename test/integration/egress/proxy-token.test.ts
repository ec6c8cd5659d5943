// `Proxy-Authorization: Bearer <JWT>` as the egress identity of callers without an SVID: verified against a
// real JWKS server like an ingress token, granted by `jwt:<iss>/<sub>` rules, and refused (407) when invalid
// rather than downgraded to the caller's source address.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ISSUER, startJwksServer, startTestIngress, type JwksServer } from '../../helpers/ingress.js';
import { curl, eventually, startHttpUpstream, startProxy, tempDir, type Proxy, type TempDir, type Upstream } from './harness.js';

describe('egress identity from a proxy token', () => {
  let dir: TempDir;
  let upstream: Upstream;
  let jwks: JwksServer;
  let proxy: Proxy;

  before(async () => {
    dir = tempDir();
    upstream = await startHttpUpstream('partner');
    jwks = await startJwksServer();
    proxy = await startProxy(
      dir,
      {
        proxyAuthorization: { providers: ['idp'] },
        sourceIdentities: [{ name: 'local', cidrs: ['127.0.0.1/32'] }],
        allow: [{ name: 'alice-partner', identities: [`jwt:${ISSUER}/alice`], hosts: ['partner.test'], ports: [upstream.port] }],
        staticHosts: [{ host: 'partner.test', addresses: ['127.0.0.1'] }],
        addressGuard: { allowAddresses: ['127.0.0.1'] },
      },
      { jwtProviders: [{ name: 'idp', issuer: ISSUER, jwksUri: jwks.url }] },
    );
  });
  after(async () => {
    await proxy.close();
    await upstream.close();
    await jwks.close();
    dir.remove();
  });

  const viaProxy = (token?: string) =>
    curl([
      '-s',
      '-i',
      '-x',
      `http://127.0.0.1:${proxy.port}`,
      ...(token ? ['--proxy-header', `Proxy-Authorization: Bearer ${token}`] : []),
      `http://partner.test:${upstream.port}/data`,
    ]);

  test('the granted subject reaches the destination; the token is not forwarded', async () => {
    const r = await viaProxy(await jwks.sign({ sub: 'alice' }));
    assert.match(r.stdout, /^HTTP\/1\.1 200/);
    assert.match(r.stdout, /hello from partner/);
    assert.equal(upstream.lastHeaders?.['proxy-authorization'], undefined);
    // The record of a forwarded request is written when it ends, which may be just after the client has its answer.
    await eventually(() => proxy.records().some((r) => r.identity === `jwt:${ISSUER}/alice`));
    const record = proxy.records().find((r) => r.identity === `jwt:${ISSUER}/alice`)!;
    assert.equal(record.identityKind, 'jwt');
  });

  test('another subject is denied by the allowlist (403)', async () => {
    const r = await viaProxy(await jwks.sign({ sub: 'mallory' }));
    assert.match(r.stdout, /^HTTP\/1\.1 403/);
  });

  test('an invalid token is 407, not a fallback to the source address', async () => {
    const r = await viaProxy(await jwks.sign({ sub: 'alice' }, { issuer: 'https://evil.test' }));
    assert.match(r.stdout, /^HTTP\/1\.1 407/);
    assert.match(r.stdout, /proxy-authenticate: .*Bearer realm="portcullis-egress"/i);
    assert.match(r.stdout, /GW_EGRESS_NO_IDENTITY/);
  });

  test('two Proxy-Authorization headers are refused, not first-wins', async () => {
    const good = await jwks.sign({ sub: 'alice' });
    const answer = await new Promise<string>((resolve) => {
      let data = '';
      const socket = net.connect(proxy.port, '127.0.0.1', () =>
        socket.write(
          `GET http://partner.test:${upstream.port}/data HTTP/1.1\r\nHost: partner.test:${upstream.port}\r\n` +
            `Proxy-Authorization: Bearer ${good}\r\nProxy-Authorization: Bearer other\r\nConnection: close\r\n\r\n`,
        ),
      );
      socket.on('data', (c: Buffer) => (data += c));
      socket.on('close', () => resolve(data));
    });
    assert.match(answer, /^HTTP\/1\.1 407/);
  });

  test('without a token the caller is its source identity, which has no grant here', async () => {
    const r = await viaProxy();
    assert.match(r.stdout, /^HTTP\/1\.1 403/);
  });
});

test('in the gateway, proxy tokens use the ingress JWT service: one JWKS fetch for both, one readiness', async () => {
  const upstream = await startHttpUpstream('partner');
  const ing = await startTestIngress((config) => {
    config.egress = {
      listener: { address: '127.0.0.1', port: 0 },
      proxyAuthorization: { providers: ['test'] },
      allow: [{ name: 'alice-partner', identities: [`jwt:${ISSUER}/alice`], hosts: ['partner.test'], ports: [upstream.port] }],
      staticHosts: [{ host: 'partner.test', addresses: ['127.0.0.1'] }],
      addressGuard: { allowAddresses: ['127.0.0.1'] },
    };
  });
  try {
    const fetchesAtStart = ing.jwks.hits;
    assert.equal(fetchesAtStart, 1, 'one fetcher per provider, whoever uses it');
    const token = await ing.jwks.sign({ sub: 'alice' });
    const r = await curl(['-s', '-x', `http://127.0.0.1:${ing.gateway.ports.get('egress')}`, '--proxy-header', `Proxy-Authorization: Bearer ${token}`, `http://partner.test:${upstream.port}/`]);
    assert.equal(r.stdout, 'hello from partner');
    assert.equal(ing.jwks.hits, fetchesAtStart);
    assert.equal(ing.gateway.runtime().jwt.status().test?.state, 'fresh');
  } finally {
    await ing.close();
    await upstream.close();
  }
});
