import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CompactEncrypt, SignJWT } from 'jose';
import type { JwtProviderConfig } from '../../../gateway/config/schema.js';
import { GatewayError } from '../../../gateway/core/errors.js';
import { createJwtAuthn, type AuthnInput, type JwtAuthn, type JwtAuthnDeps } from '../../../gateway/jwt/verifier.js';
import { frozenClock, makeKey, memoryLog, sign, startJwksServer, type JwksServer, type TestKey } from './helpers.js';

const ISS = 'https://idp.example';
const bearer = (token: string): AuthnInput => ({ headers: { authorization: `Bearer ${token}` }, query: '' });

async function rejects(p: Promise<unknown>, code: string, reason?: string): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GatewayError, `expected a GatewayError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (reason !== undefined) assert.equal(err.reason, reason);
    return err;
  }
  assert.fail(`expected ${code}${reason ? ` (${reason})` : ''}`);
}

describe('JWT authentication against a real JWKS endpoint', () => {
  let server: JwksServer;
  let rsa: TestKey;
  let ec: TestKey;
  let ed: TestKey;
  const open: JwtAuthn[] = [];
  const log = memoryLog();

  before(async () => {
    [rsa, ec, ed] = await Promise.all([makeKey('RS256', 'rsa-1'), makeKey('ES256', 'ec-1'), makeKey('EdDSA', 'ed-1')]);
    server = await startJwksServer([rsa.publicJwk, ec.publicJwk, ed.publicJwk]);
  });
  after(async () => {
    for (const a of open) a.close();
    await server.close();
  });

  async function authn(
    over: Partial<JwtProviderConfig> = {},
    deps: Partial<JwtAuthnDeps> = {},
    extra: JwtProviderConfig[] = [],
    tokenCacheSize?: number,
  ): Promise<JwtAuthn> {
    const a = createJwtAuthn(
      [{ name: 'idp', issuer: ISS, jwksUri: server.url, audiences: ['api'], ...over }, ...extra],
      tokenCacheSize === undefined ? {} : { tokenCacheSize },
      { logger: log.logger, ...deps },
    );
    open.push(a);
    await a.ready();
    return a;
  }

  test('RS256, ES256 and EdDSA tokens are accepted and become the request identity', async () => {
    const a = await authn();
    for (const key of [rsa, ec, ed]) {
      const token = await sign(key, { iss: ISS, aud: 'api', sub: `user-${key.alg}`, groups: ['admin'] });
      const r = await a.authenticate(bearer(token));
      assert.equal(r.provider, 'idp');
      assert.equal(r.auth?.issuer, ISS);
      assert.equal(r.auth?.subject, `user-${key.alg}`);
      assert.equal(r.auth?.principal, `${ISS}/user-${key.alg}`);
      assert.deepEqual(r.auth?.audiences, ['api']);
      assert.deepEqual(r.auth?.claims.groups, ['admin']);
      assert.deepEqual(r.removeHeaders, ['authorization'], 'the token is not forwarded by default');
    }
    assert.deepEqual(a.status().idp, { state: 'fresh', keys: 3, lastFetchAt: a.status().idp?.lastFetchAt });
  });

  test('no token is anonymous, not an error: the policy decides', async () => {
    const a = await authn();
    const r = await a.authenticate({ headers: { 'x-other': '1' }, query: 'a=b' });
    assert.equal(r.auth, undefined);
    assert.deepEqual(r.removeHeaders, []);
  });

  test('failures answer 401 with an RFC 6750 challenge and a stable reason', async () => {
    const a = await authn();
    const expired = await sign(rsa, { iss: ISS, aud: 'api' }, { now: Math.floor(Date.now() / 1000) - 3600, expIn: 60 });
    const err = await rejects(a.authenticate(bearer(expired)), 'GW_AUTHN_INVALID_TOKEN', 'token_expired');
    assert.equal(err.status, 401);
    assert.equal(
      err.headers?.['www-authenticate'],
      'Bearer realm="portcullis", error="invalid_token", error_description="token expired"',
    );
  });

  test('exp and nbf honour the 60 s default clock skew exactly at the boundary', async () => {
    const clock = frozenClock(1_800_000_000_000);
    const a = await authn({}, { now: clock.now }, [], 0);
    const now = 1_800_000_000;
    const at = (claims: Record<string, number>) => sign(ec, { iss: ISS, aud: 'api', iat: now - 100, ...claims });
    await a.authenticate(bearer(await at({ exp: now - 59 })));
    await rejects(a.authenticate(bearer(await at({ exp: now - 60 }))), 'GW_AUTHN_INVALID_TOKEN', 'token_expired');
    await a.authenticate(bearer(await at({ exp: now + 600, nbf: now + 60 })));
    await rejects(a.authenticate(bearer(await at({ exp: now + 600, nbf: now + 61 }))), 'GW_AUTHN_INVALID_TOKEN', 'token_not_yet_valid');

    const strict = await authn({ clockSkewSeconds: 0 }, { now: clock.now }, [], 0);
    await rejects(strict.authenticate(bearer(await at({ exp: now }))), 'GW_AUTHN_INVALID_TOKEN', 'token_expired');
    await strict.authenticate(bearer(await at({ exp: now + 1 })));
  });

  test('the audience is any-of, and not checked when the provider lists none (Envoy)', async () => {
    const a = await authn({ audiences: ['api', 'web'] });
    await a.authenticate(bearer(await sign(ec, { iss: ISS, aud: ['other', 'web'] })));
    await rejects(a.authenticate(bearer(await sign(ec, { iss: ISS, aud: 'other' }))), 'GW_AUTHN_INVALID_TOKEN', 'audience_mismatch');
    await rejects(a.authenticate(bearer(await sign(ec, { iss: ISS }))), 'GW_AUTHN_INVALID_TOKEN', 'audience_mismatch');

    const open = await authn({ audiences: [] });
    const r = await open.authenticate(bearer(await sign(ec, { iss: ISS, aud: 'anything' })));
    assert.deepEqual(r.auth?.audiences, ['anything']);
    assert.deepEqual((await open.authenticate(bearer(await sign(ec, { iss: ISS })))).auth?.audiences, []);
  });

  test('a wrong issuer is refused, and so is the issuer of a provider the route does not allow', async () => {
    const other = { name: 'other', issuer: 'https://other.example', jwksUri: server.url };
    const a = await authn({}, {}, [other]);
    await rejects(a.authenticate(bearer(await sign(ec, { iss: 'https://evil.example', aud: 'api' }))), 'GW_AUTHN_INVALID_TOKEN', 'issuer_unknown');
    const otherToken = await sign(ec, { iss: 'https://other.example' });
    assert.equal((await a.authenticate(bearer(otherToken))).provider, 'other');
    await rejects(
      a.authenticate({ ...bearer(otherToken), allowedProviders: new Set(['idp']) }),
      'GW_AUTHN_INVALID_TOKEN',
      'issuer_unknown',
    );
  });

  test('a tampered signature, a JWE and a crit header are refused', async () => {
    const a = await authn();
    const token = await sign(rsa, { iss: ISS, aud: 'api' });
    const [h, p, s] = token.split('.') as [string, string, string];
    const forged = `${h}.${Buffer.from(JSON.stringify({ iss: ISS, aud: 'api', sub: 'root' })).toString('base64url')}.${s}`;
    await rejects(a.authenticate(bearer(forged)), 'GW_AUTHN_INVALID_TOKEN', 'signature_invalid');
    await rejects(a.authenticate(bearer(`${h}.${p}.${s.slice(0, -4)}AAAA`)), 'GW_AUTHN_INVALID_TOKEN', 'signature_invalid');

    const jwe = await new CompactEncrypt(new TextEncoder().encode('{}'))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(new Uint8Array(32));
    await rejects(a.authenticate(bearer(jwe)), 'GW_AUTHN_INVALID_TOKEN', 'token_encrypted');

    const crit = await new SignJWT({ iss: ISS, aud: 'api', sub: 'x', exp: Math.floor(Date.now() / 1000) + 60, ext: 1 })
      .setProtectedHeader({ alg: 'ES256', kid: ec.kid, crit: ['ext'], ext: true })
      .sign(ec.privateKey, { crit: { ext: true } });
    await rejects(a.authenticate(bearer(crit)), 'GW_AUTHN_INVALID_TOKEN', 'crit_unsupported');
    await rejects(a.authenticate(bearer('not-a-jwt')), 'GW_AUTHN_INVALID_TOKEN', 'token_malformed');
    await rejects(a.authenticate(bearer('e30.e30.AAAA')), 'GW_AUTHN_INVALID_TOKEN', 'alg_not_allowed');
  });

  test('a token without kid is tried against every matching key of a static JWKS', async () => {
    const [a1, a2, stranger] = await Promise.all([makeKey('ES256', 'x'), makeKey('ES256', 'y'), makeKey('ES256', 'z')]);
    const noKid = ({ kid: _kid, ...jwk }: typeof a1.publicJwk) => jwk;
    const a = createJwtAuthn([{ name: 'idp', issuer: ISS, jwks: { keys: [noKid(a1.publicJwk), noKid(a2.publicJwk)] } }], {}, { logger: log.logger });
    open.push(a);
    const unkeyed = (key: TestKey) => sign(key, { iss: ISS }, { header: { kid: undefined } });
    assert.equal((await a.authenticate(bearer(await unkeyed(a2)))).provider, 'idp');
    await rejects(a.authenticate(bearer(await unkeyed(stranger))), 'GW_AUTHN_INVALID_TOKEN', 'signature_invalid');
    await rejects(a.authenticate(bearer(await sign(a1, { iss: ISS }))), 'GW_AUTHN_INVALID_TOKEN', 'kid_unknown');
  });

  test('an algorithm outside the provider allowlist is refused', async () => {
    const a = await authn({ algorithms: ['ES256'] });
    await a.authenticate(bearer(await sign(ec, { iss: ISS, aud: 'api' })));
    await rejects(a.authenticate(bearer(await sign(rsa, { iss: ISS, aud: 'api' }))), 'GW_AUTHN_INVALID_TOKEN', 'alg_not_allowed');
  });

  test('a 64 KB token is refused before any parsing or JWKS request', async () => {
    const a = await authn({ fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }], fromParams: ['access_token'] });
    const hits = server.hits;
    const huge = `${'a'.repeat(32 * 1024)}.${'b'.repeat(32 * 1024)}.c`;
    await rejects(a.authenticate({ headers: {}, query: `access_token=${huge}` }), 'GW_AUTHN_INVALID_TOKEN', 'token_too_large');
    await rejects(a.authenticate(bearer(huge)), 'GW_AUTHN_INVALID_TOKEN', 'token_too_large');
    assert.equal(server.hits, hits);
  });

  test('more than one token is refused: header + query parameter, or a repeated Authorization header', async () => {
    const a = await authn({ fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }], fromParams: ['access_token'] });
    const t1 = await sign(ec, { iss: ISS, aud: 'api', sub: 'one' });
    const t2 = await sign(ec, { iss: ISS, aud: 'api', sub: 'two' });
    const err = await rejects(
      a.authenticate({ headers: { authorization: `Bearer ${t1}` }, query: `access_token=${t2}` }),
      'GW_AUTHN_MULTIPLE_TOKENS',
    );
    assert.match(err.headers?.['www-authenticate'] ?? '', /error="invalid_request"/);
    // Node keeps repeated headers as an array (headersDistinct) or comma-joins them (joinDuplicateHeaders).
    const repeated = { authorization: [`Bearer ${t1}`, `Bearer ${t1}`] } as unknown as AuthnInput['headers'];
    await rejects(a.authenticate({ headers: repeated, query: '' }), 'GW_AUTHN_MULTIPLE_TOKENS');
    await rejects(a.authenticate({ headers: { authorization: `Bearer ${t1}, Bearer ${t2}` }, query: '' }), 'GW_AUTHN_MULTIPLE_TOKENS');

    const same = await a.authenticate({ headers: { authorization: `Bearer ${t1}` }, query: `x=1&access_token=${t1}` });
    assert.equal(same.auth?.subject, 'one');
    assert.deepEqual(same.removeHeaders, ['authorization']);
    assert.deepEqual(same.removeParams, ['access_token']);
  });

  test('an Authorization header without the Bearer prefix is invalid, not missing (Istio)', async () => {
    const a = await authn();
    const token = await sign(ec, { iss: ISS, aud: 'api' });
    await rejects(a.authenticate({ headers: { authorization: token }, query: '' }), 'GW_AUTHN_INVALID_TOKEN', 'token_prefix_missing');
    await rejects(a.authenticate({ headers: { authorization: 'Basic dXNlcjpwYXNz' }, query: '' }), 'GW_AUTHN_INVALID_TOKEN', 'token_prefix_missing');
    await rejects(a.authenticate({ headers: { authorization: 'Bearer ' }, query: '' }), 'GW_AUTHN_INVALID_TOKEN', 'token_prefix_missing');
    assert.equal((await a.authenticate({ headers: { authorization: `bearer ${token}` }, query: '' })).provider, 'idp');
  });

  test('cookie tokens are read and removed; forwardOriginalToken keeps them', async () => {
    const token = await sign(ec, { iss: ISS, aud: 'api' });
    const a = await authn({ fromCookies: ['session'] });
    const r = await a.authenticate({ headers: { cookie: `theme=dark; session=${token}` }, query: '' });
    assert.equal(r.provider, 'idp');
    assert.deepEqual(r.removeCookies, ['session']);
    assert.equal((await a.authenticate({ headers: { authorization: `Bearer ${token}` }, query: '' })).auth, undefined,
      'with only fromCookies configured, Authorization is not a token location');
    const kept = await authn({ forwardOriginalToken: true });
    assert.deepEqual((await kept.authenticate(bearer(token))).removeHeaders, []);
  });

  test('claimsToHeaders: strings, numbers, booleans and nested claims; arrays, objects and missing claims are absent', async () => {
    const a = await authn({
      claimsToHeaders: [
        { header: 'x-sub', claim: 'sub' },
        { header: 'x-tenant', claim: 'org.tenant.id' },
        { header: 'x-level', claim: 'level' },
        { header: 'x-admin', claim: 'admin' },
        { header: 'x-groups', claim: 'groups' },
        { header: 'x-org', claim: 'org' },
        { header: 'x-missing', claim: 'nope.deeper' },
        { header: 'x-evil', claim: 'evil' },
      ],
    });
    assert.deepEqual(a.managedHeaders, ['x-sub', 'x-tenant', 'x-level', 'x-admin', 'x-groups', 'x-org', 'x-missing', 'x-evil']);
    const token = await sign(ec, {
      iss: ISS,
      aud: 'api',
      sub: 'alice',
      org: { tenant: { id: 't-42' } },
      level: 3,
      admin: false,
      groups: ['a', 'b'],
      evil: 'x\r\nx-injected: 1',
    });
    const r = await a.authenticate(bearer(token));
    assert.deepEqual(r.setHeaders, { 'x-sub': 'alice', 'x-tenant': 't-42', 'x-level': '3', 'x-admin': 'false' });
  });

  test('the verified-token cache serves repeats without verification and never past exp', async () => {
    const clock = frozenClock(1_800_000_000_000);
    const now = 1_800_000_000;
    const a = await authn({ clockSkewSeconds: 0 }, { now: clock.now });
    const token = await sign(ec, { iss: ISS, aud: 'api' }, { now, expIn: 120 });
    const first = await a.authenticate(bearer(token));
    const second = await a.authenticate(bearer(token));
    assert.equal(second.auth, first.auth, 'a hit returns the cached identity itself');
    assert.equal(second.setHeaders, first.setHeaders);
    clock.advance(119_000);
    assert.equal((await a.authenticate(bearer(token))).auth, first.auth);
    clock.advance(1_000);
    await rejects(a.authenticate(bearer(token)), 'GW_AUTHN_INVALID_TOKEN', 'token_expired');
  });

  test('a cached token is only served to routes that allow its provider', async () => {
    const other = { name: 'other', issuer: 'https://other.example', jwksUri: server.url };
    const a = await authn({}, {}, [other]);
    const token = await sign(ec, { iss: ISS, aud: 'api' });
    assert.equal((await a.authenticate(bearer(token))).provider, 'idp');
    await rejects(
      a.authenticate({ ...bearer(token), allowedProviders: new Set(['other']) }),
      'GW_AUTHN_INVALID_TOKEN',
      'issuer_unknown',
    );
  });

  test('tokenCacheSize 0 verifies every time', async () => {
    const a = await authn({}, {}, [], 0);
    const token = await sign(ec, { iss: ISS, aud: 'api' });
    const first = await a.authenticate(bearer(token));
    assert.notEqual((await a.authenticate(bearer(token))).auth, first.auth);
  });

  test('each refusal is counted with the provider that refused it, or the only one it could be for, else unknown', async () => {
    const counted: [string, string][] = [];
    const metrics = { jwtFailure: (provider: string, reason: string) => void counted.push([provider, reason]) };
    const other = { name: 'other', issuer: 'https://other.example', jwksUri: server.url };
    const a = await authn({}, { metrics }, [other]);
    await rejects(a.authenticate(bearer(await sign(ec, { iss: ISS, aud: 'nope' }))), 'GW_AUTHN_INVALID_TOKEN', 'audience_mismatch');
    await rejects(a.authenticate(bearer(await sign(ec, { iss: 'https://evil.example' }))), 'GW_AUTHN_INVALID_TOKEN', 'issuer_unknown');
    await rejects(a.authenticate({ ...bearer('not.a.jwt'), allowedProviders: new Set(['other']) }), 'GW_AUTHN_INVALID_TOKEN', 'token_malformed');
    await rejects(a.authenticate({ headers: { authorization: 'Basic x' }, query: '' }), 'GW_AUTHN_INVALID_TOKEN', 'token_prefix_missing');
    const ok = await sign(ec, { iss: ISS, aud: 'api' });
    assert.equal((await a.authenticate(bearer(ok))).provider, 'idp');
    assert.deepEqual(counted, [
      ['idp', 'audience_mismatch'],
      ['unknown', 'issuer_unknown'],
      ['other', 'token_malformed'],
      ['unknown', 'token_prefix_missing'],
    ]);
  });

  test('tokens never reach the log', async () => {
    const a = await authn();
    const token = await sign(ec, { iss: ISS, aud: 'other' });
    await rejects(a.authenticate(bearer(token)), 'GW_AUTHN_INVALID_TOKEN');
    const signature = token.split('.')[2] ?? '';
    assert.ok(!log.text().includes(signature));
  });

  test('a token without exp is refused (missing_exp) unless requireExpiration is false (Envoy require_expiration)', async () => {
    const noExp = await sign(ec, { iss: ISS, aud: 'api', exp: undefined });
    await rejects((await authn()).authenticate(bearer(noExp)), 'GW_AUTHN_INVALID_TOKEN', 'missing_exp');
    const lenient = await authn({ requireExpiration: false });
    assert.equal((await lenient.authenticate(bearer(noExp))).auth?.subject, 'alice');
  });

  test('requiredClaims: presence, accepted values, array claims, nested claims', async () => {
    const a = await authn({
      requiredClaims: [{ claim: 'tenant' }, { claim: 'roles', values: ['admin', 'ops'] }, { claim: 'org.tier', values: ['1', 'gold'] }],
    }, {}, [], 0);
    const token = (claims: Record<string, unknown>) => sign(ec, { iss: ISS, aud: 'api', tenant: 't1', roles: 'ops', org: { tier: 1 }, ...claims });
    await a.authenticate(bearer(await token({})));
    await a.authenticate(bearer(await token({ roles: ['reader', 'admin'], org: { tier: 'gold' } })));
    await rejects(a.authenticate(bearer(await token({ tenant: undefined }))), 'GW_AUTHN_INVALID_TOKEN', 'claim_missing');
    await rejects(a.authenticate(bearer(await token({ tenant: null }))), 'GW_AUTHN_INVALID_TOKEN', 'claim_missing');
    await rejects(a.authenticate(bearer(await token({ org: {} }))), 'GW_AUTHN_INVALID_TOKEN', 'claim_missing');
    await rejects(a.authenticate(bearer(await token({ roles: 'reader' }))), 'GW_AUTHN_INVALID_TOKEN', 'claim_value_not_allowed');
    await rejects(a.authenticate(bearer(await token({ roles: ['reader'] }))), 'GW_AUTHN_INVALID_TOKEN', 'claim_value_not_allowed');
    await rejects(a.authenticate(bearer(await token({ roles: { admin: true } }))), 'GW_AUTHN_INVALID_TOKEN', 'claim_value_not_allowed');
    const err = await rejects(a.authenticate(bearer(await token({ org: { tier: 2 } }))), 'GW_AUTHN_INVALID_TOKEN', 'claim_value_not_allowed');
    assert.match(err.headers?.['www-authenticate'] ?? '', /error="invalid_token"/);
  });

  test('required: no token is a 401 with a bare Bearer challenge; an anonymous request stays anonymous otherwise', async () => {
    const a = await authn();
    const err = await rejects(a.authenticate({ headers: {}, query: '', required: true }), 'GW_AUTHN_REQUIRED', 'token_missing');
    assert.equal(err.status, 401);
    assert.equal(err.headers?.['www-authenticate'], 'Bearer realm="portcullis"');
    assert.equal((await a.authenticate({ headers: {}, query: '', required: false })).auth, undefined);
    const token = await sign(ec, { iss: ISS, aud: 'api' });
    assert.equal((await a.authenticate({ ...bearer(token), required: true })).auth?.subject, 'alice');
  });
});
