// Deeply nested JSON in a token (CVE-2023-1370, json-smart: nesting exhausted the parser's stack): a header or
// payload nested thousands deep gets a refusal, never a crash, before the signature is checked and after it (a
// trusted issuer's token whose claims the gateway then walks to freeze them, to copy them to headers and to check
// requiredClaims).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../gateway/core/errors.js';
import { MAX_TOKEN_BYTES, createJwtAuthn, type JwtAuthn } from '../../gateway/jwt/verifier.js';
import { makeKey, memoryLog, sign, startJwksServer, type JwksServer, type TestKey } from '../integration/jwt/helpers.js';

const ISS = 'https://idp.example';
let server: JwksServer;
let key: TestKey;
let authn: JwtAuthn;

const b64 = (v: string): string => Buffer.from(v).toString('base64url');
/** `depth` nested arrays, or objects `{"a":{"a":…}}`, as JSON text. */
const nested = (depth: number, kind: 'array' | 'object') => (kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);

before(async () => {
  key = await makeKey('ES256', 'k1');
  server = await startJwksServer([key.publicJwk]);
  authn = createJwtAuthn(
    [{ name: 'idp', issuer: ISS, jwksUri: server.url, claimsToHeaders: [{ header: 'x-deep', claim: 'a.a.a' }], requiredClaims: [{ claim: 'a.a', values: ['x'] }] }],
    {},
    { logger: memoryLog().logger },
  );
  await authn.ready();
});
after(async () => {
  authn.close();
  await server.close();
});

async function outcome(token: string): Promise<string> {
  return authn.authenticate({ headers: { authorization: `Bearer ${token}` }, query: '' }).then(
    () => 'accepted',
    (e: unknown) => {
      assert.ok(e instanceof GatewayError, `not a refusal: ${String(e)}`);
      return e.reason ?? e.code;
    },
  );
}

test('a header or payload nested thousands deep, unsigned, is refused without a crash', async () => {
  // As deep as still fits under the size limit (base64url makes 3 bytes 4).
  const depth = Math.floor((MAX_TOKEN_BYTES * 3) / 4 / 2) - 40;
  for (const kind of ['array', 'object'] as const) {
    const deep = nested(kind === 'array' ? depth : Math.floor(depth / 3), kind);
    const header = `${b64(deep)}.${b64(JSON.stringify({ iss: ISS, exp: 9e9 }))}.AAAA`;
    const payload = `${b64('{"alg":"ES256","kid":"k1"}')}.${b64(deep)}.AAAA`;
    for (const token of [header, payload]) assert.notEqual(await outcome(token), 'accepted');
  }
  assert.equal(await outcome(`${b64(nested(100_000, 'array'))}.e30.AAAA`), 'token_too_large');
});

test("a trusted issuer's token with claims nested thousands deep is judged like any other, never a crash", async () => {
  let claim: unknown = 'x';
  for (let i = 0; i < 900; i++) claim = { a: claim };
  const token = await sign(key, { iss: ISS, ...(claim as object) });
  assert.ok(token.length <= MAX_TOKEN_BYTES, `${token.length} bytes`);
  // requiredClaims reads a.a (an object here, not 'x'), after the claims were frozen and copied.
  assert.equal(await outcome(token), 'claim_value_not_allowed');
  // The gateway still answers the next token.
  assert.equal(await outcome(await sign(key, { iss: ISS, a: { a: 'x' } })), 'accepted');
});
