import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { mintDevToken, startDevTokenIssuer, type DevTokenIssuer } from '../../../gateway/dev/token-issuer.js';
import { createJwtAuthn, type JwtAuthn } from '../../../gateway/jwt/verifier.js';
import { memoryLog } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-dev-issuer-'));
const keyFile = join(dir, 'dev-signing-key.json');
let issuer: DevTokenIssuer;
let authn: JwtAuthn;

before(async () => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  writeFileSync(keyFile, JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'dev-1' }), { mode: 0o600 });
  issuer = await startDevTokenIssuer({ port: 0, signingKeyFile: keyFile });
  authn = createJwtAuthn(
    [{ name: 'dev', issuer: issuer.issuer, audiences: ['portcullis'], jwksUri: issuer.url, claimsToHeaders: [{ header: 'x-role', claim: 'role' }] }],
    {},
    { logger: memoryLog().logger },
  );
  await authn.ready();
});
after(async () => {
  authn.close();
  await issuer.close();
  rmSync(dir, { recursive: true, force: true });
});

test('serves only the public key on loopback', async () => {
  assert.match(issuer.url, /^http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json$/);
  const res = await fetch(issuer.url);
  assert.equal(res.status, 200);
  const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
  assert.equal(keys.length, 1);
  assert.deepEqual(Object.keys(keys[0] ?? {}).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  assert.equal((await fetch(new URL('/other', issuer.url))).status, 404);
  assert.equal((await fetch(issuer.url, { method: 'POST' })).status, 405);
});

test('minted tokens verify through the gateway stage against the served JWKS', async () => {
  const token = await mintDevToken(keyFile, { issuer: issuer.issuer, claims: { role: 'admin', sub: 'ignored' } });
  assert.deepEqual(decodeProtectedHeader(token), { alg: 'ES256', kid: 'dev-1', typ: 'JWT' });
  const r = await authn.authenticate({ headers: { authorization: `Bearer ${token}` }, query: '' });
  assert.equal(r.auth?.principal, `${issuer.issuer}/dev-user`, 'registered claims cannot be overridden by custom ones');
  assert.deepEqual(r.auth?.audiences, ['portcullis']);
  assert.deepEqual(r.setHeaders, { 'x-role': 'admin' });
  const exp = r.auth?.claims.exp as number;
  assert.ok(Math.abs(exp - (Date.now() / 1000 + 3600)) < 5);
});

test('refuses a non-loopback host and a key that is not an ES256 private JWK', async () => {
  await assert.rejects(startDevTokenIssuer({ port: 0, host: '0.0.0.0', signingKeyFile: keyFile }), /not a loopback address/);
  const pubFile = join(dir, 'public.json');
  const { publicKey } = await generateKeyPair('ES256');
  writeFileSync(pubFile, JSON.stringify({ ...(await exportJWK(publicKey)), kid: 'x' }));
  await assert.rejects(mintDevToken(pubFile, { issuer: 'x' }), /expected an EC P-256 private JWK with a kid/);
  await assert.rejects(mintDevToken(keyFile, { issuer: 'x', ttlSeconds: 0 }), /ttlSeconds/);
});
