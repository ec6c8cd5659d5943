// A JWKS endpoint that redirects is a failed fetch; the redirect is never followed. Followed, an https endpoint's
// 302 to `http://…` lets whoever is on the path serve the keys (and forge every token), and one to a metadata or
// loopback address makes the gateway fetch for the endpoint (better-auth/better-auth#10241). jose's remote JWKS
// and Envoy's jwt_authn do not follow redirects either.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { LOG_EVENTS } from '../../../gateway/core/log.js';
import { GatewayError } from '../../../gateway/core/errors.js';
import { createJwtAuthn } from '../../../gateway/jwt/verifier.js';
import { request, startTestIngress, type TestIngress } from '../../helpers/ingress.js';
import { frozenClock, makeKey, memoryLog, sign, startJwksServer } from './helpers.js';

interface Redirector {
  url: string;
  readonly hits: number;
  status: number;
  /** Where it redirects to; undefined: it serves `keys` itself (an endpoint that starts redirecting later). */
  location: string | undefined;
  keys: unknown[];
  close(): Promise<void>;
}

async function startRedirector(): Promise<Redirector> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits += 1;
    if (api.location === undefined) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: api.keys }));
    else res.writeHead(api.status, { location: api.location }).end('moved');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const api: Redirector = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    get hits() {
      return hits;
    },
    status: 302,
    location: undefined,
    keys: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return api;
}

const REFUSED = /^redirect refused: HTTP 302 to http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json$/;

describe('the gateway, with a jwksUri that answers 302 to another JWKS server', () => {
  let redirector: Redirector;
  let ing: TestIngress;
  before(async () => {
    redirector = await startRedirector();
    ing = await startTestIngress((config) => {
      // The second server is the test ingress's own JWKS server: it holds the key the test signs with.
      redirector.location = config.jwtProviders[0].jwksUri;
      config.jwtProviders[0].jwksUri = redirector.url;
    });
  });
  after(async () => {
    await ing.close();
    await redirector.close();
  });

  test('the second server is never asked, and tokens signed by its key are refused 401', async () => {
    assert.ok(redirector.hits >= 1);
    const token = await ing.jwks.sign({ sub: 'alice' });
    const res = await request(ing.port, ing.caPem, { path: '/api/orders', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401);
    assert.equal(res.json().code, 'GW_AUTHN_INVALID_TOKEN');
    assert.equal(res.json().reason, 'jwks_unavailable');
    assert.equal(ing.jwks.hits, 0, 'the redirect target saw no request');
    assert.equal(ing.upstream.hits, 0);
  });

  test('the failure is reported as documented: status, JWKS_FETCH_FAILED, readiness', () => {
    const status = ing.gateway.runtime().jwt.status().test;
    assert.equal(status?.state, 'empty');
    assert.match(status?.lastError ?? '', REFUSED);
    const failed = ing.logs.find((l) => l.event === LOG_EVENTS.JWKS_FETCH_FAILED);
    assert.equal(failed?.provider, 'test');
    assert.equal(failed?.state, 'empty');
    assert.match(String(failed?.error), REFUSED);
    assert.equal(ing.gateway.ready(), false, 'a provider without keys keeps the gateway unready');
  });
});

describe('JWKS redirects, each kind', () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  const ISS = 'https://idp.example';
  const T0 = 1_800_000_000_000;

  async function setup() {
    const key = await makeKey('ES256', 'k1');
    const target = await startJwksServer([key.publicJwk]);
    const redirector = await startRedirector();
    cleanup.push(() => target.close(), () => redirector.close());
    const clock = frozenClock(T0);
    const log = memoryLog();
    const start = () => {
      const authn = createJwtAuthn([{ name: 'idp', issuer: ISS, jwksUri: redirector.url, jwksCooldownSeconds: 30 }], { tokenCacheSize: 0 }, { logger: log.logger, now: clock.now });
      cleanup.push(() => authn.close());
      return authn;
    };
    const token = () => sign(key, { iss: ISS }, { now: T0 / 1000 });
    return { key, target, redirector, clock, log, start, token };
  }

  async function refusal(p: Promise<unknown>): Promise<string | undefined> {
    try {
      await p;
      return 'accepted';
    } catch (err) {
      assert.ok(err instanceof GatewayError);
      assert.equal(err.status, 401);
      return err.reason;
    }
  }

  for (const status of [301, 303, 307, 308]) {
    test(`HTTP ${status} to a server holding the key: not followed, every token refused`, async () => {
      const { target, redirector, start, token } = await setup();
      redirector.status = status;
      redirector.location = target.url;
      const authn = start();
      await authn.ready();
      assert.equal(await refusal(authn.authenticate({ headers: { authorization: `Bearer ${await token()}` }, query: '' })), 'jwks_unavailable');
      assert.equal(target.hits, 0);
      assert.equal(authn.status().idp?.lastError, `redirect refused: HTTP ${status} to ${target.url}`);
    });
  }

  test('the redirect target is shown without its secrets: a relative Location is resolved, then redacted', async () => {
    const { redirector, log, start } = await setup();
    redirector.location = '/moved/jwks.json?sig=s3cret-value';
    const authn = start();
    await authn.ready();
    assert.equal(authn.status().idp?.lastError, `redirect refused: HTTP 302 to ${new URL('/moved/jwks.json', redirector.url).href}?sig=[redacted]`);
    redirector.location = 'http://user:hunter2@169.254.169.254/latest/meta-data/';
    authn.close();
    const again = start();
    await again.ready();
    assert.equal(again.status().idp?.lastError, 'redirect refused: HTTP 302 to http://[redacted]@169.254.169.254/latest/meta-data/');
    assert.doesNotMatch(log.text(), /s3cret|hunter2/);
  });

  test('an endpoint that starts redirecting later: the last good keys stay, the target is never asked', async () => {
    const { key, target, redirector, clock, start, token } = await setup();
    redirector.keys = [key.publicJwk];
    const authn = start();
    await authn.ready();
    assert.equal(authn.status().idp?.state, 'fresh');
    redirector.location = target.url;
    clock.advance(30_000);
    const unknownKid = await sign(key, { iss: ISS }, { now: T0 / 1000, header: { kid: 'k2' } });
    assert.equal(await refusal(authn.authenticate({ headers: { authorization: `Bearer ${unknownKid}` }, query: '' })), 'kid_unknown');
    assert.equal(authn.status().idp?.state, 'stale');
    assert.match(authn.status().idp?.lastError ?? '', /^redirect refused: HTTP 302 to /);
    const ok = await authn.authenticate({ headers: { authorization: `Bearer ${await token()}` }, query: '' });
    assert.equal(ok.auth?.principal, `${ISS}/alice`);
    assert.equal(target.hits, 0);
  });
});
